r"""Scaled dot-product attention, with FlashAttention-2's backward from the saved logsumexp.

One entry, :data:`SCALED_DOT_PRODUCT_ATTENTION`, torch's ``F.scaled_dot_product_attention`` without
dropout: the query is the layer input ``x``, and ``key`` and ``value`` are its other two
differentiated arrays. The boolean ``attn_mask`` (True = the key takes part) is always an array,
all True where nothing is masked; ``is_causal`` adds torch's top-left causal mask (query i sees
keys j <= i, so it needs T == S). Every query row must keep at least one key: a row with none has
no softmax (torch returns zeros there, this forward refuses it).

The forward keeps, per query row, the logsumexp :math:`L` of its scores, and the backward works from
it alone: :math:`P = \exp(S - L)` is recomputed rather than stored, and the softmax's Jacobian is
folded into one row statistic :math:`D = \mathrm{rowsum}(\delta_O \circ O)`, as Algorithm 2 of
FlashAttention-2 does. The backward here is called with the inputs only, so it first redoes the
forward's own pass (:func:`saved`) to get the :math:`L` and :math:`O` that pass keeps.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .._xp import Array, device, holds, namespace
from .layer import Layer

__all__ = ["LAYERS_HERE", "SCALED_DOT_PRODUCT_ATTENTION", "keep_mask", "saved", "scale_of", "transpose"]


def transpose(a: Array, xp: Any) -> Array:
    """The last two axes of a 4-D array swapped: :math:`A^T` per batch item and head."""
    return xp.permute_dims(a, (0, 1, 3, 2))


def scale_of(x: Array, scale: float | None) -> float:
    """The factor on the scores: ``scale``, or :math:`1/\\sqrt{E}` for ``None`` (E = ``x.shape[-1]``)."""
    return 1 / math.sqrt(x.shape[-1]) if scale is None else float(scale)


def keep_mask(attn_mask: Array, xp: Any, *, is_causal: bool, T: int, S: int) -> Array:
    """The keys each query attends to: ``attn_mask`` (N, 1, 1, S) or (N, H, T, S), and with
    ``is_causal`` also the lower triangle ``j <= i`` (T, S); bool, broadcastable to (N, H, T, S)."""
    if not is_causal:
        return attn_mask
    at = device(attn_mask)
    i = xp.reshape(xp.arange(T, device=at), (T, 1))
    j = xp.reshape(xp.arange(S, device=at), (1, S))
    return xp.logical_and(attn_mask, j <= i)


def saved(x: Array, key: Array, value: Array, keep: Array, scale: float, xp: Any) -> tuple[Array, Array, Array]:
    r"""The forward's pass: the masked scores S (N, H, T, S), their logsumexp L (N, H, T, 1) over
    the keys and the output O (N, H, T, Ev).

    ::

        S = scale · Q Kᵀ;  S_ij = -inf where key j is masked for query i
        m_i = max_j S_ij;  L_i = m_i + log Σ_j exp(S_ij - m_i)
        O = exp(S - L) V
    """
    S = scale * xp.matmul(x, transpose(key, xp))
    S = xp.where(keep, S, xp.full_like(S, -math.inf))
    m = xp.max(S, axis=-1, keepdims=True)  # finite: every row keeps a key
    L = m + xp.log(xp.sum(xp.exp(S - m), axis=-1, keepdims=True))
    O = xp.matmul(xp.exp(S - L), value)
    return S, L, O


def _check(x: Array, key: Array, value: Array, attn_mask: Array, is_causal: bool, scale: float | None) -> Any:
    """The namespace of the arrays, once their shapes, dtypes and options fit; else the error
    naming the argument, its value and what is accepted."""
    xp = namespace(x, key, value, attn_mask)
    for name, a in (("x", x), ("key", key), ("value", value), ("attn_mask", attn_mask)):
        if a.ndim != 4:
            raise ValueError(f"scaled_dot_product_attention: {name} must be 4-D, got shape {tuple(a.shape)}")
    N, H, T, E = x.shape
    if key.shape[:2] != (N, H) or key.shape[3] != E:
        raise ValueError(
            f"scaled_dot_product_attention: key must have shape (N, H, S, E) = ({N}, {H}, S, {E}) for x of shape {tuple(x.shape)}, got {tuple(key.shape)}"
        )
    S = key.shape[2]
    if value.shape[:3] != (N, H, S):
        raise ValueError(
            f"scaled_dot_product_attention: value must have shape (N, H, S, Ev) = ({N}, {H}, {S}, Ev), got {tuple(value.shape)}"
        )
    if not (x.dtype == key.dtype == value.dtype) or not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(
            f"scaled_dot_product_attention: x, key and value must share one real floating dtype, got {x.dtype}, {key.dtype}, {value.dtype}"
        )
    if attn_mask.dtype != xp.bool:
        raise TypeError(
            f"scaled_dot_product_attention: attn_mask must be a bool array (True = takes part), got dtype {attn_mask.dtype}"
        )
    if tuple(attn_mask.shape) not in ((N, 1, 1, S), (N, H, T, S)):
        raise ValueError(
            f"scaled_dot_product_attention: attn_mask must have shape ({N}, 1, 1, {S}) or ({N}, {H}, {T}, {S}), got {tuple(attn_mask.shape)}"
        )
    if not isinstance(is_causal, bool):
        raise TypeError(f"scaled_dot_product_attention: is_causal must be a bool, got {is_causal!r}")
    if is_causal and T != S:
        raise ValueError(
            f"scaled_dot_product_attention: is_causal=True needs as many queries as keys (T == S), got T={T}, S={S}"
        )
    if scale is not None and (
        isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale)
    ):
        raise TypeError(f"scaled_dot_product_attention: scale must be None or a finite real number, got {scale!r}")
    keeps = xp.any(keep_mask(attn_mask, xp, is_causal=is_causal, T=T, S=S), axis=-1)
    if holds(~xp.all(keeps)):
        raise ValueError(
            "scaled_dot_product_attention: every query row must keep at least one key; attn_mask"
            + (" with the causal mask" if is_causal else "")
            + " masks all keys of some row"
        )
    return xp


def scaled_dot_product_attention(
    x: Array, key: Array, value: Array, attn_mask: Array, *, is_causal: bool = False, scale: float | None = None
) -> Array:
    r"""Attention of the queries ``x`` to ``key`` and ``value``, per batch item and head.

    Per batch item and head (Q = ``x``)::

        S = scale · Q Kᵀ, -inf where masked     (N, H, T, S)
        L = logsumexp of each row of S          (N, H, T, 1)
        O = exp(S - L) V                        (N, H, T, Ev)

    Args:
        x: the queries Q, (N, H, T, E).
        key: the keys K, (N, H, S, E).
        value: the values V, (N, H, S, Ev).
        attn_mask: bool, (N, 1, 1, S) or (N, H, T, S); True where the key takes part.

    Keyword-only:
        is_causal: also mask the keys after each query (j > i, top-left as torch); needs T == S.
        scale: the factor on the scores; None for :math:`1/\sqrt{E}`.

    Returns:
        O, (N, H, T, Ev): no reduction over N or H.

    >>> import numpy as np
    >>> q = k = v = np.ones((1, 1, 2, 3))
    >>> scaled_dot_product_attention(q, k, v, np.ones((1, 1, 1, 2), dtype=bool), is_causal=True).shape
    (1, 1, 2, 3)
    """
    xp = _check(x, key, value, attn_mask, is_causal, scale)
    keep = keep_mask(attn_mask, xp, is_causal=is_causal, T=x.shape[2], S=key.shape[2])
    return saved(x, key, value, keep, scale_of(x, scale), xp)[2]


def scaled_dot_product_attention_backward(
    dout: Array,
    x: Array,
    key: Array,
    value: Array,
    attn_mask: Array,
    *,
    is_causal: bool = False,
    scale: float | None = None,
) -> dict[str, Array | None]:
    r"""δ out for the queries, keys and values from δ in, :math:`\delta_O` = ``dout``, from the saved
    logsumexp L (FlashAttention-2, Algorithm 2).

    Forward, per batch item and head (Q = ``x``), softmax over the S keys of each query row i::

        S = scale · Q Kᵀ                   (N, H, T, S); S_ij = -inf where key j is masked for query i
        L = log Σ_j exp(S_ij)              (N, H, T, 1); the row's max subtracted first; saved
        P = exp(S - L)                     (N, H, T, S); 0 where masked
        O = P V                            (N, H, T, Ev)

    Backward, δ_O = dout (N, H, T, Ev)::

        δ_V = Pᵀ δ_O                       (N, H, S, Ev); sum over the T queries
        δ_P = δ_O Vᵀ                       (N, H, T, S); sum over Ev
        ∂P_ij/∂S_ik = P_ij (1[j=k] - P_ik)                  (softmax of row i)
        δ_S_ik = Σ_j δ_P_ij ∂P_ij/∂S_ik = P_ik (δ_P_ik - Σ_j P_ij δ_P_ij)
        Σ_j P_ij δ_P_ij = Σ_j P_ij Σ_c δ_O_ic V_jc = Σ_c δ_O_ic O_ic
        D = rowsum(δ_O ∘ O)                (N, H, T, 1); sum over Ev
        δ_S = P ∘ (δ_P - D)                (N, H, T, S); 0 where masked, as P is
        δ_Q = scale · δ_S K                (N, H, T, E); sum over the S keys; returned as "x"
        δ_K = scale · δ_Sᵀ Q               (N, H, S, E); sum over the T queries

    No sum over N or H: each batch item and head is its own attention. ``attn_mask`` is not
    differentiated (None).
    """
    xp = _check(x, key, value, attn_mask, is_causal, scale)
    c = scale_of(x, scale)
    keep = keep_mask(attn_mask, xp, is_causal=is_causal, T=x.shape[2], S=key.shape[2])
    S, L, O = saved(x, key, value, keep, c, xp)
    P = xp.exp(S - L)
    D = xp.sum(dout * O, axis=-1, keepdims=True)
    dV = xp.matmul(transpose(P, xp), dout)
    dP = xp.matmul(dout, transpose(value, xp))
    dS = P * (dP - D)
    dQ = c * xp.matmul(dS, key)
    dK = c * xp.matmul(transpose(dS, xp), x)
    return {"x": dQ, "key": dK, "value": dV, "attn_mask": None}


SCALED_DOT_PRODUCT_ATTENTION = Layer(
    "scaled_dot_product_attention",
    scaled_dot_product_attention,
    scaled_dot_product_attention_backward,
    params=("key", "value", "attn_mask"),
    shapes={"x": "N H T E", "key": "N H S E", "value": "N H S Ev", "attn_mask": "N 1 1 S", "out": "N H T Ev"},
    constants={"is_causal": False, "scale": None},
    nondiff=("attn_mask",),
    description="O = softmax(scale·Q Kᵀ, masked) V; backward from the saved logsumexp (FlashAttention-2)",
)

LAYERS_HERE = (SCALED_DOT_PRODUCT_ATTENTION,)
