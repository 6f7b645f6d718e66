"""The reference: the networks of :mod:`manual` built from torch modules and differentiated by
autograd, and the comparison that checks one against the other."""

from .autograd import deltas, gradients, input_gradient, objective, sgd_step
from .build import Network, build
from . import strategies
from .compare import Comparison, Row, assert_agree, compare
from .crosscheck import (crosscheck_deltas, crosscheck_gradients, crosscheck_input, crosscheck_training,
                         crosscheck_update)
from .oracle import DerivationMismatch, OracleSummary, check_derivation, check_update
from .tolerance import Tolerance, tolerance

__all__ = [
    "Comparison",
    "DerivationMismatch",
    "Network",
    "OracleSummary",
    "Row",
    "Tolerance",
    "assert_agree",
    "build",
    "check_derivation",
    "check_update",
    "compare",
    "crosscheck_deltas",
    "crosscheck_gradients",
    "crosscheck_input",
    "crosscheck_training",
    "crosscheck_update",
    "deltas",
    "gradients",
    "input_gradient",
    "objective",
    "sgd_step",
    "strategies",
    "tolerance",
]
