"""The reference: the networks of :mod:`manual` built from torch modules and differentiated by
autograd, and the comparison and the oracle that check a derivation against it.

Three roles: the autograd twin (:mod:`.twins` for each registry entry, :mod:`.build`,
:mod:`.reference`, :mod:`.autograd`); the numerics (:mod:`.tolerance`, :mod:`.compare`); the oracle
(:mod:`.oracle`, :mod:`.verdict`, :mod:`.diagnose`, :mod:`.blame`, the report, :mod:`.strategies`,
:mod:`.training`, the pytest plugin, the command line :mod:`.cli`). The arrow points one way: torch_ref imports manual, never the reverse."""

from . import strategies, twins
from .autograd import deltas, gradients, input_gradient, objective, sgd_step
from .build import Network, build
from .compare import Comparison, Row, assert_agree, compare
from .crosscheck import (
    crosscheck_deltas,
    crosscheck_gradients,
    crosscheck_input,
    crosscheck_objective,
    crosscheck_training,
    crosscheck_update,
)
from .oracle import (
    DerivationMismatch,
    OracleSummary,
    PrecisionWarning,
    check_deltas,
    check_derivation,
    check_input_gradient,
    check_per_example,
    check_training,
    check_update,
)
from .reference import Reference, reference
from .tolerance import Tolerance, rounding_band, tolerance
from .training import TrainingVerdict, check_training_case
from .verdict import Verdict, check_case

__all__ = [
    "Comparison",
    "DerivationMismatch",
    "Network",
    "OracleSummary",
    "PrecisionWarning",
    "Reference",
    "Row",
    "Tolerance",
    "TrainingVerdict",
    "Verdict",
    "assert_agree",
    "build",
    "check_case",
    "check_deltas",
    "check_derivation",
    "check_input_gradient",
    "check_per_example",
    "check_training",
    "check_training_case",
    "check_update",
    "compare",
    "crosscheck_deltas",
    "crosscheck_gradients",
    "crosscheck_input",
    "crosscheck_objective",
    "crosscheck_training",
    "crosscheck_update",
    "deltas",
    "gradients",
    "input_gradient",
    "objective",
    "reference",
    "rounding_band",
    "sgd_step",
    "strategies",
    "tolerance",
    "twins",
]
