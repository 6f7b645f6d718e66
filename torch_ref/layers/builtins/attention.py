"""The oracle's side of scaled dot-product attention: torch's functional as the twin, draws that
reach causal and padding masks, single queries or keys and sharp softmaxes, and the wrong backwards
of FlashAttention-2's recurrence (Algorithm 2) as code.

Draws: N 1..2, H 1..3, T and S 1..6 (S = T under a causal mask), E and Ev 1..6, values uniform in
[-2, 2] from a seeded Generator. A padding mask is a key-length mask, each batch item keeping its
first 1..S keys, so every query row keeps key 0 and so at least one key. The scale is None or a
float in [0.125, 0.75] or [1.25, 2]; E = 1 always takes a float, since its default 1/sqrt(1) = 1
would hide a scale left out of the backward. A "sharp" draw multiplies one query row so that its
largest kept score is 40 (float32 still rounds its scores to about 1e-6 absolute), by a factor of at
most 20 (:func:`_sharpened`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from manual._xp import Array, namespace
from manual.layers.attention import keep_mask, saved, scale_of, transpose

from ..case import LayerCase
from ..info import LayerInfo, Mistake

__all__ = ["INFOS_HERE"]

FLASH2 = "Dao, FlashAttention-2: Faster Attention with Better Parallelism and Work Partitioning (2023), arXiv:2307.08691, Algorithm 2"

REGIMES = (
    "causal", "padding mask", "causal+padding", "heads>1", "T=1", "S=1", "T=S", "sharp softmax", "several keys",
    "long sequence",
)  # fmt: skip
# "long sequence": more than 16 keys or queries, past one block of a tiled (FlashAttention) backward
# with blocks of 8 or 16; drawn one case in eight, small elsewhere (N = H = 1, E, Ev <= 4)
_LONG = (17, 24)
_MASKS = ("none", "causal", "padding", "causal+padding")
_SHARP_LOGIT = 40.0  # the largest kept |score| of a sharp draw
_SHARP_GAIN = 20.0  # at most this factor on the row (|x| <= 40), where its scores are all small


def twin(
    x: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor,
    *,
    is_causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` with the entry's signature.

    With ``is_causal`` the twin passes the combined boolean mask ``attn_mask & tril`` (T, S) and
    ``is_causal=False``: torch's documented reference asserts ``attn_mask is None`` under
    ``is_causal``, and its fused kernels may refuse the pair. Torch 2.13's CPU path accepts it and
    gives exactly that combined mask's result (checked to 0.0 in float64 and float32).
    """
    if is_causal:
        T, S = x.shape[-2], key.shape[-2]
        causal = torch.ones(T, S, dtype=torch.bool, device=x.device).tril()
        return F.scaled_dot_product_attention(x, key, value, attn_mask=attn_mask & causal, scale=scale)
    return F.scaled_dot_product_attention(x, key, value, attn_mask=attn_mask, scale=scale)


# ---------------------------------------------------------------------------------------- draws


