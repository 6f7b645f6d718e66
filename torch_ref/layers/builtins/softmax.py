"""The oracle's side of the softmax family (softmax, log_softmax, softmax_cross_entropy): torch twins,
draws, published mistakes.

Dims are named by role: ``C`` is the size of the class axis (the one normalised over), ``N`` of the
other; with ``dim=0`` the drawn ``x`` is ``(C, N)``. A "large logits" draw scales the logits so that
the largest ``|x|`` is one of :data:`LARGE_LOGITS`: from 16 on, float32 softmax outputs round to 0 or
1 for the classes far from the maximum, and at 50 float64's do too; all stay finite (exp is taken of
x - max x), in float32 as well.

Two regimes make sure a case can show a mistake at all, as saturated logits hide most of them (both
the right and a wrong δ_x round to 0): "two live classes" (softmax, log_softmax: some row has two
classes of probability >= :data:`LIVE`, where the Jacobian's off-diagonal terms are not negligible)
and "mean, N>=2, live gradient" (cross-entropy: reduction "mean", N >= 2, and some |s - y| >= LIVE).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from manual._xp import device, namespace

from ..case import LayerCase
from ..info import LayerInfo, Mistake

__all__ = ["INFOS_HERE", "LARGE_LOGITS"]

MAX_N = 6
MAX_C = 8
LARGE_LOGITS = (16.0, 24.0, 32.0, 50.0)
# the smallest largest-|x| a case is called "large logits" at (the smallest of LARGE_LOGITS)
LARGE_FROM = LARGE_LOGITS[0]
# a probability (or |s - y|) at least this large is "live": a term it scales is far above rounding
LIVE = 0.05


def _softmax_twin(x: torch.Tensor, *, dim: int = -1) -> torch.Tensor:
    return F.softmax(x, dim=dim)


def _log_softmax_twin(x: torch.Tensor, *, dim: int = -1) -> torch.Tensor:
    return F.log_softmax(x, dim=dim)


def _cross_entropy_twin(x: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    return F.cross_entropy(x, target, reduction=reduction)


def _logits(draw: st.DrawFn, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    x = rng.uniform(-3, 3, shape)
    if draw(st.booleans()):
        x *= draw(st.sampled_from(LARGE_LOGITS)) / np.max(np.abs(x))
    return x


def _probabilities(x: np.ndarray, dim: int) -> np.ndarray:
    z = x.astype(np.float64)
    e = np.exp(z - z.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def _common_regimes(x: np.ndarray, N: int, C: int, dim: int) -> list[str]:
    found = []
    if N == 1:
        found.append("N=1")
    if C == 1:
        found.append("C=1")
    if np.max(np.abs(x)) >= LARGE_FROM:
        found.append("large logits")
    if np.any(np.sum(_probabilities(x, dim) >= LIVE, axis=dim) >= 2):
        found.append("two live classes")
    return found


def _draw_softmax(dtype: Any) -> st.SearchStrategy[LayerCase]:
    dtype = np.dtype(dtype)

    @st.composite
    def cases(draw: st.DrawFn) -> LayerCase:
        N = draw(st.integers(1, MAX_N))
        C = draw(st.integers(1, MAX_C))
        dim = draw(st.sampled_from((-1, 0)))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        x = _logits(draw, rng, (N, C) if dim == -1 else (C, N)).astype(dtype)
        return LayerCase(x, {}, {"dim": dim}, regimes=tuple(_common_regimes(x, N, C, dim)), dims={"N": N, "C": C})

    return cases()


def _draw_cross_entropy(dtype: Any) -> st.SearchStrategy[LayerCase]:
    dtype = np.dtype(dtype)

    @st.composite
    def cases(draw: st.DrawFn) -> LayerCase:
        N = draw(st.integers(1, MAX_N))
        C = draw(st.integers(1, MAX_C))
        reduction = draw(st.sampled_from(("mean", "sum")))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        x = _logits(draw, rng, (N, C)).astype(dtype)
        target = rng.integers(0, C, N).astype(np.int64)
        regimes = _common_regimes(x, N, C, -1)
        live = np.max(np.abs(_probabilities(x, -1) - np.eye(C)[target])) >= LIVE
        if reduction == "mean" and N >= 2 and live:  # 1/N is not 1 and s - y is not ~0
            regimes.append("mean, N>=2, live gradient")
        return LayerCase(x, {"target": target}, {"reduction": reduction}, regimes=tuple(regimes), dims={"N": N, "C": C})

    return cases()


# ------------------------------------------------------------------------------------------ mistakes


def _softmax_diagonal(dout: Any, x: Any, *, dim: int = -1) -> dict[str, Any]:
    xp = namespace(dout, x)
    e = xp.exp(x - xp.max(x, axis=dim, keepdims=True))
    s = e / xp.sum(e, axis=dim, keepdims=True)
    return {"x": dout * s * (1 - s)}


def _log_softmax_sum_missing(dout: Any, x: Any, *, dim: int = -1) -> dict[str, Any]:
    xp = namespace(dout, x)
    e = xp.exp(x - xp.max(x, axis=dim, keepdims=True))
    return {"x": dout - e / xp.sum(e, axis=dim, keepdims=True)}


def _cross_entropy_not_averaged(dout: Any, x: Any, target: Any, *, reduction: str = "mean") -> dict[str, Any]:
    xp = namespace(dout, x, target)
    C = x.shape[1]
    e = xp.exp(x - xp.max(x, axis=1, keepdims=True))
    s = e / xp.sum(e, axis=1, keepdims=True)
    y = xp.astype(xp.expand_dims(target, 1) == xp.arange(C, dtype=target.dtype, device=device(target)), x.dtype)
    return {"x": dout * (s - y), "target": None}


INFOS_HERE = (
    LayerInfo(
        "softmax",
        _softmax_twin,
        _draw_softmax,
        regimes=("N=1", "C=1", "large logits", "two live classes"),
        mistakes=(
            Mistake(
                "softmax Jacobian taken as its diagonal",
                _softmax_diagonal,
                formula="δ_x = δ ⊙ s ⊙ (1 - s) (for s ⊙ (δ - Σ_c δ_c s_c))",
                source="libnd4j issue 440, https://github.com/deeplearning4j/libnd4j/issues/440 (only output * (1 - output), "
                "the diagonal)",
                regime="two live classes",
            ),
        ),
        convention=("dim is the class axis; the maximum is subtracted before exp",),
    ),
    LayerInfo(
        "log_softmax",
        _log_softmax_twin,
        _draw_softmax,
        regimes=("N=1", "C=1", "large logits", "two live classes"),
        mistakes=(
            Mistake(
                "log_softmax's Σ δ missing",
                _log_softmax_sum_missing,
                formula="δ_x = δ - s (for δ - s Σ_c δ_c)",
            ),
        ),
        convention=("dim is the class axis; the maximum is subtracted before exp",),
    ),
    LayerInfo(
        "softmax_cross_entropy",
        _cross_entropy_twin,
        _draw_cross_entropy,
        regimes=("N=1", "C=1", "large logits", "two live classes", "mean, N>=2, live gradient"),
        mistakes=(
            Mistake(
                "mean's 1/N missing",
                _cross_entropy_not_averaged,
                formula="δ_x = δ (s - y) under reduction 'mean' (for δ (s - y) / N)",
                regime="mean, N>=2, live gradient",
            ),
        ),
        convention=(
            "integer class targets, not differentiated; no class weights, no ignore_index, no label smoothing",
            "reduction 'mean' divides the sum by N, 'sum' does not",
        ),
    ),
)
