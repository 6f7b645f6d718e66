"""The cases a layer check judges, from what the user gives: a draw function ``draw(rng) -> (x,
params)``, a Hypothesis strategy of such pairs, or named shapes with ranges for their dims (drawn and
shrunk towards the smallest shapes); a built-in's own draw otherwise (:mod:`.builtins`).

Every float array is cast to the checked dtype here, so the float64 reference sees exactly the
values the user's code sees; integer and boolean arrays stay as they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ..twin.convert import as_numpy64
from .case import LayerCase

__all__ = ["from_function", "from_shapes", "from_strategy", "split_params"]

_SEEDS = st.integers(0, 2**32 - 1)


def arrays_rng(seed: int) -> np.random.Generator:
    """The generator of a case's arrays: a stream apart from δ_out's ``default_rng(dout_seed)``, so that
    where both seeds shrink to the same value, x and δ_out still differ (with one stream, a minimal case
    of a layer whose output has x's shape had δ_out = x exactly)."""
    return np.random.default_rng([seed, 1])


_DIM = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")


def _array(value: Any) -> np.ndarray | None:
    """``value`` as a NumPy array where it is one (NumPy or torch), else None (a constant)."""
    if isinstance(value, np.ndarray):
        return value
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return None


def split_params(
    params: Mapping[str, Any], dtype: np.dtype, where: str
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays (float ones cast to ``dtype``) and constants (everything else) of a drawn params dict."""
    if not isinstance(params, Mapping):
        raise TypeError(
            f"{where} must give (x, params) with params a dict of name -> value, got {type(params).__name__}"
        )
    arrays, constants = {}, {}
    for name, value in params.items():
        a = _array(value)
        if a is None:
            constants[name] = value
        else:
            arrays[name] = a.astype(dtype) if np.issubdtype(a.dtype, np.floating) else a.copy()
    return arrays, constants


def _cast(case: LayerCase, dtype: np.dtype) -> LayerCase:
    """A drawn :class:`LayerCase` with its float arrays in ``dtype``."""

    def cast(a: np.ndarray) -> np.ndarray:
        return a.astype(dtype) if np.issubdtype(a.dtype, np.floating) else a

    return LayerCase(
        cast(case.x), {k: cast(v) for k, v in case.params.items()}, case.constants, case.regimes, case.dims, case.order
    )


def _case(pair: Any, dtype: np.dtype, where: str) -> LayerCase:
    if isinstance(pair, LayerCase):
        return _cast(pair, dtype)
    if not isinstance(pair, tuple) or len(pair) != 2:
        raise TypeError(f"{where} must give a pair (x, params), got {type(pair).__name__}")
    x = _array(pair[0])
    if x is None:
        raise TypeError(f"{where} must give x as an array (NumPy or torch), got {type(pair[0]).__name__}")
    arrays, constants = split_params(pair[1], dtype, where)
    x = x.astype(dtype) if np.issubdtype(x.dtype, np.floating) else x.copy()
    return LayerCase(x, arrays, constants, order=tuple(pair[1]))


def from_function(draw: Callable[[np.random.Generator], Any], dtype: np.dtype) -> SearchStrategy[LayerCase]:
    """Cases from ``draw(rng) -> (x, params)``, ``rng`` a ``numpy.random.Generator`` seeded by Hypothesis."""
    return _SEEDS.map(lambda seed: _case(draw(arrays_rng(seed)), dtype, "inputs(rng)"))


def from_strategy(strategy: SearchStrategy[Any], dtype: np.dtype) -> SearchStrategy[LayerCase]:
    """Cases from a Hypothesis strategy of ``(x, params)`` pairs (or of :class:`LayerCase`, as the
    built-ins' draws give)."""
    return strategy.map(lambda pair: _case(pair, dtype, "the inputs strategy"))


def parse_shapes(shapes: Any, dims: Any) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[int, int]]]:
    """``{"x": "N D", "gamma": "D"}`` and ``{"N": (1, 8), "D": 3}`` validated: every array's named dims,
    every dim's range."""
    if not isinstance(shapes, Mapping) or "x" not in shapes:
        raise ValueError(
            f"shapes must be a dict of array name -> named dims including 'x', e.g. {{'x': 'N D'}}, got {shapes!r}"
        )
    parsed: dict[str, tuple[str, ...]] = {}
    for name, text in shapes.items():
        if not isinstance(text, str) or not all(_DIM.match(d) for d in text.split()):
            raise ValueError(
                f"shapes[{name!r}] must be named dims separated by spaces ('N D', '' for a scalar), got {text!r}"
            )
        parsed[name] = tuple(text.split())
    if not isinstance(dims, Mapping):
        raise ValueError(f"dims must be a dict of dim name -> (lo, hi) or an int, got {dims!r}")
    ranges: dict[str, tuple[int, int]] = {}
    for name, value in dims.items():
        lo, hi = (value, value) if isinstance(value, int) and not isinstance(value, bool) else tuple(value)
        if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi <= 64):
            raise ValueError(
                f"dims[{name!r}] must be an int or a pair (lo, hi) with 1 <= lo <= hi <= 64, got {value!r}"
            )
        ranges[name] = (lo, hi)
    missing = sorted({d for ds in parsed.values() for d in ds} - set(ranges))
    if missing:
        raise ValueError(f"dims has no range for {missing}, named in shapes {dict(shapes)}")
    return parsed, ranges


def from_shapes(
    shapes: Mapping[str, tuple[str, ...]],
    ranges: Mapping[str, tuple[int, int]],
    constants: Mapping[str, Any],
    dtype: np.dtype,
) -> SearchStrategy[LayerCase]:
    """Cases of the named shapes: each dim drawn in its range (shrinking towards ``lo``), the values
    standard normal within (-3, 3), from a seeded generator."""

    @st.composite
    def draw(pick: Any) -> LayerCase:
        sizes = {name: pick(st.integers(lo, hi)) for name, (lo, hi) in ranges.items()}
        rng = arrays_rng(pick(_SEEDS))
        arrays = {name: _bounded_normal(rng, tuple(sizes[d] for d in ds)).astype(dtype) for name, ds in shapes.items()}
        x = arrays.pop("x")
        return LayerCase(x, arrays, dict(constants), dims=sizes)

    return draw()


def _bounded_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal values within (-3, 3), drawn again where beyond (not clipped: a clip would put
    a mass of values exactly at ±3, where a layer may have a kink)."""
    a = rng.standard_normal(shape)
    while (far := np.abs(a) >= 3).any():
        a[far] = rng.standard_normal(int(far.sum()))
    return a


def as_float64(case: LayerCase) -> dict[str, np.ndarray]:
    """The case's arrays with the floating ones in float64 (exactly the drawn values)."""
    return {k: (as_numpy64(v) if np.issubdtype(v.dtype, np.floating) else v) for k, v in case.arrays.items()}