def regimes_of(case: LayerCase) -> tuple[str, ...]:
    """The regimes of :data:`REGIMES` that ``case``'s values meet, verified in float64.

    A mask counts where it matters: "causal" where the causal mask drops a key (one the padding
    keeps) whose weight exp(S_ij - L_i) against its row's kept keys is at least 1e-3, "padding mask"
    likewise for a key only the padding drops. "several keys": some row spreads its softmax (its
    second largest P >= 0.1), so δ_S is not negligible. "T=S": T = S >= 2 with several keys (a
    square δ_S that is not symmetric). "sharp softmax": some row with two kept keys or more has a P
    >= 1 - 1e-6.
    """
    q, k = (case.arrays[a].astype(np.float64) for a in ("x", "key"))
    mask, is_causal = case.params["attn_mask"], case.constants["is_causal"]
    N, H, T, _ = q.shape
    S = k.shape[2]
    keep = np.broadcast_to(mask, (N, H, T, S))
    causal = np.tril(np.ones((T, S), dtype=bool)) | (not is_causal)
    both = keep & causal
    scores = scale_of(q, case.constants["scale"]) * q @ np.swapaxes(k, -1, -2)
    kept = np.where(both, scores, -np.inf)
    m = kept.max(axis=-1, keepdims=True)
    L = m + np.log(np.sum(np.exp(kept - m), axis=-1, keepdims=True))
    weight = np.exp(np.minimum(scores - L, 50.0))  # exp(S - L), capped: only ">= 1e-3" is asked of it
    P = np.sort(np.where(both, weight, 0.0), axis=-1)
    multi = both.sum(axis=-1) >= 2
    found = {
        "causal": bool(np.any(keep & ~causal & (weight >= 1e-3))),
        "padding mask": bool(np.any(~keep & causal & (weight >= 1e-3))),
        "heads>1": H >= 2,
        "T=1": T == 1,
        "S=1": S == 1,
        "sharp softmax": S >= 2 and bool(np.any(multi & (P[..., -1] >= 1 - 1e-6))),
        "several keys": S >= 2 and bool(np.any(multi & (P[..., -2] >= 0.1))),
    }
    found["T=S"] = T == S and found["several keys"]
    found["long sequence"] = max(T, S) > 16
    found["causal+padding"] = found["causal"] and found["padding mask"]
    return tuple(r for r in REGIMES if found[r])


def _sharpened(q: np.ndarray, k: np.ndarray, mask: np.ndarray, is_causal: bool, scale: float) -> np.ndarray:
    """``q`` with one query row multiplied so that its largest kept |score| is 40 (by at most 20): the
    row of two kept keys or more whose top two scores lie furthest apart for their size. One row
    only, so that the other rows keep their spread and their gradients their usual size."""
    N, H, T, _ = q.shape
    S = k.shape[2]
    kept = np.broadcast_to(mask, (N, H, T, S)) & (np.tril(np.ones((T, S), dtype=bool)) | (not is_causal))
    scores = scale * q @ np.swapaxes(k, -1, -2)
    top = np.sort(np.where(kept, scores, -np.inf), axis=-1)
    size = np.max(np.where(kept, np.abs(scores), 0.0), axis=-1)
    if S < 2 or not np.any((kept.sum(axis=-1) >= 2) & (size > 0)):
        return q
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.where((kept.sum(axis=-1) >= 2) & (size > 0), (top[..., -1] - top[..., -2]) / size, -1.0)
    row = np.unravel_index(np.argmax(spread), spread.shape)
    q = q.copy()
    q[row] *= min(_SHARP_LOGIT / size[row], _SHARP_GAIN)
    return q


@st.composite
def _cases(draw: Any, dtype: np.dtype) -> LayerCase:
    masks = draw(st.sampled_from(_MASKS))
    is_causal = masks.startswith("causal")
    if draw(st.integers(0, 7)) == 7:  # a long sequence: several blocks of a tiled backward
        N, H, T = 1, 1, draw(st.integers(*_LONG))
        S = T if is_causal else draw(st.integers(*_LONG))
        E, Ev = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    else:
        N, H, T = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 6))
        S = T if is_causal else draw(st.integers(1, 6))
        E, Ev = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    floats = st.one_of(st.floats(0.125, 0.75), st.floats(1.25, 2.0))
    scale = draw(floats if E == 1 else st.one_of(st.none(), floats))
    lengths = [S] * N
    if masks.endswith("padding"):  # the first item shorter where it can be
        lengths = [draw(st.integers(1, max(S - 1, 1)))] + [draw(st.integers(1, S)) for _ in range(N - 1)]
    per_query = draw(st.booleans())  # the mask as (N, H, T, S) rather than (N, 1, 1, S)
    sharp = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    mask = np.arange(S)[None, None, None, :] < np.asarray(lengths)[:, None, None, None]
    if per_query:
        mask = np.broadcast_to(mask, (N, H, T, S)).copy()
    q, k, v = (rng.uniform(-2, 2, shape) for shape in ((N, H, T, E), (N, H, S, E), (N, H, S, Ev)))
    if sharp:
        q = _sharpened(q, k, mask, is_causal, scale_of(q, scale))
    case = LayerCase(
        q.astype(dtype),
        {"key": k.astype(dtype), "value": v.astype(dtype), "attn_mask": mask},
        {"is_causal": is_causal, "scale": scale},
        dims={"N": N, "H": H, "T": T, "S": S, "E": E, "Ev": Ev},
    )
    return LayerCase(case.x, case.params, case.constants, regimes_of(case), case.dims)


