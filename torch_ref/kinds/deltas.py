"""Deltas: ``delta_fn(spec, params, X, Y)``, every layer's δ, against autograd."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typing_extensions import Unpack

from manual import Params, Spec

from ..engine.options import CheckOptions
from ..engine.run import run
from ..engine.summary import Summary
from ..first_order.kind_entry import first_order_kind, quantity

__all__ = ["KIND", "check_deltas"]


KIND = first_order_kind(
    "deltas",
    check="check_deltas",
    what="delta_fn",
    call="delta_fn(spec, params, X, Y) -> [delta1, ..., deltaL], each (N, sizes[l])",
    reference="float64 autograd of the objective in every layer's pre-activation I",
    judge=quantity("deltas"),
)


def check_deltas(delta_fn: Callable[[Spec, Params, Any, Any], Any], **options: Unpack[CheckOptions]) -> Summary:
    """Check ``delta_fn(spec, params, X, Y) -> [delta1, ..., deltaL]``, each ``(N, sizes[l])``: the
    derivative of the objective (the spec's reduction) in every layer's pre-activation ``I``,
    against autograd; options as :func:`~torch_ref.check_derivation`."""
    __tracebackhide__ = True
    return run(KIND, delta_fn, options)
