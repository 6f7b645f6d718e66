r"""The normalizations written stage by stage, node by node of their computational graph (as CS231n's
batch-norm exercise and F. Kratzert's "Understanding the backward pass through Batch Normalization
Layer", 2016, write them): right algorithms whose roundings differ from autograd's and from the
one-line formula's. The staged ``δ_μ = -Σ(δ_{xμ,1} + δ_{xμ,2})`` holds a term in Σ(x - μ), zero in exact
arithmetic and of rounding size in floating point, which neither of the others computes; the rounding
model (:mod:`torch_ref.layers.rounding`) takes these algorithms' terms too, so a staged backward in
float32 is judged on its own roundings (:attr:`LayerInfo.algorithms`).

Each is ``algorithm(arrays, dout, constants) -> (out, {name: gradient})``, array-API code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from manual._xp import Array, namespace

__all__ = ["staged_batch_norm", "staged_layer_norm"]


def _staged(x: Array, weight: Array, bias: Array, dout: Array, eps: float, axis: int) -> tuple[Array, dict[str, Array]]:
    """The forward and backward node by node, statistics over ``axis`` (0: batch norm, -1: layer norm)."""
    xp = namespace(x, weight, bias, dout)
    n = x.shape[axis]
    mu = xp.mean(x, axis=axis, keepdims=True)
    xmu = x - mu
    sq = xmu * xmu
    var = xp.mean(sq, axis=axis, keepdims=True)
    sqrtvar = xp.sqrt(var + eps)
    ivar = 1.0 / sqrtvar
    xhat = xmu * ivar
    out = weight * xhat + bias
    dbeta = xp.sum(dout, axis=0)
    dgamma = xp.sum(dout * xhat, axis=0)
    dxhat = dout * weight
    divar = xp.sum(dxhat * xmu, axis=axis, keepdims=True)
    dxmu1 = dxhat * ivar
    dsqrtvar = -1.0 / (sqrtvar * sqrtvar) * divar
    dvar = 0.5 * ivar * dsqrtvar
    dsq = xp.ones_like(x) * dvar / n
    dxmu2 = 2 * xmu * dsq
    dmu = -xp.sum(dxmu1 + dxmu2, axis=axis, keepdims=True)
    dx = dxmu1 + dxmu2 + xp.ones_like(x) * dmu / n
    return out, {"x": dx, "weight": dgamma, "bias": dbeta}


def staged_batch_norm(arrays: Mapping[str, Array], dout: Array, constants: Mapping[str, Any]) -> Any:
    """Batch norm in training (statistics over the batch), stage by stage; eval mode is the affine
    map of the one-line formula, so it has no staged algorithm of its own (ValueError: skipped)."""
    if not constants.get("training", True):
        raise ValueError("eval-mode batch norm has no staged algorithm")
    out, grads = _staged(arrays["x"], arrays["weight"], arrays["bias"], dout, constants.get("eps", 1e-5), 0)
    return out, {**grads, "running_mean": None, "running_var": None}


def staged_layer_norm(arrays: Mapping[str, Array], dout: Array, constants: Mapping[str, Any]) -> Any:
    """Layer norm (statistics over each row), stage by stage."""
    return _staged(arrays["x"], arrays["weight"], arrays["bias"], dout, constants.get("eps", 1e-5), -1)
