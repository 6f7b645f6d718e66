"""The reference: the networks of :mod:`manual` built from torch modules and differentiated by
autograd, the numerics that judge a derivation against them, and the one engine that runs every
kind of check.

The package's names are re-exported here; the modules live in subpackages by role:
:mod:`.twin` (the torch twin and its float64 references), :mod:`.numerics` (tolerances, exact sums,
bounds, the comparison, blame), :mod:`.engine` (options, the draw, the run, the summary, the report
and the record shared by every kind), :mod:`.kinds` (the table: one entry module per kind of check
and its public ``check_*`` function), :mod:`.first_order`, :mod:`.training`, :mod:`.second_order`
and :mod:`.data_parallel` (how each family of kinds judges and reports one case), :mod:`.frontends`
(the command line, the direct crosschecks) and :mod:`.slides`. :mod:`.strategies` (the drawn cases),
:mod:`.twins` (each registry entry's torch twin) and :mod:`.pytest_plugin` stay at the top. The arrow
points one way: torch_ref imports manual, never the reverse; and no module imports another that
imports it back (``tests/test_import_graph.py``)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Loaded on first use (PEP 562), so that ``import torch_ref.pytest_plugin`` (pytest loads it in every
# run of an environment where this package is installed) and ``python -m torch_ref --help`` do not
# import torch; ``from torch_ref import check_derivation`` loads what that needs.
_WHERE = {
    "strategies": None,
    "twins": None,
    **dict.fromkeys(["deltas", "gradients", "input_gradient", "objective", "sgd_step"], "twin.autograd"),
    **dict.fromkeys(["Network", "build"], "twin.build"),
    **dict.fromkeys(["NetworkCase", "network_case"], "networks.case"),
    **dict.fromkeys(["Comparison", "Row", "assert_agree", "compare"], "numerics.compare"),
    **dict.fromkeys(
        [
            "crosscheck_deltas",
            "crosscheck_gradients",
            "crosscheck_input",
            "crosscheck_objective",
            "crosscheck_training",
            "crosscheck_update",
        ],
        "frontends.crosscheck",
    ),
    **dict.fromkeys(["DerivationMismatch", "NotJudged", "PrecisionWarning"], "engine.errors"),
    **dict.fromkeys(["OracleSummary", "Summary"], "engine.summary"),
    "check": "kinds",
    "check_derivation": "kinds.gradients",
    "check_update": "kinds.update",
    "check_training": "kinds.training",
    "check_deltas": "kinds.deltas",
    "check_input_gradient": "kinds.input",
    "check_per_example": "kinds.per_example",
    "check_hvp": "kinds.hvp",
    "check_layer": "kinds.layer",
    "check_network": "kinds.network",
    "check_network_training": "kinds.network_training",
    "check_network_per_example": "kinds.network_per_example",
    "check_network_data_parallel": "kinds.network_data_parallel",
    "layer_cases": "layers.table",
    "check_function": "kinds.function",
    "check_gnvp": "kinds.gnvp",
    "check_data_parallel": "kinds.data_parallel",
    **dict.fromkeys(["Reference", "reference"], "twin.reference"),
    **dict.fromkeys(["Tolerance", "rounding_band", "tolerance"], "numerics.tolerance"),
    **dict.fromkeys(["TrainingVerdict", "check_training_case"], "training.trajectory"),
    "Verdict": "first_order.verdict",
    "check_case": "first_order.case",
    "check_data_parallel_case": "data_parallel.check",
    "ddp_gradients": "data_parallel.ddp",
    **dict.fromkeys(["check_hvp_case", "check_gnvp_case", "direction"], "second_order.check"),
    **dict.fromkeys(["hvp_reference", "gnvp_reference"], "second_order.products"),
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE and name.startswith("check_"):  # a kind added to torch_ref.kinds after these
        from .kinds import entry, names

        known = {where for where in _WHERE.values() if where and where.startswith("kinds.")}
        for kind in names():  # only the kinds not listed above are imported to look
            if f"kinds.{kind.replace('-', '_')}" not in known and entry(kind).check == name:
                _WHERE[name] = f"kinds.{kind.replace('-', '_')}"
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
    from .data_parallel.check import check_data_parallel_case
    from .data_parallel.ddp import ddp_gradients
    from .engine.errors import DerivationMismatch, NotJudged, PrecisionWarning
    from .engine.summary import OracleSummary, Summary
    from .first_order.case import check_case
    from .first_order.verdict import Verdict
    from .frontends.crosscheck import (
        crosscheck_deltas,
        crosscheck_gradients,
        crosscheck_input,
        crosscheck_objective,
        crosscheck_training,
        crosscheck_update,
    )
    from .kinds import check
    from .kinds.data_parallel import check_data_parallel
    from .kinds.deltas import check_deltas
    from .kinds.function import check_function
    from .kinds.gnvp import check_gnvp
    from .kinds.gradients import check_derivation
    from .kinds.hvp import check_hvp
    from .kinds.input import check_input_gradient
    from .kinds.layer import check_layer
    from .kinds.network import check_network
    from .kinds.network_data_parallel import check_network_data_parallel
    from .kinds.network_per_example import check_network_per_example
    from .kinds.network_training import check_network_training
    from .kinds.per_example import check_per_example
    from .kinds.training import check_training
    from .kinds.update import check_update
    from .layers.table import layer_cases
    from .networks.case import NetworkCase, network_case
    from .numerics.compare import Comparison, Row, assert_agree, compare
    from .numerics.tolerance import Tolerance, rounding_band, tolerance
    from .second_order.check import check_gnvp_case, check_hvp_case, direction
    from .second_order.products import gnvp_reference, hvp_reference
    from .training.trajectory import TrainingVerdict, check_training_case
    from .twin.autograd import deltas, gradients, input_gradient, objective, sgd_step
    from .twin.build import Network, build
    from .twin.reference import Reference, reference

__all__ = [
    "Comparison",
    "DerivationMismatch",
    "Network",
    "NetworkCase",
    "NotJudged",
    "OracleSummary",
    "PrecisionWarning",
    "Reference",
    "Row",
    "Summary",
    "Tolerance",
    "TrainingVerdict",
    "Verdict",
    "assert_agree",
    "build",
    "check",
    "check_case",
    "check_data_parallel",
    "check_data_parallel_case",
    "check_deltas",
    "check_derivation",
    "check_function",
    "check_gnvp",
    "check_gnvp_case",
    "check_hvp",
    "check_hvp_case",
    "check_input_gradient",
    "check_layer",
    "check_network",
    "check_network_data_parallel",
    "check_network_per_example",
    "check_network_training",
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
    "layer_cases",
    "network_case",
    "objective",
    "reference",
    "rounding_band",
    "sgd_step",
    "strategies",
    "tolerance",
    "twins",
]
