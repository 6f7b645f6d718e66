"""Gauss-Newton-vector product: ``gnvp_fn(spec, params, X, Y, V) -> Params (J^T H_L J V)`` against torch's jvp and vjp of the network's output and the loss's Hessian in y* (float64)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typing_extensions import Unpack

from ..engine.options import CheckOptions
from ..engine.run import run
from ..engine.summary import Summary
from ..second_order import check as so

__all__ = ["KIND", "check_gnvp"]


KIND = so.product_kind(
    "gnvp",
    call="gnvp_fn(spec, params, X, Y, V) -> Params (J^T H_L J V)",
    reference="torch's jvp and vjp of the network's output and the loss's Hessian in y* (float64)",
)


def check_gnvp(gnvp_fn: Callable[..., Any], **options: Unpack[CheckOptions]) -> Summary:
    """Check ``gnvp_fn(spec, params, X, Y, V) -> J^T H_L J V`` against torch's jvp and vjp of the
    network's output (:mod:`torch_ref.second_order.check`); the options and the report as
    :func:`~torch_ref.check_hvp` (no finite-difference blame: the product is not a derivative of the
    objective)."""
    __tracebackhide__ = True
    return run(KIND, gnvp_fn, options)
