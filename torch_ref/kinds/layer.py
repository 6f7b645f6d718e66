"""One layer's hand-derived backward: ``backward(dout, x, **params)`` against autograd of torch's own
layer (a built-in's twin), of a given reference, or of the forward itself, within the rounding model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..engine.kind import Kind
from ..engine.run import run
from ..engine.summary import Summary
from ..layers.judge import LayerDraw, judge, layer_draws
from ..layers.report import add, describe, diagnose, report
from ..layers.setup import resolve

__all__ = ["KIND", "LAYER_OPTIONS", "check_layer"]

# check_layer's own options and their defaults (forward is its second positional argument)
LAYER_OPTIONS: Mapping[str, Any] = {
    "forward": None,
    "reference": None,
    "inputs": None,
    "shapes": None,
    "dims": None,
    "constants": None,
    "nondiff": (),
    "names": None,
    "convention": "grads",
    "dout_seed": None,
}
COMMON = ("max_examples", "seed", "dtype", "device", "arrays", "strict")


def _prepare(fn: Callable[..., Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    if extra.get("forward") is None:
        raise TypeError("check_layer needs forward: the user's forward(x, **params), or a built-in layer's name")
    # validated here, before anything is drawn; resolved again for the checked dtype when the draw starts
    return {**extra, "setup": resolve(fn, extra["forward"], extra, np.dtype("float64"))}


def _draw(opt: Any, extra: Mapping[str, Any]) -> Any:
    setup = resolve(extra["setup"].user_backward, extra["forward"], extra, np.dtype(opt.dtype))
    extra["setup"] = setup  # type: ignore[index]  # the run's own dict (Kind.prepare's result)
    return layer_draws(setup.strategy, extra.get("dout_seed"))


def _judge(fn: Callable[..., Any], draw: LayerDraw, opt: Any, extra: Mapping[str, Any]) -> Any:
    return judge(extra["setup"], draw, opt.arrays, opt.device, opt.dtype)


KIND = Kind(
    name="layer",
    check="check_layer",
    what="backward",
    call="backward(dout, x, **params, **constants) -> {'x': dx, name: dparam, ...}",
    reference="float64 autograd of torch's own layer (a built-in's twin), of reference, or of forward itself",
    tolerance="the rounding model of the reference's traced graph (torch_ref.layers.rounding)",
    judge=_judge,
    report=report,
    options=LAYER_OPTIONS,
    prepare=_prepare,
    finish=diagnose,
    coverage_cases=False,
    not_judged="Draw cases where {dtype} keeps the digits a backward needs (dtype='float64', or milder scales).",
    draw=_draw,
    common=COMMON,
    add=add,
    describe=describe,
)


def check_layer(backward: Callable[..., Any], forward: Any, **options: Any) -> Summary:
    """Check a layer's hand-derived ``backward`` against autograd, on drawn cases.

    Args:
        backward: ``backward(dout, x, **params, **constants) -> dict``: δ_in under ``"x"`` and each
            differentiated parameter's gradient by name (``None`` for a non-differentiated array);
            with ``convention="cache"``, CS231n's ``backward(dout, cache) -> (dx, dparam, ...)``.
        forward: the user's ``forward(x, **params, **constants) -> out`` (``"cache"``: ``forward(x,
            *params, **constants) -> (out, cache)``), or a built-in layer's name (``"layer_norm"``):
            then manual's forward, torch's twin and the built-in's draw are used.

    Keyword-only:
        reference: a torch function with the forward's signature, or a built-in's name (its twin);
            None differentiates ``forward`` itself on torch tensors (array-API code).
        inputs: ``draw(rng) -> (x, params)`` or a Hypothesis strategy of such pairs; params' arrays
            are differentiated (except ``nondiff`` and integer or boolean ones), other values are
            constants.
        shapes, dims: ``{"x": "N D", "gamma": "D"}`` and ``{"N": (1, 8), "D": (1, 6)}``: arrays of those
            shapes, dims drawn and shrunk towards the smallest; ``constants`` beside them.
        constants: non-array arguments (eps, stride), over the drawn ones.
        nondiff: arrays not differentiated.
        names: the user's names -> the built-in's (``{"gamma": "weight", "beta": "bias"}``).
        convention: ``"grads"`` (default) or ``"cache"``.
        dout_seed: the seed of every case's δ_out (standard normal of the output's shape), where a
            reported case is reproduced; None draws one per case.
        dtype, arrays, device, max_examples, seed, strict: as :func:`~torch_ref.check_derivation`.

    Returns:
        a :class:`~torch_ref.Summary`; raises :class:`~torch_ref.DerivationMismatch` on the minimal
        failing case, :class:`~torch_ref.NotJudged` when too little could be judged.
    """
    __tracebackhide__ = True
    return run(KIND, backward, {"forward": forward, **options})