def draw(dtype: Any) -> st.SearchStrategy[LayerCase]:
    """Cases of :data:`REGIMES` in ``dtype`` (float32 or float64)."""
    return _cases(np.dtype(dtype))


# ------------------------------------------------------------------------------------- mistakes


def _forward(x: Array, key: Array, value: Array, attn_mask: Array, is_causal: bool, scale: float | None) -> tuple:
    """``xp``, the scale and the forward's S, L, O: what every wrong backward starts from."""
    xp = namespace(x, key, value, attn_mask)
    c = scale_of(x, scale)
    keep = keep_mask(attn_mask, xp, is_causal=is_causal, T=x.shape[2], S=key.shape[2])
    return (xp, c, *saved(x, key, value, keep, c, xp))


def _from_dS(xp: Any, c: float, P: Array, dS: Array, dout: Array, x: Array, key: Array) -> dict[str, Array | None]:
    """The right last steps: δ_V = Pᵀ δ_O, δ_Q = scale·δ_S K, δ_K = scale·δ_Sᵀ Q."""
    dV = xp.matmul(transpose(P, xp), dout)
    return {"x": c * xp.matmul(dS, key), "key": c * xp.matmul(transpose(dS, xp), x), "value": dV, "attn_mask": None}


def _scale_dropped(dout, x, key, value, attn_mask, *, is_causal=False, scale=None):
    xp, _c, S, L, O = _forward(x, key, value, attn_mask, is_causal, scale)
    P = xp.exp(S - L)
    dS = P * (xp.matmul(dout, transpose(value, xp)) - xp.sum(dout * O, axis=-1, keepdims=True))
    return _from_dS(xp, 1.0, P, dS, dout, x, key)  # scale 1: left out of δ_Q and δ_K


def _unmasked_P(dout, x, key, value, attn_mask, is_causal, scale, keep):
    """The right backward but for P, recomputed from the scores masked by ``keep`` only."""
    xp, c, _, L, O = _forward(x, key, value, attn_mask, is_causal, scale)
    S = c * xp.matmul(x, transpose(key, xp))
    P = xp.exp(xp.where(keep, S, xp.full_like(S, -math.inf)) - L)
    dS = P * (xp.matmul(dout, transpose(value, xp)) - xp.sum(dout * O, axis=-1, keepdims=True))
    return _from_dS(xp, c, P, dS, dout, x, key)


def _causal_dropped(dout, x, key, value, attn_mask, *, is_causal=False, scale=None):
    return _unmasked_P(dout, x, key, value, attn_mask, is_causal, scale, attn_mask)


def _padding_dropped(dout, x, key, value, attn_mask, *, is_causal=False, scale=None):
    xp = namespace(x, attn_mask)
    everything = xp.ones_like(attn_mask)
    keep = keep_mask(everything, xp, is_causal=is_causal, T=x.shape[2], S=key.shape[2])
    return _unmasked_P(dout, x, key, value, attn_mask, is_causal, scale, keep)


def _diagonal_jacobian(dout, x, key, value, attn_mask, *, is_causal=False, scale=None):
    xp, c, S, L, _O = _forward(x, key, value, attn_mask, is_causal, scale)
    P = xp.exp(S - L)
    dS = P * (1 - P) * xp.matmul(dout, transpose(value, xp))
    return _from_dS(xp, c, P, dS, dout, x, key)


