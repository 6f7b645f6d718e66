"""Hypothesis strategies for networks, weights and data, public so users compose their own tests.

Values come from a ``numpy.random.Generator`` seeded by a drawn integer: drawing hundreds of floats
one by one would make each example slow, while the spec (depth, widths, activations, loss, N),
which is what a minimal failing case needs, still shrinks. A drawn ``grid`` flag puts weights and
inputs on multiples of 1/4, where sums are exact in float32 and float64 alike, so ReLU inputs of
exactly 0 occur often and both implementations see the same kink.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from hypothesis import strategies as st

from manual import LOSSES, VALID_PAIRS, Params, Spec

__all__ = ["Case", "HIDDEN_ACTIVATIONS", "case_from", "cases", "data_for", "params_for", "random_spec", "specs"]

HIDDEN_ACTIVATIONS = ("identity", "relu", "sigmoid", "tanh")


@dataclass(frozen=True)
class Case:
    """One drawn problem: a spec, its weights, data, and a learning rate."""

    spec: Spec
    params: Params
    X: Any
    Y: Any
    lr: float
    seed: int
    grid: bool
    gain: float = 1.0
    kink: bool = False

    def __repr__(self) -> str:
        return (f"Case({self.spec}, N={self.X.shape[0]}, dtype={self.X.dtype}, seed={self.seed}, "
                f"grid={self.grid}, gain={self.gain}, lr={self.lr})")


@st.composite
def specs(
    draw: st.DrawFn,
    *,
    depths: tuple[int, int] = (1, 5),
    widths: tuple[int, int] = (1, 12),
    activations: Sequence[str] = HIDDEN_ACTIVATIONS + ("softmax",),
    losses: Sequence[str] = LOSSES,
    bias: bool | None = None,
    reductions: Sequence[str] = ("sum", "mean"),
) -> Spec:
    """A valid :class:`manual.Spec`: hidden activations from ``activations`` (softmax excluded), an
    output activation that ``loss`` accepts, depth and widths in the given inclusive ranges; about
    one spec in four has all widths equal (square layers)."""
    # shrinking moves towards the first entry: "sum", the slides' objective, before "mean"
    loss = draw(st.sampled_from(list(losses)))
    outputs = [a for a in VALID_PAIRS[loss] if a in activations]
    hidden = [a for a in activations if a in HIDDEN_ACTIVATIONS]
    depth = draw(st.integers(*depths))
    if not outputs or (depth > 1 and not hidden):
        raise ValueError(f"activations {tuple(activations)!r} leave no valid network for loss {loss!r}")
    if draw(st.integers(0, 3)) == 0:
        sizes = [draw(st.integers(*widths))] * (depth + 1)
    else:
        sizes = [draw(st.integers(*widths)) for _ in range(depth + 1)]
    acts = [draw(st.sampled_from(hidden)) for _ in range(depth - 1)] + [draw(st.sampled_from(outputs))]
    use_bias = draw(st.booleans()) if bias is None else bias
    return Spec(tuple(sizes), tuple(acts), loss, bias=use_bias,
                reduction=draw(st.sampled_from(list(reductions))))


def random_spec(rng: np.random.Generator, *, depths: tuple[int, int] = (1, 5),
                widths: tuple[int, int] = (1, 12)) -> Spec:
    """A valid spec drawn with a plain Generator (for scripts that run too many cases for Hypothesis):
    the same space as :func:`specs`, every activation, loss pair, bias and reduction."""
    loss = str(rng.choice(LOSSES))
    depth = int(rng.integers(depths[0], depths[1] + 1))
    if rng.integers(4) == 0:
        sizes = (int(rng.integers(widths[0], widths[1] + 1)),) * (depth + 1)
    else:
        sizes = tuple(int(s) for s in rng.integers(widths[0], widths[1] + 1, size=depth + 1))
    acts = tuple(str(a) for a in rng.choice(HIDDEN_ACTIVATIONS, size=depth - 1)) + (str(rng.choice(VALID_PAIRS[loss])),)
    return Spec(sizes, acts, loss, bias=bool(rng.integers(2)), reduction=str(rng.choice(["sum", "mean"])))


def params_for(spec: Spec, rng: np.random.Generator, *, grid: bool = False, gain: float = 1.0,
               dtype: Any = np.float64) -> Params:
    """Weights uniform in ``[-gain/sqrt(in), gain/sqrt(in)]``, or on the 1/4 grid in [-1, 1] scaled
    by the power of two nearest ``1/sqrt(in)`` (a power of two keeps the grid's sums exact)."""
    def draw(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        if grid:
            scale = 2.0 ** -round(np.log2(np.sqrt(fan_in)))
            return (rng.integers(-4, 5, size=shape) / 4 * scale).astype(dtype)
        bound = gain / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, size=shape).astype(dtype)

    weights = [draw((i, o), i) for i, o in spec.shapes()]
    biases = [draw((o,), i) for i, o in spec.shapes()] if spec.bias else None
    return Params(weights, biases)


def data_for(spec: Spec, N: int, rng: np.random.Generator, *, grid: bool = False,
             dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``X`` (N, D) standard normal clipped to [-3, 3] (or on the 1/4 grid in [-2, 2]) and
    targets ``Y`` (N, J) valid for the loss: any reals (squared), [0, 1] (bce), simplex rows (ce)."""
    D, J = spec.sizes[0], spec.sizes[-1]
    if grid:
        X = rng.integers(-8, 9, size=(N, D)) / 4
    else:
        X = np.clip(rng.standard_normal((N, D)), -3, 3)
    if spec.loss == "squared":
        Y = rng.standard_normal((N, J))
    elif spec.loss == "bce":
        Y = rng.uniform(0, 1, size=(N, J))
    else:
        # rows on the simplex with entries on the 2^-10 grid: their sums are exactly 1 in float32 and
        # float64 alike, so a float32 case and its float64 reference see the same valid targets
        Y = np.floor(rng.dirichlet(np.ones(J), size=N) * 1024) / 1024
        Y[np.arange(N), Y.argmax(axis=1)] += 1 - Y.sum(axis=1)
    return X.astype(dtype), Y.astype(dtype)


@st.composite
def cases(
    draw: st.DrawFn,
    *,
    dtype: Any = np.float64,
    batch: tuple[int, int] = (1, 8),
    gains: Sequence[float] = (0.5, 1.0, 2.0),
    lrs: Sequence[float] = (0.0, 0.01, 0.1, 0.5, 1.0),
    **spec_options: Any,
) -> Case:
    """A :class:`Case`: a spec from :func:`specs` (``spec_options`` pass through), weights (gain from
    ``gains``), N in ``batch``, data, and a learning rate from ``lrs``."""
    spec = draw(specs(**spec_options))
    seed = draw(st.integers(0, 2**32 - 1))
    grid = draw(st.integers(0, 3)) == 0
    gain = draw(st.sampled_from(list(gains)))
    N = draw(st.integers(*batch))
    lr = draw(st.sampled_from(list(lrs)))
    return case_from(spec, N=N, seed=seed, grid=grid, gain=gain, lr=lr, dtype=dtype)


def case_from(spec: Spec, *, N: int, seed: int, grid: bool = False, gain: float = 1.0, lr: float = 0.1,
              dtype: Any = np.float64, kink: bool = False) -> Case:
    """The :class:`Case` that :func:`cases` would build from these draws (to rebuild a reported case).

    ``kink=True`` (grid values, D >= 2, no bias) then sets the first example to (1/4, 1/4, 0, ...)
    and the first column of W1 to (1/4, -1/4, 0, ...): unit 1 of layer 1 gets an input of exactly 0
    from nonzero terms, so its ReLU derivative at 0 reaches the weight gradients."""
    rng = np.random.default_rng(seed)
    params = params_for(spec, rng, grid=grid, gain=gain, dtype=dtype)
    X, Y = data_for(spec, N, rng, grid=grid, dtype=dtype)
    if kink:
        if spec.bias or spec.sizes[0] < 2 or not grid:
            raise ValueError(f"kink=True needs grid=True, no bias and D >= 2, got {spec} grid={grid}")
        X[0] = 0
        X[0, :2] = 0.25
        params.weights[0][:, 0] = 0
        params.weights[0][:2, 0] = (0.25, -0.25)
    return Case(spec, params, X, Y, lr, seed, grid, gain, kink)
