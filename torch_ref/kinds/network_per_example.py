"""A network's per-example gradients: ``per_example_fn(net, params, X, Y) -> {name: (N, *shape)}``
against autograd of each example's own objective on the network's torch twin."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from ..engine.kind import Kind
from ..engine.run import run
from ..engine.summary import Summary
from ..networks.per_example import explain_per_example, judge_per_example, tied
from ..networks.report import add, describe, report
from ..networks.select import strategy

__all__ = ["KIND", "check_network_per_example"]

COMMON = ("max_examples", "seed", "dtype", "device", "arrays", "strict")


def _draw(opt: Any, extra: Mapping[str, Any]) -> Any:
    return strategy(extra["networks"], np.dtype(opt.dtype)).filter(lambda case: not tied(case))


def _prepare(fn: Callable[..., Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    if not callable(fn):
        raise TypeError(f"per_example_fn must be callable as per_example_fn(net, params, X, Y), got {fn!r}")
    strategy(extra["networks"], np.dtype("float64"))
    given = extra["networks"]
    net = getattr(given, "net", given)
    if hasattr(net, "nodes") and any(node.name == "batch_norm" for _, node in net.nodes()):
        raise ValueError(
            "networks=: a network with batch_norm has no per-example gradients (the batch ties its examples)"
        )
    return dict(extra)


KIND = Kind(
    name="network-per-example",
    check="check_network_per_example",
    what="per_example_fn",
    call="per_example_fn(net, params, X, Y[, masks=]) -> {name: (N, *shape)}",
    reference="autograd of each example's own objective on the network's torch twin (over N for 'mean')",
    tolerance="the rounding model of each one-example case (torch_ref.layers.rounding)",
    judge=lambda fn, case, opt, extra: judge_per_example(fn, case, opt.arrays, opt.device, opt.dtype),
    report=report,
    options={"networks": ("mlp", "cnn", "transformer")},
    defaults={"max_examples": 30},
    prepare=_prepare,
    finish=lambda v, fn, opt, extra: (
        replace(v, findings=(*v.findings, *explain_per_example(v))) if v.kind == "mismatch" else v
    ),
    coverage_cases=False,
    draw=_draw,
    common=COMMON,
    add=add,
    describe=describe,
)


def check_network_per_example(per_example_fn: Callable[..., Any], **options: Any) -> Summary:
    """Check ``per_example_fn(net, params, X, Y) -> {name: (N, *shape)}``, each example's share of the
    gradient (:meth:`manual.network.Network.per_example_gradients` is the hand-derived one), on drawn
    networks without batch normalization; options as :func:`~torch_ref.check_network`."""
    __tracebackhide__ = True
    return run(KIND, per_example_fn, options)
