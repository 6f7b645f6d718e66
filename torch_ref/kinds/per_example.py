"""Per-example gradients: ``per_example_fn(spec, params, X, Y)``, each example's own gradient,
against ``torch.func.vmap(torch.func.grad(...))``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typing_extensions import Unpack

from manual import Params, Spec

from ..engine.options import CheckOptions
from ..engine.run import run
from ..engine.summary import Summary
from ..first_order.kind_entry import first_order_kind, quantity

__all__ = ["KIND", "check_per_example"]


KIND = first_order_kind(
    "per-example",
    check="check_per_example",
    what="per_example_fn",
    call="per_example_fn(spec, params, X, Y) -> Params of (N, in, out) and (N, out) arrays",
    reference="torch.func.vmap(torch.func.grad(...)) of each example's own loss on the torch twin",
    judge=quantity("per-example"),
)


def check_per_example(fn: Callable[[Spec, Params, Any, Any], Any], **options: Unpack[CheckOptions]) -> Summary:
    """Check ``fn(spec, params, X, Y)``: the gradient of each example's own loss L_n (no reduction
    over the batch), weights ``(N, in, out)`` and biases ``(N, out)`` as ``manual.Params``, a
    ``(weights, biases)`` pair or a list, against ``torch.func.vmap(torch.func.grad(...))``
    (:func:`manual.per_example_gradients` is the hand-derived twin); options as
    :func:`~torch_ref.check_derivation`. With ``networks=``: networks of layers,
    :func:`~torch_ref.check_network_per_example`."""
    __tracebackhide__ = True
    if "networks" in options:
        from .network_per_example import check_network_per_example

        return check_network_per_example(fn, **options)
    return run(KIND, fn, options)
