"""A custom ``torch.autograd.Function``'s backward, through ``fn.apply``: against autograd of a
reference, or central finite differences of the Function's own forward (float64)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..engine.kind import Kind
from ..engine.run import run
from ..engine.summary import Summary
from ..layers.function import function_setup
from ..layers.judge import LayerDraw, judge, layer_draws
from ..layers.report import add, describe, diagnose, report

__all__ = ["KIND", "check_function"]

FUNCTION_OPTIONS: Mapping[str, Any] = {
    "reference": None,
    "inputs": None,
    "shapes": None,
    "dims": None,
    "constants": None,
    "nondiff": (),
    "dout_seed": None,
}


def _prepare(fn: Callable[..., Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    return {**extra, "setup": function_setup(fn, extra, np.dtype("float64"))}


def _draw(opt: Any, extra: Mapping[str, Any]) -> Any:
    setup = function_setup(extra["setup"].user_forward, extra, np.dtype(opt.dtype))
    extra["setup"] = setup  # type: ignore[index]  # the run's own dict (Kind.prepare's result)
    return layer_draws(setup.strategy, extra.get("dout_seed"))


def _judge(fn: Callable[..., Any], draw: LayerDraw, opt: Any, extra: Mapping[str, Any]) -> Any:
    return judge(extra["setup"], draw, "torch", opt.device, opt.dtype)


KIND = Kind(
    name="function",
    check="check_function",
    what="fn",
    call="fn.apply(x, *params.values()) with a custom backward (a torch.autograd.Function)",
    reference="float64 autograd of reference, or central finite differences of the Function's own forward",
    tolerance="the rounding model of the reference's graph, or finite differences' error plus γ_n |J|ᵀ|δ| "
    "(torch_ref.layers.function)",
    judge=_judge,
    report=report,
    options=FUNCTION_OPTIONS,
    prepare=_prepare,
    finish=diagnose,
    coverage_cases=False,
    not_judged="Draw cases where {dtype} keeps the digits a backward needs (dtype='float64', or milder scales).",
    draw=_draw,
    common=("max_examples", "seed", "dtype", "device", "strict"),
    add=add,
    describe=describe,
)


def check_function(fn: Any, **options: Any) -> Summary:
    """Check a ``torch.autograd.Function``'s custom backward (``fn`` the class or its ``.apply``).

    Keyword-only:
        reference: a torch function with the Function's signature, ``reference(x, *values)``, whose
            autograd is the reference; None: central finite differences (float64) of the Function's
            own forward.
        inputs: ``draw(rng) -> (x, params)`` or a Hypothesis strategy of pairs; the Function is
            called as ``fn.apply(x, *params.values())`` (arrays and constants in the drawn order).
        shapes, dims, constants, nondiff: as :func:`~torch_ref.check_layer`.
        dtype, device, max_examples, seed, strict: as :func:`~torch_ref.check_derivation` (the
            Function gets torch tensors).
    """
    __tracebackhide__ = True
    return run(KIND, fn, options)
