r"""Right layer backwards written the ways users write them, each beside one wrong counterpart: for
``docs/layers.md`` and ``tests/test_layer_styles.py``.

- batch norm in CS231n's cache convention, staged (the computational graph node by node) and in one
  line; wrong: the batch statistics treated as constants, Bessel's n - 1 in the backward;
- layer norm in the grads convention, in the user's own names (gamma, beta), with D·g − Σg − x̂Σ(g∘x̂);
  wrong: the row statistics treated as constants;
- softmax through s ∘ (g − Σ g∘s) and through the explicit Jacobian diag(s) − s sᵀ of each row;
  wrong: the Jacobian's diagonal alone;
- an affine layer in CS231n's style (x of shape (N, d1, ..., dk) flattened; w (D, M)); wrong: the
  bias gradient averaged over the batch;
- two ``torch.autograd.Function``\ s (SiLU, layer norm) with hand-written backwards, right and wrong.

Every layer function is array-API code (NumPy arrays or torch tensors); the Functions are torch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from manual._xp import Array, device, namespace

BN_PARAM = {"mode": "train", "eps": 1e-5}


# --------------------------------------------------------------------- batch norm, CS231n's cache


def batchnorm_forward(x: Array, gamma: Array, beta: Array, bn_param: dict[str, Any]) -> tuple[Array, tuple]:
    r"""Batch norm in training, staged as its computational graph (one node a line).

    x (N, D), gamma and beta (D,); bn_param {"mode": "train", "eps": eps}. The statistics of each
    column over the batch (N >= 2), the variance biased (divided by N)::

        mu = (1/N) Σ_n x            (D,)
        xmu = x - mu                (N, D)
        sq = xmu²                   (N, D)
        var = (1/N) Σ_n sq          (D,)
        sqrtvar = sqrt(var + eps)   (D,)
        ivar = 1/sqrtvar            (D,)
        xhat = xmu ivar             (N, D)
        gammax = gamma xhat         (N, D)
        out = gammax + beta         (N, D)

    Returns (out, cache), cache the nodes the backward reads.
    """
    if bn_param.get("mode") != "train":
        raise ValueError(f"bn_param['mode'] must be 'train' (the batch's statistics), got {bn_param.get('mode')!r}")
    xp = namespace(x, gamma, beta)
    eps = bn_param.get("eps", 1e-5)
    N = x.shape[0]
    mu = xp.sum(x, axis=0) / N
    xmu = x - mu
    sq = xmu * xmu
    var = xp.sum(sq, axis=0) / N
    sqrtvar = xp.sqrt(var + eps)
    ivar = 1.0 / sqrtvar
    xhat = xmu * ivar
    gammax = gamma * xhat
    out = gammax + beta
    return out, (xhat, gamma, xmu, ivar, sqrtvar, var, eps)


def batchnorm_backward(dout: Array, cache: tuple) -> tuple[Array, Array, Array]:
    r"""δ through the staged graph, node by node from out back to x (δ = dout (N, D)).

    Each node's δ is its output's δ times its local derivative; where a node's input was broadcast
    over the batch its δ is summed over the batch, where a value feeds two nodes the δs add::

        dbeta = Σ_n δ                            (D,)
        dgamma = Σ_n δ ∘ xhat                    (D,)
        dxhat = δ gamma                          (N, D)
        divar = Σ_n dxhat ∘ xmu                  (D,)
        dxmu1 = dxhat ivar                       (N, D), the path through xhat
        dsqrtvar = -divar / sqrtvar²             (D,)
        dvar = dsqrtvar / (2 sqrt(var + eps))    (D,)
        dsq = dvar / N                           (N, D), broadcast over the batch
        dxmu2 = 2 xmu ∘ dsq                      (N, D), the path through sq
        dx1 = dxmu1 + dxmu2                      (N, D)
        dmu = -Σ_n (dxmu1 + dxmu2)               (D,)
        dx2 = dmu / N                            (N, D), broadcast over the batch
        dx = dx1 + dx2                           (N, D)

    Returns (dx, dgamma, dbeta).
    """
    xhat, gamma, xmu, ivar, sqrtvar, var, eps = cache
    xp = namespace(dout, xhat)
    N = dout.shape[0]
    dbeta = xp.sum(dout, axis=0)
    dgammax = dout
    dgamma = xp.sum(dgammax * xhat, axis=0)
    dxhat = dgammax * gamma
    divar = xp.sum(dxhat * xmu, axis=0)
    dxmu1 = dxhat * ivar
    dsqrtvar = -divar / (sqrtvar * sqrtvar)
    dvar = 0.5 * dsqrtvar / xp.sqrt(var + eps)
    dsq = xp.ones_like(dout) * dvar / N
    dxmu2 = 2 * xmu * dsq
    dx1 = dxmu1 + dxmu2
    dmu = -xp.sum(dxmu1 + dxmu2, axis=0)
    dx2 = xp.ones_like(dout) * dmu / N
    dx = dx1 + dx2
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout: Array, cache: tuple) -> tuple[Array, Array, Array]:
    r"""The same δ in one line, the graph's sums collected (δ = dout (N, D), sums over the batch)::

        dbeta = Σ_n δ                                               (D,)
        dgamma = Σ_n δ ∘ xhat                                       (D,)
        dx = (1/N) gamma ivar (N δ - Σ_n δ - xhat Σ_n(δ ∘ xhat))     (N, D)

    Returns (dx, dgamma, dbeta).
    """
    xhat, gamma, _, ivar, _, _, _ = cache
    xp = namespace(dout, xhat)
    N = dout.shape[0]
    dbeta = xp.sum(dout, axis=0)
    dgamma = xp.sum(dout * xhat, axis=0)
    dx = gamma * ivar / N * (N * dout - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


def batchnorm_backward_constants(dout: Array, cache: tuple) -> tuple[Array, Array, Array]:
    """WRONG: mu and var taken as constants, so δ goes through the affine map alone: dx = gamma ivar δ."""
    xhat, gamma, _, ivar, _, _, _ = cache
    xp = namespace(dout, xhat)
    return gamma * ivar * dout, xp.sum(dout * xhat, axis=0), xp.sum(dout, axis=0)


def batchnorm_backward_bessel(dout: Array, cache: tuple) -> tuple[Array, Array, Array]:
    """WRONG: the one-line backward with the unbiased variance Σ_n xmu²/(N - 1) (Bessel's n - 1) in
    ivar and xhat, where the forward divided by N."""
    _, gamma, xmu, _, _, _, eps = cache
    xp = namespace(dout, xmu)
    N = dout.shape[0]
    ivar = 1.0 / xp.sqrt(xp.sum(xmu * xmu, axis=0) / (N - 1) + eps)
    xhat = xmu * ivar
    dbeta = xp.sum(dout, axis=0)
    dgamma = xp.sum(dout * xhat, axis=0)
    dx = gamma * ivar / N * (N * dout - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


def batchnorm_reference(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, bn_param: dict) -> torch.Tensor:
    """torch's own batch norm in training (no running statistics), in the CS231n forward's signature."""
    return F.batch_norm(x, None, None, gamma, beta, training=True, eps=bn_param["eps"])


# ------------------------------------------------------------------- layer norm, the user's names


def layernorm(x: Array, gamma: Array, beta: Array, *, eps: float = 1e-5) -> Array:
    """out = gamma ∘ (x - μ)/sqrt(var + eps) + beta, statistics of each row (x (N, D), gamma, beta (D,))."""
    xp = namespace(x, gamma, beta)
    xmu = x - xp.mean(x, axis=1, keepdims=True)
    return gamma * xmu / xp.sqrt(xp.mean(xmu * xmu, axis=1, keepdims=True) + eps) + beta


def layernorm_backward(dout: Array, x: Array, gamma: Array, beta: Array, *, eps: float = 1e-5) -> dict[str, Array]:
    r"""δ of layer norm with the row's sums written out (x, δ = dout (N, D); sums over the D features)::

        σ = sqrt((1/D) Σ_d (x - μ)² + eps)          (N, 1)
        x̂ = (x - μ)/σ                               (N, D)
        g = δ ∘ gamma                               (N, D)
        dx = (D g - Σ_d g - x̂ Σ_d(g ∘ x̂)) / (D σ)   (N, D)
        dgamma = Σ_n δ ∘ x̂                          (D,), summed over the batch
        dbeta = Σ_n δ                               (D,), summed over the batch

    Returns {"x": dx, "gamma": dgamma, "beta": dbeta}, the user's names.
    """
    xp = namespace(dout, x, gamma, beta)
    D = x.shape[1]
    xmu = x - xp.mean(x, axis=1, keepdims=True)
    sigma = xp.sqrt(xp.mean(xmu * xmu, axis=1, keepdims=True) + eps)
    xhat = xmu / sigma
    g = dout * gamma
    dx = (D * g - xp.sum(g, axis=1, keepdims=True) - xhat * xp.sum(g * xhat, axis=1, keepdims=True)) / (D * sigma)
    return {"x": dx, "gamma": xp.sum(dout * xhat, axis=0), "beta": xp.sum(dout, axis=0)}


def layernorm_backward_constants(
    dout: Array, x: Array, gamma: Array, beta: Array, *, eps: float = 1e-5
) -> dict[str, Array]:
    """WRONG: μ and σ of each row taken as constants: dx = δ ∘ gamma / σ."""
    xp = namespace(dout, x, gamma, beta)
    right = layernorm_backward(dout, x, gamma, beta, eps=eps)
    xmu = x - xp.mean(x, axis=1, keepdims=True)
    sigma = xp.sqrt(xp.mean(xmu * xmu, axis=1, keepdims=True) + eps)
    return {**right, "x": dout * gamma / sigma}


def layer_norm_reference(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, *, eps: float = 1e-5) -> Any:
    """torch's own layer norm in the user's names."""
    return F.layer_norm(x, (x.shape[-1],), gamma, beta, eps)


# ------------------------------------------------------------------------------------------ softmax


def _last(x: Array, dim: int, xp: Any) -> Array:
    """A 2-D x with its class axis ``dim`` last (dim -1 or 1: as it is; 0: transposed)."""
    return xp.permute_dims(x, (1, 0)) if dim in (0, -2) else x


def _softmax_rows(x: Array, xp: Any) -> Array:
    e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def softmax_backward(dout: Array, x: Array, *, dim: int = -1) -> dict[str, Array]:
    r"""δ through s = softmax(x) along ``dim``, the Jacobian never formed (x, δ = dout 2-D)::

        s = exp(x - max x) / Σ_c exp(x_c - max x)
        dx = s ∘ (δ - Σ_c δ_c s_c)                  x's shape, the sum over the class axis

    Returns {"x": dx}.
    """
    xp = namespace(dout, x)
    e = xp.exp(x - xp.max(x, axis=dim, keepdims=True))
    s = e / xp.sum(e, axis=dim, keepdims=True)
    return {"x": s * (dout - xp.sum(dout * s, axis=dim, keepdims=True))}


def softmax_backward_jacobian(dout: Array, x: Array, *, dim: int = -1) -> dict[str, Array]:
    r"""δ through softmax by the explicit Jacobian of each row (the class axis moved last, (N, C))::

        J_n = diag(s_n) - s_n s_nᵀ                  (N, C, C), symmetric
        dx_n = J_nᵀ δ_n = J_n δ_n                   (N, C)

    Returns {"x": dx} in x's layout.
    """
    xp = namespace(dout, x)
    s, g = _softmax_rows(_last(x, dim, xp), xp), _last(dout, dim, xp)
    C = s.shape[-1]
    eye = xp.eye(C, dtype=s.dtype, device=device(s))
    J = xp.expand_dims(s, 2) * eye - xp.expand_dims(s, 2) * xp.expand_dims(s, 1)
    dx = xp.matmul(J, xp.expand_dims(g, 2))[:, :, 0]
    return {"x": _last(dx, dim, xp)}


def softmax_backward_diagonal(dout: Array, x: Array, *, dim: int = -1) -> dict[str, Array]:
    """WRONG: the Jacobian's diagonal alone, s ∘ (1 - s), as if each s_c depended on x_c only."""
    xp = namespace(dout, x)
    e = xp.exp(x - xp.max(x, axis=dim, keepdims=True))
    s = e / xp.sum(e, axis=dim, keepdims=True)
    return {"x": dout * s * (1 - s)}


# ----------------------------------------------------------------------------- affine, CS231n's


def affine_forward(x: Array, w: Array, b: Array) -> tuple[Array, tuple]:
    """out = x w + b with each example flattened: x (N, d1, ..., dk), w (D, M), D = d1 ⋯ dk, b (M,).

    Returns (out (N, M), cache)."""
    xp = namespace(x, w, b)
    out = xp.matmul(xp.reshape(x, (x.shape[0], -1)), w) + b
    return out, (x, w, b)


def affine_backward(dout: Array, cache: tuple) -> tuple[Array, Array, Array]:
    r"""δ through the affine layer (δ = dout (N, M), u = x flattened to (N, D))::

        dx = δ wᵀ, reshaped to x's shape (N, d1, ..., dk)
        dw = uᵀ δ                 (D, M), summed over the batch
        db = Σ_n δ                (M,), summed over the batch

    Returns (dx, dw, db).
    """
    x, w, _ = cache
    xp = namespace(dout, x, w)
    u = xp.reshape(x, (x.shape[0], -1))
    dx = xp.reshape(xp.matmul(dout, w.T), x.shape)
    return dx, xp.matmul(u.T, dout), xp.sum(dout, axis=0)


def affine_backward_bias_averaged(dout: Array, cache: tuple) -> tuple[Array, Array, Array]:
    """WRONG: db = (1/N) Σ_n δ, where the forward adds b to every example (a sum, not a mean)."""
    dx, dw, _ = affine_backward(dout, cache)
    xp = namespace(dout)
    return dx, dw, xp.mean(dout, axis=0)


def affine_reference(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """torch's own linear map on the flattened examples (``F.linear`` takes w's transpose, (M, D))."""
    return F.linear(x.flatten(1), w.T, b)


# ----------------------------------------------------------------------- torch.autograd.Function


class SiLU(torch.autograd.Function):
    r"""SiLU, out = x σ(x), with its backward by hand: d out/dx = σ(x)(1 + x(1 - σ(x)))."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx: Any, dout: torch.Tensor) -> torch.Tensor:
        x, s = ctx.saved_tensors
        return dout * s * (1 + x * (1 - s))


class SiLUWrong(SiLU):
    """WRONG: σ(x) taken as a constant factor (the product rule's second term lost): δ σ(x)."""

    @staticmethod
    def backward(ctx: Any, dout: torch.Tensor) -> torch.Tensor:
        _, s = ctx.saved_tensors
        return dout * s


def silu_reference(x: torch.Tensor) -> torch.Tensor:
    """torch's own SiLU, whose autograd is the reference."""
    return F.silu(x)


class LayerNormFunction(torch.autograd.Function):
    r"""Layer norm of each row as a Function: ``apply(x, weight, bias, eps)``, x (N, D), weight and
    bias (D,); backward dx = (g - mean_D g - x̂ mean_D(g ∘ x̂))/σ with g = δ ∘ weight."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
        xmu = x - x.mean(dim=1, keepdim=True)
        sigma = torch.sqrt((xmu * xmu).mean(dim=1, keepdim=True) + eps)
        xhat = xmu / sigma
        ctx.save_for_backward(xhat, sigma, weight)
        return xhat * weight + bias

    @staticmethod
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:
        xhat, sigma, weight = ctx.saved_tensors
        g = dout * weight
        dx = (g - g.mean(dim=1, keepdim=True) - xhat * (g * xhat).mean(dim=1, keepdim=True)) / sigma
        return dx, (dout * xhat).sum(dim=0), dout.sum(dim=0), None


def layer_norm_function_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> Any:
    """torch's own layer norm in the Function's signature, ``(x, weight, bias, eps)``."""
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


class LayerNormFunctionWrong(LayerNormFunction):
    """WRONG: the row statistics taken as constants in dx: dx = δ ∘ weight / σ."""

    @staticmethod
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:
        xhat, sigma, weight = ctx.saved_tensors
        return dout * weight / sigma, (dout * xhat).sum(dim=0), dout.sum(dim=0), None


# ------------------------------------------------------------------ the catalogue, for docs/layers.md


def _cell(text: str) -> str:
    """Plain text for a markdown table cell: no pipe or asterisk read as markup."""
    return text.replace("|", "\\|").replace("*", "\\*")


def catalogue_table() -> str:
    """The built-ins' catalogue of mistakes as the markdown table of ``docs/layers.md``: layer,
    mistake, formula, the regime it needs (``any``: almost every drawn case shows it), source."""
    from torch_ref.layers.table import infos

    lines = ["| layer | mistake | formula | regime | source |", "| --- | --- | --- | --- | --- |"]
    for name, info in infos().items():
        for m in info.mistakes:
            regime = f"`{m.regime}`" if m.regime else "any"
            lines.append(f"| {name} | {_cell(m.name)} | `{m.formula}` | {regime} | {_cell(m.source) or '–'} |")
    return "\n".join(lines) + "\n"
