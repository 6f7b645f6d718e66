"""Gauss-Newton-vector product: ``gnvp_fn(spec, params, X, Y, V) -> Params (J^T H_L J V)`` against torch's jvp and vjp of the network's output and the loss's Hessian in y* (float64)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from typing_extensions import Unpack

from ..engine.kind import Kind
from ..engine.options import CheckOptions, Options
from ..engine.run import run
from ..engine.summary import Summary
from ..second_order import check as so
from ..strategies import Case

__all__ = ["KIND", "check_gnvp"]


def _judge(fn: Callable, case: Case, opt: Options, extra: Mapping[str, Any]) -> Any:
    return so.judge("gnvp", fn, case, opt.arrays, opt.device)


def _report(
    outcome: Any, fn: Callable, names: tuple[str, ...], opt: Options, extra: Mapping[str, Any], before: Any = None
):
    return so.report("gnvp", outcome, fn, names, opt)


KIND = Kind(
    name="gnvp",
    check="check_gnvp",
    what="gnvp_fn",
    call="gnvp_fn(spec, params, X, Y, V) -> Params (J^T H_L J V)",
    reference="torch's jvp and vjp of the network's output and the loss's Hessian in y* (float64)",
    tolerance="the second-order rounding model of torch_ref.second_order.tolerance (R-passes on magnitudes and errors)",
    judge=_judge,
    report=_report,
    prepare=so.prepare("gnvp"),
    defaults={"max_examples": 50, "depths": (1, 3), "widths": (1, 5), "batch": (1, 6)},
    # the draw alone, as the second-order campaigns and pins are sized (examples == max_examples)
    coverage_cases=False,
    not_judged="Narrow the draw to cases whose float64 reference and bound are finite (e.g. other losses or outputs).",
)


def check_gnvp(gnvp_fn: Callable[..., Any], **options: Unpack[CheckOptions]) -> Summary:
    """Check ``gnvp_fn(spec, params, X, Y, V) -> J^T H_L J V`` against torch's jvp and vjp of the
    network's output (:mod:`torch_ref.second_order.check`); the options and the report as
    :func:`~torch_ref.check_hvp` (no finite-difference blame: the product is not a derivative of the
    objective)."""
    __tracebackhide__ = True
    return run(KIND, gnvp_fn, options)
