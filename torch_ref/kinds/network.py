"""A whole network's gradients: ``grad_fn(net, params, X, Y) -> {name: gradient}`` on random
architectures (MLPs with norms, dropout and residual blocks; CNNs; transformer blocks) against
autograd of the same network built from torch's modules, within the rounding model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..engine.kind import Kind
from ..engine.run import run
from ..engine.summary import Summary
from ..networks.judge import judge
from ..networks.report import add, describe, diagnose, report
from ..networks.select import strategy

__all__ = ["COMMON", "KIND", "NETWORK_OPTIONS", "check_network"]

NETWORK_OPTIONS: Mapping[str, Any] = {"networks": ("mlp", "cnn", "transformer")}
COMMON = ("max_examples", "seed", "dtype", "device", "arrays", "strict")


def _prepare(fn: Callable[..., Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    if not callable(fn):
        raise TypeError(f"grad_fn must be callable as grad_fn(net, params, X, Y), got {fn!r}")
    strategy(extra["networks"], np.dtype("float64"))  # validated before anything is drawn
    return dict(extra)


def _draw(opt: Any, extra: Mapping[str, Any]) -> Any:
    return strategy(extra["networks"], np.dtype(opt.dtype))


def _judge(fn: Callable[..., Any], case: Any, opt: Any, extra: Mapping[str, Any]) -> Any:
    return judge(fn, case, opt.arrays, opt.device, opt.dtype)


KIND = Kind(
    name="network",
    check="check_network",
    what="grad_fn",
    call="grad_fn(net, params, X, Y[, masks=]) -> {name: gradient} (manual.network.Network, params by name)",
    reference="float64 autograd of the same network built from torch's modules (nn.Linear, nn.LayerNorm, ...)",
    tolerance="the rounding model of the traced network (torch_ref.layers.rounding), autograd's and manual's algorithms",
    judge=_judge,
    report=report,
    options=NETWORK_OPTIONS,
    prepare=_prepare,
    finish=diagnose,
    coverage_cases=False,
    not_judged="Draw cases where {dtype} keeps the digits a backward needs (dtype='float64').",
    draw=_draw,
    common=COMMON,
    add=add,
    describe=describe,
)


def check_network(grad_fn: Callable[..., Any], **options: Any) -> Summary:
    """Check a whole network's hand-derived gradients against autograd on drawn networks.

    Args:
        grad_fn: ``grad_fn(net, params, X, Y) -> {name: gradient}``: ``net`` a
            :class:`manual.network.Network`, ``params`` its parameters by name (``"2.1.weight"``, the
            slides' ``(in, out)`` layout for weights), ``X`` the batch, ``Y`` the targets (class
            indices for ``"cross_entropy"``); called with ``masks={path: mask}`` too when the network
            has dropout. The gradients of the objective (sum or mean, as ``net.reduction``).

    Keyword-only:
        networks: the families drawn (``"mlp"``, ``"cnn"``, ``"transformer"``, or a tuple of them;
            default all three), a :class:`manual.network.Network` (its values drawn), a
            :class:`~torch_ref.NetworkCase` (that case alone, as a report's Reproduce line gives it),
            or a Hypothesis strategy of ``NetworkCase``.
        dtype, arrays, device, max_examples, seed, strict: as :func:`~torch_ref.check_derivation`.

    Returns:
        a :class:`~torch_ref.Summary`; raises :class:`~torch_ref.DerivationMismatch` on the smallest
        failing network, naming the block and layer where the gradients part.
    """
    __tracebackhide__ = True
    return run(KIND, grad_fn, options)
