"""conv2d's oracle side: torch's ``F.conv2d`` as the twin, draws that reach strides, padding,
dilation, groups and 1x1 kernels, and the catalogue of wrong δ's a hand-written convolution is
known to produce.

The window geometry of a draw (:func:`geometry`, :func:`window_regimes`, :func:`as_constant`) is
shared with the pooling side (:mod:`.pooling`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch.nn.functional as F
from hypothesis import strategies as st

from manual._xp import device, namespace
from manual.layers.conv import Pair, conv2d_backward, output_size, padded, pair, window

from ..case import LayerCase
from ..info import LayerInfo, Mistake

__all__ = ["CONV2D", "INFOS_HERE", "Geometry", "as_constant", "geometry", "reads_input", "window_regimes"]

SIDE = 7  # the largest drawn H and W, unless a regime needs a larger one to fit two windows

REGIMES = (
    "kernel>1",
    "1x1",
    "stride>1",
    "stride>1 with padding",
    "padding",
    "dilation>1",
    "groups>1",
    "batch>1",
)


def _twin(
    x: Any, weight: Any, bias: Any, *, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> Any:
    return F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)


@dataclass(frozen=True)
class Geometry:
    """A drawn window geometry, each an (h, w) pair: kernel, stride, padding, dilation, input size."""

    k: Pair
    s: Pair
    p: Pair
    d: Pair
    size: Pair

    @property
    def out(self) -> Pair:
        """The output's (H_out, W_out)."""
        return output_size(self.size, self.k, self.s, self.p, self.d)


def as_constant(draw: Any, h: int, w: int) -> int | tuple[int, int]:
    """An int where both axes agree and a drawn coin says so, else the (h, w) pair."""
    return h if h == w and draw(st.booleans()) else (h, w)


def geometry(draw: Any, target: str, *, k_max: int, s_max: int, d_max: int, pad_limit: bool) -> Geometry:
    """Per-axis kernel, stride, padding, dilation and input size, biased toward ``target`` on a drawn
    axis: every size fits at least one window (two along that axis where the target needs them),
    and, with ``pad_limit`` (the pools), padding is at most k // 2 and a side at least the dilation,
    so that no window holds padding alone."""
    axis = draw(st.sampled_from((0, 1)))
    per: list[tuple[int, int, int, int, int]] = []
    for a in (0, 1):
        on = a == axis
        padding_target = target in ("padding", "stride>1 with padding", "padding not counted")
        needs_k2 = target in ("kernel>1", "dilation>1", "ties", "overlapping windows") or (pad_limit and padding_target)
        k_lo = 2 if on and needs_k2 else 1
        k = draw(st.integers(k_lo, 1 if target == "1x1" else k_max))
        s_lo = 2 if on and target in ("stride>1", "stride>1 with padding") else 1
        s = draw(st.integers(s_lo, max(s_lo, min(s_max, k - 1) if on and target == "overlapping windows" else s_max)))
        p_max = k // 2 if pad_limit else 1 + padding_target
        p_lo = min(1, p_max) if on and padding_target else 0
        p = draw(st.integers(p_lo, p_max))
        d = draw(
            st.integers(2 if on and target == "dilation>1" else 1, 1 if target == "overlapping windows" else d_max)
        )
        span = d * (k - 1) + 1
        two = on and target in ("stride>1", "stride>1 with padding", "overlapping windows")
        lo = max(1, span - 2 * p + (s if two else 0), d if pad_limit else 1)
        size = draw(st.integers(lo, max(SIDE, lo)))
        per.append((k, s, p, d, size))
    (k_h, s_h, p_h, d_h, h), (k_w, s_w, p_w, d_w, w) = per
    return Geometry((k_h, k_w), (s_h, s_w), (p_h, p_w), (d_h, d_w), (h, w))


def _taps(k: int, s: int, p: int, d: int, n: int, out: int) -> list[tuple[int, int]]:
    """Along one axis, the (window h, offset i) pairs that read an unpadded element: s h + d i - p in [0, n)."""
    return [(h, i) for h in range(out) for i in range(k) if 0 <= s * h + d * i - p < n]


def _axis_taps(g: Geometry) -> list[list[tuple[int, int]]]:
    return [_taps(g.k[a], g.s[a], g.p[a], g.d[a], g.size[a], g.out[a]) for a in (0, 1)]


