"""The oracle's side of the dense family (linear, residual): torch twins, draws, published mistakes.

The weight is drawn and passed in the slides' layout ``(in, out)``; the twins hand torch its
transpose, ``F.linear(x, weight.T, bias)``, the one place the two layouts meet.

Regimes: "square" is I = O >= 2 (a 1 x 1 W is its own transpose, so a transposition mistake cannot
show); "|I|>=1" is a residual case with some pre-activation of size 1 or more, where tanh'(I) taken
as 1 - I² is off by 0.42 or more (for small I the two agree to O(I⁴)).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from manual._xp import namespace

from ..case import LayerCase
from ..info import LayerInfo, Mistake

__all__ = ["INFOS_HERE"]

MAX_DIM = 6


def _linear_twin(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return F.linear(x, weight.T, bias)


def _residual_twin(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return x + torch.tanh(F.linear(x, weight.T, bias))


def _batch_regimes(N: int) -> list[str]:
    return ["N=1"] if N == 1 else ["N>=2"]


def _draw_linear(dtype: Any) -> st.SearchStrategy[LayerCase]:
    dtype = np.dtype(dtype)

    @st.composite
    def cases(draw: st.DrawFn) -> LayerCase:
        N = draw(st.integers(1, MAX_DIM))
        I = draw(st.integers(1, MAX_DIM))
        O = I if draw(st.booleans()) else draw(st.integers(1, MAX_DIM))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        x = rng.uniform(-3, 3, (N, I)).astype(dtype)
        weight = rng.uniform(-1, 1, (I, O)).astype(dtype)
        bias = rng.uniform(-1, 1, (O,)).astype(dtype)
        regimes = _batch_regimes(N)
        if I == O >= 2:  # W and Wᵀ have one shape and differ (a 1 x 1 W is its own transpose)
            regimes.append("square")
        return LayerCase(x, {"weight": weight, "bias": bias}, regimes=tuple(regimes), dims={"N": N, "I": I, "O": O})

    return cases()


def _draw_residual(dtype: Any) -> st.SearchStrategy[LayerCase]:
    dtype = np.dtype(dtype)

    @st.composite
    def cases(draw: st.DrawFn) -> LayerCase:
        N = draw(st.integers(1, MAX_DIM))
        D = draw(st.integers(1, MAX_DIM))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        x = rng.uniform(-3, 3, (N, D)).astype(dtype)
        # |x W + b| stays within a few units: tanh' = 1 - O² is neither 1 nor 0 everywhere
        weight = (rng.uniform(-1, 1, (D, D)) / np.sqrt(D)).astype(dtype)
        bias = rng.uniform(-1, 1, (D,)).astype(dtype)
        regimes = _batch_regimes(N) + (["D=1"] if D == 1 else [])
        I = x.astype(np.float64) @ weight.astype(np.float64) + bias.astype(np.float64)
        if np.max(np.abs(I)) >= 1:  # 1 - I² and 1 - tanh²(I) differ by 0.42 or more there
            regimes.append("|I|>=1")
        return LayerCase(x, {"weight": weight, "bias": bias}, regimes=tuple(regimes), dims={"N": N, "D": D})

    return cases()


# ------------------------------------------------------------------------------------------ mistakes


def _linear_bias_averaged(dout: Any, x: Any, weight: Any, bias: Any) -> dict[str, Any]:
    xp = namespace(dout, x, weight, bias)
    return {"x": dout @ weight.T, "weight": x.T @ dout, "bias": xp.mean(dout, axis=0)}


def _linear_weight_not_transposed(dout: Any, x: Any, weight: Any, bias: Any) -> dict[str, Any]:
    xp = namespace(dout, x, weight, bias)
    return {"x": dout @ weight, "weight": x.T @ dout, "bias": xp.sum(dout, axis=0)}


def _linear_weight_grad_transposed(dout: Any, x: Any, weight: Any, bias: Any) -> dict[str, Any]:
    xp = namespace(dout, x, weight, bias)
    return {"x": dout @ weight.T, "weight": dout.T @ x, "bias": xp.sum(dout, axis=0)}


def _residual_skip_missing(dout: Any, x: Any, weight: Any, bias: Any) -> dict[str, Any]:
    xp = namespace(dout, x, weight, bias)
    O = xp.tanh(x @ weight + bias)
    delta_I = dout * (1 - O * O)
    return {"x": delta_I @ weight.T, "weight": x.T @ delta_I, "bias": xp.sum(delta_I, axis=0)}


def _residual_tanh_at_input(dout: Any, x: Any, weight: Any, bias: Any) -> dict[str, Any]:
    xp = namespace(dout, x, weight, bias)
    I = x @ weight + bias
    delta_I = dout * (1 - I * I)
    return {"x": dout + delta_I @ weight.T, "weight": x.T @ delta_I, "bias": xp.sum(delta_I, axis=0)}


LINEAR_MISTAKES = (
    Mistake(
        "bias gradient averaged over the batch",
        _linear_bias_averaged,
        formula="δ_b = (1/N) Σ_n δ[n, :] (the forward sums, so the gradient is the sum)",
        regime="N>=2",
    ),
    Mistake(
        "W not transposed in δ_x",
        _linear_weight_not_transposed,
        formula="δ_u = δ W (for δ Wᵀ); runs only where W is square",
        regime="square",
    ),
    Mistake(
        "weight gradient transposed",
        _linear_weight_grad_transposed,
        formula="δ_W = δᵀ u (for uᵀ δ); has W's shape only where W is square",
        regime="square",
    ),
)

RESIDUAL_MISTAKES = (
    Mistake(
        "skip connection's δ missing",
        _residual_skip_missing,
        formula="δ_u = δ_I Wᵀ (for δ + δ_I Wᵀ)",
    ),
    Mistake(
        "tanh' taken at the pre-activation",
        _residual_tanh_at_input,
        formula="δ_I = δ ⊙ (1 - I ⊙ I) (for δ ⊙ (1 - O ⊙ O)); close to right where every |I| is small",
        regime="|I|>=1",
    ),
)

INFOS_HERE = (
    LayerInfo(
        "linear",
        _linear_twin,
        _draw_linear,
        regimes=("N=1", "N>=2", "square"),
        mistakes=LINEAR_MISTAKES,
        convention=(
            "weight in the slides' layout (in, out); the twin passes its transpose to F.linear",
            "parameter gradients are sums over the batch",
        ),
    ),
    LayerInfo(
        "residual",
        _residual_twin,
        _draw_residual,
        regimes=("N=1", "N>=2", "D=1", "|I|>=1"),
        mistakes=RESIDUAL_MISTAKES,
        convention=("weight in the slides' layout (in, out); the twin passes its transpose to F.linear",),
    ),
)
