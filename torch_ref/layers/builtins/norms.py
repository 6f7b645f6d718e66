r"""The oracle's side of the normalization layers: torch's functionals as twins, draws that reach
the regimes where normalization backwards go wrong, and the catalogue of wrong backwards.

Every draw takes values from a NumPy generator seeded by a drawn integer, so Hypothesis shrinks the
seed and the dims (N, D) while the values stay bounded. The value regimes are:

- "ordinary": rows (columns for batch norm) c + s·z with |c| <= 1, s in [0.3, 1], z of mean 0 and
  mean square 1 (so |x| <= ~3); every statistic between 1e-2 and 1e2;
- "tiny variance": |c| <= 3 and s in [10^-2.75, 10^-2.25]: the variance s² (3e-6 to 3e-5, at most
  1e-4 = 10 eps) is comparable to eps, yet float32 keeps about four digits of x - μ; in eval batch
  norm, running_var in [1e-6, 3e-5];
- "large variance": c = 0 and s in [1e2, 1e3], where eps no longer matters;
- "zero row" and "tiny scale" (rms_norm only): a row of exact zeros (r = sqrt(eps)); c = 0 and s in
  [10^-3.25, 10^-2.75] (mean square comparable to eps). rms_norm does not subtract the mean, so a nearly
  constant row is an ordinary row to it: "tiny scale" is its eps regime, not "tiny variance";

and the shape regimes "N=1", "D=1" (layer norm: x̂ = 0 exactly), "D=2" (layer norm) and "N=2" (batch
norm training): x̂ = ±1 nearly, and δ_x nearly 0 by cancellation. Every label in ``case.regimes`` is
checked on the values drawn (cast to the dtype), not taken from the choice meant to produce it.

γ is drawn with |γ| in [0.5, 0.9] ∪ [1.1, 1.9] and either sign: a γ near 1 would hide a backward that
forgets to multiply by it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from manual._xp import Array, namespace
from manual.layers.norms import batch_norm_backward, layer_norm_backward, rms_norm_backward

from ..case import LayerCase
from ..info import LayerInfo, Mistake
from .staged import staged_batch_norm, staged_layer_norm

__all__ = ["INFOS_HERE"]

_TINY_VAR = 1e-4  # "tiny variance": every normalized variance at most this (10 eps of layer/batch norm)
_TINY_SQUARE = 1e-5  # "tiny scale": every row's mean square at most this (10 eps of rms_norm)
_LARGE_VAR = 1e2  # "large variance": every normalized variance at least this
_ORDINARY = (1e-2, 1e2)  # "ordinary": every statistic in this range


# ------------------------------------------------------------------------------------------- twins


def _layer_norm_twin(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, *, eps: float = 1e-5) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def _rms_norm_twin(x: torch.Tensor, weight: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    return F.rms_norm(x, (x.shape[-1],), weight, eps)


def _batch_norm_twin(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    *,
    training: bool = True,
    eps: float = 1e-5,
) -> torch.Tensor:
    # torch updates the running statistics in place in training: on copies, so the case stays as drawn
    return F.batch_norm(x, running_mean.clone(), running_var.clone(), weight, bias, training, 0.1, eps)


# ------------------------------------------------------------------------------------------- draws


def _values(rng: np.random.Generator, n: int, d: int, values: str) -> np.ndarray:
    """(n, d) in float64, each row c + s·z in the value regime ``values``: z has mean 0 and mean square 1
    (z = ±1 where d = 1), so a row's spread is s as the regime asks, not left to chance (two nearly
    equal entries would make an "ordinary" row nearly constant, and hide every mistake in a x̂ term)."""
    u = rng.uniform(-1, 1, (n, d))
    z = np.where(u >= 0, 1.0, -1.0) if d == 1 else u - u.mean(axis=1, keepdims=True)
    z = z / np.sqrt(np.mean(z * z, axis=1, keepdims=True))
    if values == "tiny variance":  # variance s² in [3e-6, 3e-5]: comparable to eps, x̂ well away from 0
        c, s = rng.uniform(-3, 3, (n, 1)), 10 ** rng.uniform(-2.75, -2.25, (n, 1))
    elif values == "large variance":
        c, s = np.zeros((n, 1)), 10 ** rng.uniform(2, 3, (n, 1))
    elif values == "tiny scale":  # mean square s² in [3e-7, 3e-6]: comparable to rms_norm's eps
        c, s = np.zeros((n, 1)), 10 ** rng.uniform(-3.25, -2.75, (n, 1))
    else:
        c, s = rng.uniform(-1, 1, (n, 1)), rng.uniform(0.3, 1.0, (n, 1))
    x = c + s * z
    if values == "zero row":
        x[rng.integers(n)] = 0
    return x


def _value_regime(*hard: str) -> st.SearchStrategy[str]:
    """Draws "ordinary" half the time (and shrinks to it), one of the ``hard`` value regimes otherwise: the
    shape regimes (N=1, D=1, ...) already take many draws, and the mistakes that need "ordinary" need cases."""
    return st.one_of(st.just("ordinary"), st.sampled_from(hard))


def _gamma(rng: np.random.Generator, d: int) -> np.ndarray:
    magnitude = rng.uniform(0.5, 1.7, d)
    magnitude = np.where(magnitude > 0.9, magnitude + 0.2, magnitude)
    return rng.choice([-1.0, 1.0], d) * magnitude


def _spread_regimes(var: np.ndarray, values: str) -> list[str]:
    """The variance labels met by every normalized variance ``var`` (float64)."""
    if np.all((var > 0) & (var <= _TINY_VAR)):
        return ["tiny variance"]
    if np.all(var >= _LARGE_VAR):
        return ["large variance"]
    if values == "ordinary" and np.all((var >= _ORDINARY[0]) & (var <= _ORDINARY[1])):
        return ["ordinary"]
    return []


def _eps(draw: Any, values: str, default: float) -> float:
    """eps: the default where the values' regime is measured against it (tiny variance or scale, a zero
    row); elsewhere also 100 or 10^4 times it, so that a backward which ignores its eps argument shows."""
    if values in ("tiny variance", "tiny scale", "zero row"):
        return default
    return float(draw(st.sampled_from((default, 100 * default, 1e4 * default))))


def _finish(regimes: list[str], shape_regimes: list[str]) -> tuple[str, ...]:
    """The labels, with "ordinary" only where no other hard regime holds."""
    if shape_regimes and "ordinary" in regimes:
        regimes.remove("ordinary")
    return tuple(shape_regimes + regimes)


@st.composite
def _layer_norm_cases(draw: Any, dtype: np.dtype) -> LayerCase:
    n, d = draw(st.integers(1, 6)), draw(st.integers(1, 8))
    values = draw(_value_regime("tiny variance", "large variance"))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = _values(rng, n, d, values).astype(dtype)
    params = {"weight": _gamma(rng, d).astype(dtype), "bias": rng.uniform(-1, 1, d).astype(dtype)}
    shape_regimes = ["N=1"] * (n == 1) + ["D=1"] * (d == 1) + ["D=2"] * (d == 2)
    regimes = _spread_regimes(x.astype(np.float64).var(axis=1), values)
    return LayerCase(x, params, {"eps": _eps(draw, values, 1e-5)}, _finish(regimes, shape_regimes), {"N": n, "D": d})


@st.composite
def _rms_norm_cases(draw: Any, dtype: np.dtype) -> LayerCase:
    n, d = draw(st.integers(1, 6)), draw(st.integers(1, 8))
    values = draw(_value_regime("zero row", "tiny scale", "large variance"))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = _values(rng, n, d, values).astype(dtype)
    params = {"weight": _gamma(rng, d).astype(dtype)}
    x64 = x.astype(np.float64)
    square = np.mean(x64 * x64, axis=1)
    shape_regimes = ["N=1"] * (n == 1) + ["D=1"] * (d == 1)
    if np.any(np.all(x64 == 0, axis=1)):
        regimes = ["zero row"]
    elif np.all(square <= _TINY_SQUARE):
        regimes = ["tiny scale"]
    elif np.all(x64.var(axis=1) >= _LARGE_VAR):
        regimes = ["large variance"]
    elif values == "ordinary" and np.all((square >= _ORDINARY[0]) & (square <= _ORDINARY[1])):
        regimes = ["ordinary"]  # rms_norm's statistic is the mean square
    else:
        regimes = []
    return LayerCase(x, params, {"eps": _eps(draw, values, 1e-6)}, _finish(regimes, shape_regimes), {"N": n, "D": d})


@st.composite
def _batch_norm_cases(draw: Any, dtype: np.dtype) -> LayerCase:
    training = draw(st.booleans())
    n, c = draw(st.integers(2 if training else 1, 6)), draw(st.integers(1, 8))
    values = draw(_value_regime("tiny variance", "large variance"))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = _values(rng, c, n, values).T  # the regime's rows are batch norm's columns
    # eval normalizes with the running statistics: drawn near the batch's so out stays moderate
    if values == "tiny variance":
        mean, var = x.mean(axis=0) + 1e-3 * rng.uniform(-1, 1, c), 1e-5 * 10 ** rng.uniform(-1, 0.5, c)
    elif values == "large variance":
        scale = np.abs(x).max(axis=0) + 1e2
        mean, var = 0.1 * scale * rng.uniform(-1, 1, c), scale**2 * rng.uniform(0.1, 0.5, c)
    else:
        mean, var = rng.uniform(-1, 1, c), rng.uniform(0.25, 2.5, c)
    x = np.ascontiguousarray(x).astype(dtype)
    params = {
        "weight": _gamma(rng, c).astype(dtype),
        "bias": rng.uniform(-1, 1, c).astype(dtype),
        "running_mean": mean.astype(dtype),
        "running_var": var.astype(dtype),
    }
    used = x.astype(np.float64).var(axis=0) if training else params["running_var"].astype(np.float64)
    shape_regimes = ["N=1"] * (n == 1) + ["N=2"] * (training and n == 2)
    regimes = _finish(_spread_regimes(used, values), shape_regimes)
    mode = "training" if training else "eval"
    constants = {"training": training, "eps": _eps(draw, values, 1e-5)}
    return LayerCase(x, params, constants, (mode, *regimes), {"N": n, "C": c})


# ---------------------------------------------------------------------------------------- mistakes


def _stats(
    x: Array, axis: int, eps: float, xp: Any, *, ddof: int = 0, eps_outside: bool = False
) -> tuple[Array, Array]:
    """x̂ and σ over ``axis``, with the variance divided by count - ddof, eps inside or outside the root."""
    xc = x - xp.mean(x, axis=axis, keepdims=True)
    var = xp.sum(xc * xc, axis=axis, keepdims=True) / (x.shape[axis] - ddof)
    sigma = xp.sqrt(var) + eps if eps_outside else xp.sqrt(var + eps)
    return xc / sigma, sigma


def _mean(a: Array, axis: int, xp: Any) -> Array:
    return xp.mean(a, axis=axis, keepdims=True)


def _ln(kind: str) -> Any:
    """A wrong layer_norm backward; ``kind`` names the mistake."""

    def backward(dout: Array, x: Array, weight: Array, bias: Array, *, eps: float = 1e-5) -> dict[str, Any]:
        xp = namespace(dout, x, weight, bias)
        right = layer_norm_backward(dout, x, weight, bias, eps=eps)
        if kind == "bessel" and x.shape[-1] < 2:
            return right  # one entry per row: n - 1 = 0, the mistake has no value (its regime has D >= 2)
        ddof = 1 if kind == "bessel" else 0
        x_hat, sigma = _stats(x, -1, eps, xp, ddof=ddof, eps_outside=kind == "eps outside")
        g = dout * weight
        if kind == "constants":
            right["x"] = g / sigma
        elif kind == "no mean":
            right["x"] = (g - x_hat * _mean(g * x_hat, -1, xp)) / sigma
        elif kind == "no variance":
            right["x"] = (g - _mean(g, -1, xp)) / sigma
        elif kind == "batch axis":  # batch norm's backward: statistics and means over axis 0
            x_hat, sigma = _stats(x, 0, eps, xp)
            right["x"] = (g - _mean(g, 0, xp) - x_hat * _mean(g * x_hat, 0, xp)) / sigma
            right["weight"] = xp.sum(dout * x_hat, axis=0)
        elif kind == "x for x_hat":
            right["weight"] = xp.sum(dout * x, axis=0)
        elif kind in ("eps outside", "bessel"):  # the right formula on other statistics
            right["x"] = (g - _mean(g, -1, xp) - x_hat * _mean(g * x_hat, -1, xp)) / sigma
            right["weight"] = xp.sum(dout * x_hat, axis=0)
        return right

    return backward


def _rms(kind: str) -> Any:
    """A wrong rms_norm backward; ``kind`` names the mistake."""

    def backward(dout: Array, x: Array, weight: Array, *, eps: float = 1e-6) -> dict[str, Any]:
        xp = namespace(dout, x, weight)
        right = rms_norm_backward(dout, x, weight, eps=eps)
        square = _mean(x * x, -1, xp)
        r = xp.sqrt(square) + eps if kind == "eps outside" else xp.sqrt(square + eps)
        x_hat = x / r
        g = dout if kind == "no gamma" else dout * weight
        right["x"] = g / r if kind == "constants" else (g - x_hat * _mean(g * x_hat, -1, xp)) / r
        return right

    return backward


def _bn(kind: str) -> Any:
    """A wrong batch_norm backward; ``kind`` names the mistake (each in its own mode only)."""

    def backward(
        dout: Array,
        x: Array,
        weight: Array,
        bias: Array,
        running_mean: Array,
        running_var: Array,
        *,
        training: bool = True,
        eps: float = 1e-5,
    ) -> dict[str, Any]:
        xp = namespace(dout, x, weight, bias, running_mean, running_var)
        right = batch_norm_backward(dout, x, weight, bias, running_mean, running_var, training=training, eps=eps)
        g = dout * weight
        if not training and kind == "eps outside":
            right["x"] = g / (xp.sqrt(running_var) + eps)
        if training == (kind == "eval through batch"):
            return right  # the mistake belongs to the other mode: the right backward
        x_hat, sigma = _stats(x, 0, eps, xp, ddof=1 if kind == "bessel" else 0, eps_outside=kind == "eps outside")
        if kind == "constants":
            right["x"] = g / sigma
        elif kind == "no mean":
            right["x"] = (g - x_hat * _mean(g * x_hat, 0, xp)) / sigma
        elif kind == "no variance":
            right["x"] = (g - _mean(g, 0, xp)) / sigma
        else:  # "bessel", "eps outside", "eval through batch": the training formula on other statistics
            right["x"] = (g - _mean(g, 0, xp) - x_hat * _mean(g * x_hat, 0, xp)) / sigma
            right["weight"] = xp.sum(dout * x_hat, axis=0)
        return right

    return backward


_IOFFE = (
    "S. Ioffe, C. Szegedy, 'Batch Normalization: Accelerating Deep Network Training by Reducing Internal "
    "Covariate Shift' (ICML 2015), section 2: normalization left out of the gradient step"
)
_CRYPTEN = (
    "CrypTen pull request 143, https://github.com/facebookresearch/CrypTen/pull/143 (the batch norm backward ignored "
    "that the mean and variance depend on the input); "
)
_KARPATHY = "A. Karpathy, 'Building makemore Part 4: Becoming a Backprop Ninja' (2022): Bessel's correction"

_LAYER_NORM_MISTAKES = (
    Mistake("row statistics treated as constants", _ln("constants"), "", "δ_x = g/σ"),
    Mistake("mean term missing", _ln("no mean"), "", "δ_x = (g - x̂ ∘ mean_D(g ∘ x̂))/σ"),
    Mistake("x̂ (variance) term missing", _ln("no variance"), "", "δ_x = (g - mean_D(g))/σ", "ordinary"),
    Mistake(
        "normalized over the batch axis in the backward",
        _ln("batch axis"),
        "",
        "δ_x = (g - mean_N(g) - x̂_B ∘ mean_N(g ∘ x̂_B))/σ_B, δ_γ = Σ_N δ_out ∘ x̂_B: columns' μ_B, σ_B",
        "ordinary",
    ),
    Mistake("δ_γ from x instead of x̂", _ln("x for x_hat"), "", "δ_γ = Σ_N δ_out ∘ x"),
    Mistake("eps outside the square root", _ln("eps outside"), "", "σ = sqrt(var) + eps", "tiny variance"),
    Mistake(
        "variance with n-1 (Bessel) in the backward",
        _ln("bessel"),
        _KARPATHY,
        "σ = sqrt(Σ_D (x - μ)²/(D-1) + eps), x̂ = (x - μ)/σ in δ_x and δ_γ",
        "ordinary",
    ),
)
_RMS_NORM_MISTAKES = (
    Mistake("mean(g ∘ x̂) term missing", _rms("constants"), "", "δ_x = g/r", "ordinary"),
    Mistake(
        "γ left out of δ_x",
        _rms("no gamma"),
        "llm.c pull request 763, https://github.com/karpathy/llm.c/pull/763 (a reviewer's RMSNorm backward that forgot "
        "the weight)",
        "δ_x = (δ_out - x̂ ∘ mean_D(δ_out ∘ x̂))/r",
        "ordinary",
    ),
    Mistake("eps outside the square root", _rms("eps outside"), "", "r = sqrt(mean_D(x²)) + eps", "zero row"),
)
_BATCH_NORM_MISTAKES = (
    Mistake("batch statistics treated as constants", _bn("constants"), _CRYPTEN + _IOFFE, "δ_x = g/σ", "training"),
    Mistake(
        "variance with n-1 (Bessel) in the backward",
        _bn("bessel"),
        _KARPATHY,
        "σ = sqrt(Σ_N (x - μ)²/(N-1) + eps), x̂ = (x - μ)/σ in δ_x and δ_γ",
        "training",
    ),
    Mistake("mean term missing", _bn("no mean"), "", "δ_x = (g - x̂ ∘ mean_N(g ∘ x̂))/σ", "training"),
    Mistake("x̂ (variance) term missing", _bn("no variance"), "", "δ_x = (g - mean_N(g))/σ", "training"),
    Mistake(
        "eval-mode batch norm backpropagated through batch statistics",
        _bn("eval through batch"),
        "MatConvNet issue 1174, https://github.com/vlfeat/matconvnet/issues/1174 (the batch-statistics formula used "
        "with moments given from outside)",
        "δ_x = (g - mean_N(g) - x̂_B ∘ mean_N(g ∘ x̂_B))/σ_B with the batch's μ_B, σ_B",
        "eval",
    ),
    Mistake("eps outside the square root", _bn("eps outside"), "", "σ = sqrt(var) + eps", "tiny variance"),
)

_STATS = "biased variance (divided by the count, as torch's), eps inside the square root"

INFOS_HERE = (
    LayerInfo(
        "layer_norm",
        _layer_norm_twin,
        _layer_norm_cases,
        ("ordinary", "N=1", "D=1", "D=2", "tiny variance", "large variance"),
        _LAYER_NORM_MISTAKES,
        ("statistics of each row over its D entries; " + _STATS, "D = 1: x̂ = 0 exactly, δ_x = 0, δ_γ = 0"),
        algorithms=(staged_layer_norm,),
    ),
    LayerInfo(
        "rms_norm",
        _rms_norm_twin,
        _rms_norm_cases,
        ("ordinary", "N=1", "D=1", "zero row", "tiny scale", "large variance"),
        _RMS_NORM_MISTAKES,
        ("root mean square of each row, eps inside the square root", "a zero row: out = 0, δ_x = δ_out ∘ γ/sqrt(eps)"),
    ),
    LayerInfo(
        "batch_norm",
        _batch_norm_twin,
        _batch_norm_cases,
        ("training", "eval", "ordinary", "N=1", "N=2", "tiny variance", "large variance"),
        _BATCH_NORM_MISTAKES,
        (
            "training: statistics of each column over the batch (N >= 2); " + _STATS,
            "eval: running_mean and running_var as constants (the affine map's backward)",
            "running_mean, running_var: not differentiated; torch's in-place update goes to copies",
        ),
        algorithms=(staged_batch_norm,),
    ),
)
