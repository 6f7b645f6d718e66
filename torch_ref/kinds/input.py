"""Input gradient: ``input_fn(spec, params, X, Y)``, dObjective/dX, against autograd."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typing_extensions import Unpack

from manual import Params, Spec

from ..engine.options import CheckOptions
from ..engine.run import run
from ..engine.summary import Summary
from ..first_order.kind_entry import first_order_kind, quantity

__all__ = ["KIND", "check_input_gradient"]


KIND = first_order_kind(
    "input",
    check="check_input_gradient",
    what="input_fn",
    call="input_fn(spec, params, X, Y) -> dObjective/dX of shape (N, D)",
    reference="float64 autograd of the objective in the input X",
    judge=quantity("input"),
)


def check_input_gradient(fn: Callable[[Spec, Params, Any, Any], Any], **options: Unpack[CheckOptions]) -> Summary:
    """Check ``fn(spec, params, X, Y) -> dObjective/dX`` of shape ``(N, D)`` against autograd;
    options as :func:`~torch_ref.check_derivation`."""
    __tracebackhide__ = True
    return run(KIND, fn, options)