def _D_omitted(dout, x, key, value, attn_mask, *, is_causal=False, scale=None):
    xp, c, S, L, _O = _forward(x, key, value, attn_mask, is_causal, scale)
    P = xp.exp(S - L)
    dS = P * xp.matmul(dout, transpose(value, xp))
    return _from_dS(xp, c, P, dS, dout, x, key)


def _D_from_dP(dout, x, key, value, attn_mask, *, is_causal=False, scale=None):
    xp, c, S, L, _O = _forward(x, key, value, attn_mask, is_causal, scale)
    P = xp.exp(S - L)
    dP = xp.matmul(dout, transpose(value, xp))
    dS = P * (dP - xp.sum(dP, axis=-1, keepdims=True))
    return _from_dS(xp, c, P, dS, dout, x, key)


def _P_from_max(dout, x, key, value, attn_mask, *, is_causal=False, scale=None):
    xp, c, S, _L, O = _forward(x, key, value, attn_mask, is_causal, scale)
    P = xp.exp(S - xp.max(S, axis=-1, keepdims=True))  # the row max saved, not the logsumexp
    dS = P * (xp.matmul(dout, transpose(value, xp)) - xp.sum(dout * O, axis=-1, keepdims=True))
    return _from_dS(xp, c, P, dS, dout, x, key)


def _dK_untransposed(dout, x, key, value, attn_mask, *, is_causal=False, scale=None):
    if x.shape[2] != key.shape[2]:
        raise ValueError(f"this wrong backward (δ_K = scale·δ_S Q) needs T == S, got T={x.shape[2]}, S={key.shape[2]}")
    xp, c, S, L, O = _forward(x, key, value, attn_mask, is_causal, scale)
    P = xp.exp(S - L)
    dS = P * (xp.matmul(dout, transpose(value, xp)) - xp.sum(dout * O, axis=-1, keepdims=True))
    return {**_from_dS(xp, c, P, dS, dout, x, key), "key": c * xp.matmul(dS, x)}


MISTAKES = (
    Mistake("scale left out of the backward", _scale_dropped, "", "δ_Q = δ_S K, δ_K = δ_Sᵀ Q", "several keys"),
    Mistake(
        "causal mask left out of the backward",
        _causal_dropped,
        "Triton issue 4541, https://github.com/triton-lang/triton/issues/4541 (the fused-attention tutorial's backward "
        "ignores the causal flag)",
        "P = exp(scale·Q Kᵀ masked by attn_mask only - L)",
        "causal",
    ),
    Mistake(
        "padding mask left out of the backward",
        _padding_dropped,
        "",
        "P = exp(scale·Q Kᵀ masked by the causal mask only - L)",
        "padding mask",
    ),
    Mistake(
        "softmax Jacobian taken as its diagonal", _diagonal_jacobian, "", "δ_S = P ∘ (1 - P) ∘ δ_P", "several keys"
    ),
    Mistake("D left out", _D_omitted, "", "δ_S = P ∘ δ_P", None),
    Mistake("D summed from δ_P instead of δ_O ∘ O", _D_from_dP, "", "δ_S = P ∘ (δ_P - rowsum(δ_P))", "several keys"),
    Mistake(
        "P recomputed from the row max, not the logsumexp", _P_from_max, "", "P = exp(S - rowmax(S))", "several keys"
    ),
    Mistake(
        "δ_K without the transpose of δ_S", _dK_untransposed, "", "δ_K = scale·δ_S Q (runs only when T = S)", "T=S"
    ),
)

INFOS_HERE = (
    LayerInfo(
        "scaled_dot_product_attention",
        twin,
        draw,
        REGIMES,
        MISTAKES,
        (
            "attn_mask is boolean, True where the key takes part (torch's; the inverse of nn.MultiheadAttention's key_padding_mask)",
            "is_causal is torch's top-left causal mask (query i sees keys j <= i), with T == S",
            "every query row keeps at least one key (torch returns zeros for a fully masked row; not drawn)",
            "no dropout (dropout_p = 0); scale None is 1/sqrt(E)",
            f"the right backward: {FLASH2}",
        ),
    ),
)
