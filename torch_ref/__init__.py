"""The reference: the networks of :mod:`manual` built from torch modules and differentiated by
autograd, and the comparison and the oracle that check a derivation against it.

Three roles: the autograd twin (:mod:`.twins` for each registry entry, :mod:`.build`,
:mod:`.reference`, :mod:`.autograd`); the numerics (:mod:`.tolerance`, :mod:`.compare`); the oracle
(:mod:`.oracle`, :mod:`.verdict`, :mod:`.diagnose`, :mod:`.blame`, the report, :mod:`.strategies`,
:mod:`.training`, the pytest plugin, the command line :mod:`.cli`). The arrow points one way: torch_ref imports manual, never the reverse."""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

# Loaded on first use (PEP 562), so that ``import torch_ref.pytest_plugin`` (pytest loads it in every
# run of an environment where this package is installed) and ``python -m torch_ref --help`` do not
# import torch; ``from torch_ref import check_derivation`` loads what that needs.
_WHERE = {
    "strategies": None,
    "twins": None,
    **dict.fromkeys(["deltas", "gradients", "input_gradient", "objective", "sgd_step"], "autograd"),
    **dict.fromkeys(["Network", "build"], "build"),
    **dict.fromkeys(["Comparison", "Row", "assert_agree", "compare"], "compare"),
    **dict.fromkeys(
        [
            "crosscheck_deltas",
            "crosscheck_gradients",
            "crosscheck_input",
            "crosscheck_objective",
            "crosscheck_training",
            "crosscheck_update",
        ],
        "crosscheck",
    ),
    **dict.fromkeys(
        [
            "DerivationMismatch",
            "NotJudged",
            "OracleSummary",
            "PrecisionWarning",
            "check_deltas",
            "check_derivation",
            "check_input_gradient",
            "check_per_example",
            "check_training",
            "check_update",
        ],
        "oracle",
    ),
    **dict.fromkeys(["Reference", "reference"], "reference"),
    **dict.fromkeys(["Tolerance", "rounding_band", "tolerance"], "tolerance"),
    **dict.fromkeys(["TrainingVerdict", "check_training_case"], "training"),
    **dict.fromkeys(["Verdict", "check_case"], "verdict"),
    **dict.fromkeys(["check_data_parallel", "check_data_parallel_case"], "data_parallel"),
    "ddp_gradients": "ddp",
    **dict.fromkeys(
        ["check_hvp", "check_gnvp", "check_hvp_case", "check_gnvp_case", "direction"], "second_order_check"
    ),
    **dict.fromkeys(["hvp_reference", "gnvp_reference"], "second_order"),
}


class _Package(types.ModuleType):
    """torch_ref's module type: four of its functions share their names with the submodule that
    defines them (``build``, ``compare``, ``reference``, ``tolerance``). Importing such a submodule
    makes the import system bind the module to that name on the package; here the function keeps
    the name, as it did when the package imported everything eagerly."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _WHERE.get(name) == name:
            self.__dict__.setdefault(name, getattr(value, name))
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'torch_ref' has no attribute {name!r}")
    where = _WHERE[name]
    module = importlib.import_module(f".{where or name}", __name__)
    value = module if where is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
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
    from .data_parallel import check_data_parallel, check_data_parallel_case
    from .ddp import ddp_gradients
    from .oracle import (
        DerivationMismatch,
        NotJudged,
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
    from .second_order import gnvp_reference, hvp_reference
    from .second_order_check import check_gnvp, check_gnvp_case, check_hvp, check_hvp_case, direction
    from .tolerance import Tolerance, rounding_band, tolerance
    from .training import TrainingVerdict, check_training_case
    from .verdict import Verdict, check_case

__all__ = [
    "Comparison",
    "DerivationMismatch",
    "Network",
    "NotJudged",
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
    "check_data_parallel",
    "check_data_parallel_case",
    "check_deltas",
    "check_derivation",
    "check_gnvp",
    "check_gnvp_case",
    "check_hvp",
    "check_hvp_case",
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
    "ddp_gradients",
    "deltas",
    "direction",
    "gnvp_reference",
    "gradients",
    "hvp_reference",
    "input_gradient",
    "objective",
    "reference",
    "rounding_band",
    "sgd_step",
    "strategies",
    "tolerance",
    "twins",
]
