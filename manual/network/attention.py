r"""Multi-head self-attention as one network layer: projections around the scaled dot-product
attention of :data:`manual.LAYERS` (``"scaled_dot_product_attention"``).

Forward, for x of shape (N, T, D), H heads of E = D / H features::

    [Q | K | V] = x W_qkv + b_qkv          (N, T, 3D); W_qkv (D, 3D), the slides' (in, out) layout
    Q_h, K_h, V_h                           (N, H, T, E): each third split into H heads
    A_h = attention(Q_h, K_h, V_h)          (N, H, T, E); causal: query i sees keys j <= i
    out = concat_h(A_h) W_o + b_o           (N, T, D)

Backward, δ = dout (N, T, D), each step the backward of one forward line, in reverse::

    δ_A = δ W_oᵀ                            (N, T, D), split into heads (N, H, T, E)
    ∇W_o = concat(A)ᵀ δ, ∇b_o = Σ δ          summed over the N·T tokens
    δ_Q, δ_K, δ_V = attention backward of δ_A (FlashAttention-2's, from the saved logsumexp)
    δ_qkv = [δ_Q | δ_K | δ_V]               (N, T, 3D), heads concatenated
    δ_x = δ_qkv W_qkvᵀ; ∇W_qkv = xᵀ δ_qkv; ∇b_qkv = Σ δ_qkv   summed over the N·T tokens
"""

from __future__ import annotations

from typing import Any

from .._xp import Array, namespace
from ..layers.attention import scaled_dot_product_attention, scaled_dot_product_attention_backward
from ..layers.layer import Layer

__all__ = ["SELF_ATTENTION"]


def _heads(a: Array, H: int, xp: Any) -> Array:
    """(N, T, D) -> (N, H, T, D / H)."""
    N, T, D = a.shape
    return xp.permute_dims(xp.reshape(a, (N, T, H, D // H)), (0, 2, 1, 3))


def _merge(a: Array, xp: Any) -> Array:
    """(N, H, T, E) -> (N, T, H E)."""
    N, H, T, E = a.shape
    return xp.reshape(xp.permute_dims(a, (0, 2, 1, 3)), (N, T, H * E))


def _check(x: Array, qkv_weight: Array, out_weight: Array, heads: Any) -> None:
    if x.ndim != 3:
        raise ValueError(f"self_attention: x must be (N, T, D), got shape {tuple(x.shape)}")
    D = x.shape[-1]
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1 or D % heads:
        raise ValueError(f"self_attention: heads must be an int >= 1 dividing D = {D}, got {heads!r}")
    if tuple(qkv_weight.shape) != (D, 3 * D) or tuple(out_weight.shape) != (D, D):
        raise ValueError(
            f"self_attention: qkv_weight must be ({D}, {3 * D}) and out_weight ({D}, {D}), got "
            f"{tuple(qkv_weight.shape)} and {tuple(out_weight.shape)}"
        )


def _attend(x: Array, qkv_weight: Array, qkv_bias: Array, heads: int, causal: bool, xp: Any) -> tuple:
    N, T, D = x.shape
    qkv = xp.reshape(xp.matmul(xp.reshape(x, (N * T, D)), qkv_weight) + qkv_bias, (N, T, 3 * D))
    q, k, v = (_heads(qkv[..., i * D : (i + 1) * D], heads, xp) for i in range(3))
    keep = xp.ones((N, 1, 1, T), dtype=xp.bool, device=getattr(x, "device", None))
    return q, k, v, keep


def self_attention(
    x: Array,
    qkv_weight: Array,
    qkv_bias: Array,
    out_weight: Array,
    out_bias: Array,
    *,
    heads: int = 1,
    causal: bool = True,
) -> Array:
    """out = concat_h(attention(Q_h, K_h, V_h)) W_o + b_o, x (N, T, D) -> (N, T, D)."""
    _check(x, qkv_weight, out_weight, heads)
    xp = namespace(x, qkv_weight, qkv_bias, out_weight, out_bias)
    q, k, v, keep = _attend(x, qkv_weight, qkv_bias, heads, causal, xp)
    A = _merge(scaled_dot_product_attention(q, k, v, keep, is_causal=causal), xp)
    return xp.matmul(A, out_weight) + out_bias


def self_attention_backward(
    dout: Array,
    x: Array,
    qkv_weight: Array,
    qkv_bias: Array,
    out_weight: Array,
    out_bias: Array,
    *,
    heads: int = 1,
    causal: bool = True,
) -> dict[str, Array | None]:
    """The module docstring's backward: δ_x and the four parameters' gradients, sums over N·T tokens."""
    _check(x, qkv_weight, out_weight, heads)
    xp = namespace(dout, x, qkv_weight, qkv_bias, out_weight, out_bias)
    N, T, D = x.shape
    q, k, v, keep = _attend(x, qkv_weight, qkv_bias, heads, causal, xp)
    A = _merge(scaled_dot_product_attention(q, k, v, keep, is_causal=causal), xp)
    rows = xp.reshape(dout, (N * T, D))
    A_rows = xp.reshape(A, (N * T, D))
    d_out_weight = xp.matmul(A_rows.T, rows)
    d_out_bias = xp.sum(rows, axis=0)
    dA = _heads(xp.reshape(xp.matmul(rows, out_weight.T), (N, T, D)), heads, xp)
    g = scaled_dot_product_attention_backward(dA, q, k, v, keep, is_causal=causal)
    dqkv = xp.reshape(xp.concat([_merge(g[n], xp) for n in ("x", "key", "value")], axis=-1), (N * T, 3 * D))
    x_rows = xp.reshape(x, (N * T, D))
    return {
        "x": xp.reshape(xp.matmul(dqkv, qkv_weight.T), (N, T, D)),
        "qkv_weight": xp.matmul(x_rows.T, dqkv),
        "qkv_bias": xp.sum(dqkv, axis=0),
        "out_weight": d_out_weight,
        "out_bias": d_out_bias,
    }


SELF_ATTENTION = Layer(
    "self_attention",
    self_attention,
    self_attention_backward,
    params=("qkv_weight", "qkv_bias", "out_weight", "out_bias"),
    shapes={"x": "N T D", "qkv_weight": "D 3D", "qkv_bias": "3D", "out_weight": "D D", "out_bias": "D", "out": "N T D"},
    constants={"heads": 1, "causal": True},
    description="multi-head self-attention: [Q|K|V] = x W_qkv + b, heads, attention, concat W_o + b_o",
)
