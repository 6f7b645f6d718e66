"""Gradients: ``grad_fn(spec, params, X, Y)`` against float64 autograd of the objective."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typing_extensions import Unpack

from manual import Params, Spec

from ..engine.options import OPTIONS_DOC, CheckOptions
from ..engine.run import run
from ..engine.summary import Summary
from ..first_order.kind_entry import classifier, first_order_kind

__all__ = ["KIND", "check_derivation"]


KIND = first_order_kind(
    "gradients",
    check="check_derivation",
    what="grad_fn",
    call="grad_fn(spec, params, X, Y) -> Params (W of shape (in, out))",
    reference="float64 autograd of the torch twin's objective (torch's bce floor, and past it the exact gradient)",
    judge=classifier(update=False),
)


def check_derivation(grad_fn: Callable[[Spec, Params, Any, Any], Any], **options: Unpack[CheckOptions]) -> Summary:
    """Check ``grad_fn(spec, params, X, Y) -> Params`` (or a ``(weights, biases)`` pair, or a list of
    weight gradients when the spec has no biases) against autograd on random networks; raise
    :class:`~torch_ref.DerivationMismatch` on the smallest network where it fails.

    ``grad_fn`` gives the gradients of the objective (sum, or mean over N, of the per-example loss)
    in the slides' layout, ``W`` of shape ``(in, out)``.

    With ``networks=`` (families ``"mlp"``, ``"cnn"``, ``"transformer"``, a
    :class:`manual.network.Network` or a :class:`~torch_ref.NetworkCase`) the draw is networks of layers
    and ``grad_fn(net, params, X, Y) -> {{name: gradient}}``: :func:`~torch_ref.check_network`.

    Args:{options}
    Returns:
        A :class:`~torch_ref.engine.summary.Summary` of what was covered.

    Raises:
        TypeError: ``grad_fn`` is not callable with four positional arguments (before anything is drawn).
        ValueError: an option is invalid or leaves nothing to draw.
        DerivationMismatch: a mismatch, an unstable evaluation, a crash or a wrong return (and a
            precision case with ``strict=True``), on the minimal case found.

    Example:
        >>> import manual
        >>> check_derivation(manual.gradients, max_examples=10, seed=0).examples > 10
        True
    """
    __tracebackhide__ = True
    if "networks" in options:  # networks of layers: grad_fn(net, params, X, Y), torch_ref.check_network
        from .network import check_network

        return check_network(grad_fn, **options)
    return run(KIND, grad_fn, options)


check_derivation.__doc__ = (check_derivation.__doc__ or "").format(options=OPTIONS_DOC)