def reads_input(g: Geometry) -> bool:
    """Whether some window reads an unpadded element (else δ_x is zero, whatever the backward)."""
    return all(_axis_taps(g))


def window_regimes(g: Geometry) -> list[str]:
    """The regimes the geometry ``g`` meets, each where it reaches the unpadded input (a window of
    padding alone, or a row no window reads, shows nothing in δ_x):

    - "kernel>1": a tap off the kernel's centre (i ≠ k - 1 - i) reads the input, so a flip shows;
    - "stride>1" (and "with padding"): along an axis with s > 1 (and p > 0), a window after the first reads it;
    - "dilation>1": along an axis with d > 1, a tap i ≥ 1 reads it;
    - "padding": p > 0 and some window reads the input; "1x1": a 1x1 kernel.
    """
    taps = _axis_taps(g)
    if not reads_input(g):
        return ["1x1"] * (g.k == (1, 1))  # no window reads the input: δ_x is zero whatever the backward
    found = []
    if any(i != g.k[a] - 1 - i for a in (0, 1) for _, i in taps[a]):
        found.append("kernel>1")
    if g.k == (1, 1):
        found.append("1x1")
    strided = [a for a in (0, 1) if g.s[a] > 1 and any(h > 0 for h, _ in taps[a])]
    if strided:
        found.append("stride>1")
    if any(g.p[a] > 0 for a in strided):
        found.append("stride>1 with padding")
    if any(g.p):
        found.append("padding")
    if any(g.d[a] > 1 and any(i > 0 for _, i in taps[a]) for a in (0, 1)):
        found.append("dilation>1")
    return found


