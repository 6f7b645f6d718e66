r"""The normalization layers: ``layer_norm``, ``rms_norm`` and ``batch_norm``, each with its
hand-derived backward.

All three standardize an axis of ``x`` and then apply a per-feature affine map. Layer and RMS norm
normalize each row (over the last axis D, one statistic per example); batch norm normalizes each
column (over the batch axis N, one statistic per channel). The conventions are torch's: the variance
is the biased one (divided by the count, not count - 1) and eps sits inside the square root.

The backward of a standardization is one pattern, written once in :func:`_standardize_backward`:
with :math:`g = \partial E/\partial\hat{x}` and the mean taken over the normalized axis,
:math:`\delta_x = (g - \mathrm{mean}(g) - \hat{x} \circ \mathrm{mean}(g \circ \hat{x})) / \sigma`.
"""

from __future__ import annotations

import math
from typing import Any

from .._xp import Array, namespace
from .layer import Layer

__all__ = [
    "BATCH_NORM",
    "LAYERS_HERE",
    "LAYER_NORM",
    "RMS_NORM",
    "batch_norm",
    "batch_norm_backward",
    "layer_norm",
    "layer_norm_backward",
    "rms_norm",
    "rms_norm_backward",
]


def _check(layer: str, x: Array, eps: object, dout: Array | None = None, **vectors: Array) -> None:
    """Shapes and eps at the public boundary: ``x`` (N, D) with N, D >= 1, each vector (D,), ``dout``
    of x's shape, eps a finite real >= 0."""
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) != 2 or 0 in shape:
        raise ValueError(f"{layer}: x must be a 2-D array of shape (N, D) with N, D >= 1, got shape {shape}")
    for name, v in vectors.items():
        got = tuple(getattr(v, "shape", ()))
        if got != (shape[1],):
            raise ValueError(f"{layer}: {name} must have shape (D,) = ({shape[1]},) for x of shape {shape}, got {got}")
    if dout is not None and tuple(getattr(dout, "shape", ())) != shape:
        raise ValueError(f"{layer}: dout must have x's shape {shape}, got {tuple(getattr(dout, 'shape', ()))}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"{layer}: eps must be a finite real number >= 0, got {eps!r}")


def _standardize(x: Array, axis: int, eps: float, xp: Any) -> tuple[Array, Array]:
    r""":math:`\hat{x} = (x - \mu)/\sigma` and :math:`\sigma = \sqrt{\mathrm{var} + \epsilon}` over
    ``axis`` (biased variance, kept dims)."""
    mu = xp.mean(x, axis=axis, keepdims=True)
    xc = x - mu
    sigma = xp.sqrt(xp.mean(xc * xc, axis=axis, keepdims=True) + eps)
    return xc / sigma, sigma


def _standardize_backward(g: Array, x_hat: Array, sigma: Array, axis: int, xp: Any) -> Array:
    r""":math:`\delta_x = (g - \mathrm{mean}(g) - \hat{x} \circ \mathrm{mean}(g \circ \hat{x})) / \sigma`,
    means over ``axis`` (the normalized one)."""
    g_mean = xp.mean(g, axis=axis, keepdims=True)
    gx_mean = xp.mean(g * x_hat, axis=axis, keepdims=True)
    return (g - g_mean - x_hat * gx_mean) / sigma


# ------------------------------------------------------------------------------------- layer norm


def layer_norm(x: Array, weight: Array, bias: Array, *, eps: float = 1e-5) -> Array:
    r"""Layer normalization of each row: :math:`out = \gamma \circ \hat{x} + \beta`.

    Args:
        x: (N, D); each row is normalized over its D entries.
        weight: γ, (D,).
        bias: β, (D,).
        eps: added to the (biased) row variance inside the square root.

    Returns:
        out, (N, D).
    """
    _check("layer_norm", x, eps, weight=weight, bias=bias)
    xp = namespace(x, weight, bias)
    x_hat, _ = _standardize(x, -1, eps, xp)
    return x_hat * weight + bias


def layer_norm_backward(dout: Array, x: Array, weight: Array, bias: Array, *, eps: float = 1e-5) -> dict[str, Array]:
    r"""δ of layer norm, derived row by row (n indexes the batch, d and k the D features).

    Forward, per row n (means over the last axis, D entries; biased variance):
        μ_n = (1/D) Σ_d x_nd
        σ_n = sqrt((1/D) Σ_d (x_nd - μ_n)² + eps)
        x̂_nd = (x_nd - μ_n) / σ_n
        out_nd = γ_d x̂_nd + β_d

    Backward, δ_out = ∂E/∂out of shape (N, D):
        δ_β = Σ_n δ_out,n                                       (D,), summed over the batch
        δ_γ = Σ_n δ_out,n ∘ x̂_n                                 (D,), summed over the batch
        g = δ_out ∘ γ = ∂E/∂x̂                                   (N, D)
        ∂σ_n/∂x_nk = x̂_nk / D
        ∂x̂_nd/∂x_nk = (1[d = k] - 1/D - x̂_nd x̂_nk / D) / σ_n
        δ_x,nk = Σ_d g_nd ∂x̂_nd/∂x_nk
        δ_x = (g - mean_D(g) - x̂ ∘ mean_D(g ∘ x̂)) / σ          (N, D), means over the last axis

    With D = 1, x̂ = 0 exactly and so δ_x = 0 and δ_γ = 0.

    Returns:
        {"x": δ_x (N, D), "weight": δ_γ (D,), "bias": δ_β (D,)}.
    """
    _check("layer_norm", x, eps, dout, weight=weight, bias=bias)
    xp = namespace(dout, x, weight, bias)
    x_hat, sigma = _standardize(x, -1, eps, xp)
    g = dout * weight
    delta_x = _standardize_backward(g, x_hat, sigma, -1, xp)
    delta_weight = xp.sum(dout * x_hat, axis=0)
    delta_bias = xp.sum(dout, axis=0)
    return {"x": delta_x, "weight": delta_weight, "bias": delta_bias}


LAYER_NORM = Layer(
    "layer_norm",
    layer_norm,
    layer_norm_backward,
    params=("weight", "bias"),
    shapes={"x": "N D", "weight": "D", "bias": "D", "out": "N D"},
    constants={"eps": 1e-5},
    description="out = γ ∘ (x - μ)/sqrt(var + eps) + β, statistics of each row over its D entries",
)


# --------------------------------------------------------------------------------------- RMS norm


def _rms_normalize(x: Array, eps: float, xp: Any) -> tuple[Array, Array]:
    r""":math:`\hat{x} = x / r` and :math:`r = \sqrt{\mathrm{mean}(x^2) + \epsilon}` over the last axis."""
    r = xp.sqrt(xp.mean(x * x, axis=-1, keepdims=True) + eps)
    return x / r, r


def rms_norm(x: Array, weight: Array, *, eps: float = 1e-6) -> Array:
    r"""RMS normalization of each row: :math:`out = \gamma \circ x / \sqrt{\mathrm{mean}_D(x^2) + \epsilon}`
    (no centering, no bias).

    Args:
        x: (N, D); each row is scaled by its root mean square over its D entries.
        weight: γ, (D,).
        eps: added to the mean square inside the square root (a row of zeros gives out = 0).

    Returns:
        out, (N, D).
    """
    _check("rms_norm", x, eps, weight=weight)
    xp = namespace(x, weight)
    x_hat, _ = _rms_normalize(x, eps, xp)
    return x_hat * weight


def rms_norm_backward(dout: Array, x: Array, weight: Array, *, eps: float = 1e-6) -> dict[str, Array]:
    r"""δ of RMS norm, derived row by row (n indexes the batch, d and k the D features).

    Forward, per row n (mean over the last axis, D entries):
        r_n = sqrt((1/D) Σ_d x_nd² + eps)
        x̂_nd = x_nd / r_n
        out_nd = γ_d x̂_nd

    Backward, δ_out = ∂E/∂out of shape (N, D):
        δ_γ = Σ_n δ_out,n ∘ x̂_n                      (D,), summed over the batch
        g = δ_out ∘ γ = ∂E/∂x̂                        (N, D)
        ∂r_n/∂x_nk = x̂_nk / D
        ∂x̂_nd/∂x_nk = (1[d = k] - x̂_nd x̂_nk / D) / r_n
        δ_x = (g - x̂ ∘ mean_D(g ∘ x̂)) / r             (N, D), mean over the last axis

    A row of zeros has r = sqrt(eps) and x̂ = 0 there, so its δ_x = g / sqrt(eps): finite for eps > 0.

    Returns:
        {"x": δ_x (N, D), "weight": δ_γ (D,)}.
    """
    _check("rms_norm", x, eps, dout, weight=weight)
    xp = namespace(dout, x, weight)
    x_hat, r = _rms_normalize(x, eps, xp)
    g = dout * weight
    gx_mean = xp.mean(g * x_hat, axis=-1, keepdims=True)
    delta_x = (g - x_hat * gx_mean) / r
    delta_weight = xp.sum(dout * x_hat, axis=0)
    return {"x": delta_x, "weight": delta_weight}


RMS_NORM = Layer(
    "rms_norm",
    rms_norm,
    rms_norm_backward,
    params=("weight",),
    shapes={"x": "N D", "weight": "D", "out": "N D"},
    constants={"eps": 1e-6},
    description="out = γ ∘ x / sqrt(mean(x²) + eps), the mean of each row over its D entries",
)


# ------------------------------------------------------------------------------------- batch norm


def _check_training(x: Array, training: object) -> None:
    if not isinstance(training, bool):
        raise TypeError(f"batch_norm: training must be True or False, got {training!r}")
    if training and x.shape[0] < 2:
        raise ValueError(
            f"batch_norm: training=True needs N >= 2 rows (one row has no batch variance; torch refuses it "
            f"too), got x of shape {tuple(x.shape)}; pass training=False to use running_mean and running_var"
        )


def _batch_statistics(
    x: Array, running_mean: Array, running_var: Array, training: bool, eps: float, xp: Any
) -> tuple[Array, Array]:
    """x̂ and σ, from the batch's columns in training, from the running statistics in eval."""
    if training:
        return _standardize(x, 0, eps, xp)
    sigma = xp.sqrt(running_var + eps)
    return (x - running_mean) / sigma, sigma


def batch_norm(
    x: Array,
    weight: Array,
    bias: Array,
    running_mean: Array,
    running_var: Array,
    *,
    training: bool = True,
    eps: float = 1e-5,
) -> Array:
    r"""Batch normalization of each column (channel): :math:`out = \gamma \circ \hat{x} + \beta`.

    Args:
        x: (N, C); each column is normalized over the N examples of the batch.
        weight: γ, (C,).
        bias: β, (C,).
        running_mean: (C,), used as μ when ``training`` is False (not updated here: torch's update of
            the running statistics is a side effect, not part of out).
        running_var: (C,), used as the variance when ``training`` is False.
        training: True: μ and the biased variance of the batch (N >= 2); False: the running ones.
        eps: added to the variance inside the square root.

    Returns:
        out, (N, C).
    """
    _check("batch_norm", x, eps, weight=weight, bias=bias, running_mean=running_mean, running_var=running_var)
    _check_training(x, training)
    xp = namespace(x, weight, bias, running_mean, running_var)
    x_hat, _ = _batch_statistics(x, running_mean, running_var, training, eps, xp)
    return x_hat * weight + bias


def batch_norm_backward(
    dout: Array,
    x: Array,
    weight: Array,
    bias: Array,
    running_mean: Array,
    running_var: Array,
    *,
    training: bool = True,
    eps: float = 1e-5,
) -> dict[str, Array | None]:
    r"""δ of batch norm, derived column by column (c indexes the C channels, n and m the batch).

    Forward in training, per column c (means over the batch axis, N rows; biased variance):
        μ_c = (1/N) Σ_n x_nc
        σ_c = sqrt((1/N) Σ_n (x_nc - μ_c)² + eps)
        x̂_nc = (x_nc - μ_c) / σ_c
        out_nc = γ_c x̂_nc + β_c
    Forward in eval: μ = running_mean and σ = sqrt(running_var + eps), constants.

    Backward, δ_out = ∂E/∂out of shape (N, C):
        δ_β = Σ_n δ_out,n                                      (C,), summed over the batch
        δ_γ = Σ_n δ_out,n ∘ x̂_n                                (C,), summed over the batch
        g = δ_out ∘ γ = ∂E/∂x̂                                  (N, C)
    in training, where every x_mc moves μ_c and σ_c:
        ∂σ_c/∂x_mc = x̂_mc / N
        ∂x̂_nc/∂x_mc = (1[n = m] - 1/N - x̂_nc x̂_mc / N) / σ_c
        δ_x = (g - mean_N(g) - x̂ ∘ mean_N(g ∘ x̂)) / σ         (N, C), means over the batch axis
    in eval, where μ and σ do not depend on x (the affine map's backward):
        δ_x = g / σ                                            (N, C)
    running_mean and running_var are not differentiated (None).

    Returns:
        {"x": δ_x (N, C), "weight": δ_γ (C,), "bias": δ_β (C,), "running_mean": None, "running_var": None}.
    """
    _check("batch_norm", x, eps, dout, weight=weight, bias=bias, running_mean=running_mean, running_var=running_var)
    _check_training(x, training)
    xp = namespace(dout, x, weight, bias, running_mean, running_var)
    x_hat, sigma = _batch_statistics(x, running_mean, running_var, training, eps, xp)
    g = dout * weight
    delta_x = _standardize_backward(g, x_hat, sigma, 0, xp) if training else g / sigma
    delta_weight = xp.sum(dout * x_hat, axis=0)
    delta_bias = xp.sum(dout, axis=0)
    return {"x": delta_x, "weight": delta_weight, "bias": delta_bias, "running_mean": None, "running_var": None}


BATCH_NORM = Layer(
    "batch_norm",
    batch_norm,
    batch_norm_backward,
    params=("weight", "bias", "running_mean", "running_var"),
    shapes={"x": "N C", "weight": "C", "bias": "C", "running_mean": "C", "running_var": "C", "out": "N C"},
    constants={"training": True, "eps": 1e-5},
    nondiff=("running_mean", "running_var"),
    description="out = γ ∘ (x - μ)/sqrt(var + eps) + β, statistics of each column over the batch (training) "
    "or the running ones (eval)",
)


LAYERS_HERE = (LAYER_NORM, RMS_NORM, BATCH_NORM)