@st.composite
def _cases(draw: Any, dtype: Any) -> LayerCase:
    target = draw(st.sampled_from(("any", *REGIMES)))
    g = geometry(draw, target, k_max=3, s_max=3, d_max=2, pad_limit=False)
    G = draw(st.sampled_from((2, 4))) if target == "groups>1" else draw(st.sampled_from((1, 1, 2)))
    Cg = draw(st.integers(1, 4 // G))
    Fg = draw(st.integers(1, 4 // G))
    N = draw(st.integers(2 if target == "batch>1" else 1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    H, W = g.size
    x = rng.uniform(-3, 3, (N, G * Cg, H, W)).astype(dtype)
    weight = rng.uniform(-1, 1, (G * Fg, Cg, *g.k)).astype(dtype)
    bias = rng.uniform(-1, 1, (G * Fg,)).astype(dtype)
    constants = {
        "stride": as_constant(draw, *g.s),
        "padding": as_constant(draw, *g.p),
        "dilation": as_constant(draw, *g.d),
        "groups": G,
    }
    regimes = window_regimes(g) + ["groups>1"] * (G > 1 and reads_input(g)) + ["batch>1"] * (N > 1)
    dims = {"N": N, "C": G * Cg, "H": H, "W": W, "F": G * Fg, "kh": g.k[0], "kw": g.k[1]}
    return LayerCase(x, {"weight": weight, "bias": bias}, constants, tuple(regimes), dims)


def _draw(dtype: Any) -> st.SearchStrategy[LayerCase]:
    return _cases(np.dtype(dtype))


def _wrong_dx(
    dout: Any,
    x: Any,
    weight: Any,
    bias: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    flip: bool = False,
    unit_stride: bool = False,
    no_dilation: bool = False,
    crop_at_zero: bool = False,
) -> dict[str, Any]:
    """conv2d's backward with one δ_x slip switched on; δ_W and δ_b are the right ones."""
    right = conv2d_backward(dout, x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    xp = namespace(dout, x, weight)
    s, p, d = (
        pair(stride, "stride", minimum=1),
        pair(padding, "padding", minimum=0),
        pair(dilation, "dilation", minimum=1),
    )
    (n, c, h, w), (f, _, kh, kw), G = x.shape, weight.shape, groups
    ho, wo = dout.shape[2:]
    delta = xp.reshape(dout, (n, G, f // G, ho * wo))
    dxt = xp.zeros(padded(x, p, 0.0, xp).shape, dtype=x.dtype, device=device(x))
    for i in range(kh):
        for j in range(kw):
            W_ij = weight[:, :, kh - 1 - i, kw - 1 - j] if flip else weight[:, :, i, j]
            du = xp.matmul(xp.permute_dims(xp.reshape(W_ij, (G, f // G, c // G)), (0, 2, 1)), delta)
            key = window(i, j, (ho, wo), (1, 1) if unit_stride else s, (1, 1) if no_dilation else d)
            dxt[key] = dxt[key] + xp.reshape(du, (n, c, ho, wo))
    at = (0, 0) if crop_at_zero else p
    return {**right, "x": dxt[:, :, at[0] : at[0] + h, at[1] : at[1] + w]}


def _unflipped(dout: Any, x: Any, weight: Any, bias: Any, **constants: Any) -> dict[str, Any]:
    return _wrong_dx(dout, x, weight, bias, **constants, flip=True)


def _stride_ignored(dout: Any, x: Any, weight: Any, bias: Any, **constants: Any) -> dict[str, Any]:
    return _wrong_dx(dout, x, weight, bias, **constants, unit_stride=True)


def _dilation_ignored(dout: Any, x: Any, weight: Any, bias: Any, **constants: Any) -> dict[str, Any]:
    return _wrong_dx(dout, x, weight, bias, **constants, no_dilation=True)


def _crop_misaligned(dout: Any, x: Any, weight: Any, bias: Any, **constants: Any) -> dict[str, Any]:
    return _wrong_dx(dout, x, weight, bias, **constants, crop_at_zero=True)


def _groups_ignored(dout: Any, x: Any, weight: Any, bias: Any, *, groups: int = 1, **constants: Any) -> dict[str, Any]:
    """Every filter wired to every input channel: the kernel repeated over the G channel blocks,
    the backward of that dense convolution, its kernel gradient summed back over the blocks."""
    xp = namespace(dout, x, weight)
    cg = weight.shape[1]
    dense = conv2d_backward(dout, x, xp.concat([weight] * groups, axis=1), bias, groups=1, **constants)
    dW_dense: Any = dense["weight"]  # (F, C, kh, kw): one block of C_g channels per repeat
    dW = sum(dW_dense[:, g * cg : (g + 1) * cg] for g in range(groups))
    return {**dense, "weight": dW}


def _bias_averaged(dout: Any, x: Any, weight: Any, bias: Any, **constants: Any) -> dict[str, Any]:
    right = conv2d_backward(dout, x, weight, bias, **constants)
    return {**right, "bias": right["bias"] / x.shape[0]}


MISTAKES = (
    Mistake(
        "δ_x with the kernel not flipped",
        _unflipped,
        formula="δ_x = full correlation of δ̂ with W[f,c,i,j] (no rot180): δ_x̃[s h + d i] += W[f,c,kh-1-i,kw-1-j] δ_out[h]",
        regime="kernel>1",
    ),
    Mistake(
        "stride ignored in the backward (δ_out not dilated)",
        _stride_ignored,
        formula="δ_x̃[h + d i, w + d j] += Σ_f W[f,c,i,j] δ_out[n,f,h,w] (steps of 1, not s)",
        source="deep-learning-coursera pull request 34, https://github.com/Kulbear/deep-learning-coursera/pull/34 (stride missing in conv_backward)",
        regime="stride>1",
    ),
    Mistake(
        "dilation ignored in the backward",
        _dilation_ignored,
        formula="δ_x̃[s h + i, s w + j] += Σ_f W[f,c,i,j] δ_out[n,f,h,w] (offsets i, not d i)",
        regime="dilation>1",
    ),
    Mistake(
        "padding cropped from the wrong corner",
        _crop_misaligned,
        formula="δ_x = δ_x̃[:, :, 0 : H, 0 : W] (not p : p + H)",
        regime="padding",
    ),
    Mistake(
        "groups ignored (every filter sees every channel)",
        _groups_ignored,
        formula="δ_x[n,c] = Σ_{all f} W[f, c mod C_g] ⋆ δ̂[n,f]; δ_W summed over the G channel blocks",
        regime="groups>1",
    ),
    Mistake(
        "δ_b averaged over the batch",
        _bias_averaged,
        formula="δ_b[f] = (1/N) Σ_{n,h,w} δ_out[n,f,h,w]",
        regime="batch>1",
    ),
)

CONV2D = LayerInfo(
    "conv2d",
    _twin,
    _draw,
    regimes=REGIMES,
    mistakes=MISTAKES,
    convention=("cross-correlation as torch (no kernel flip in the forward); zero padding",),
)

INFOS_HERE = (CONV2D,)
