"""max_pool2d's and avg_pool2d's oracle side: torch's functionals as twins, draws that reach ties,
overlapping windows, padding and dilation, and the catalogue of wrong δ's hand-written pooling is
known to produce.

Every regime a case is labelled with is checked on its values: "ties" on the windows torch unfolds
from the -inf-padded input, "shared maximum" on the indices torch's own max_pool2d returns,
"overlapping windows" and the averaging counts on the window geometry.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from manual._xp import device, namespace
from manual.layers.conv import output_size, padded, pair, window
from manual.layers.pooling import avg_pool2d_backward, max_pool2d

from ..case import LayerCase
from ..info import LayerInfo, Mistake
from .conv import Geometry, as_constant, geometry, window_regimes

__all__ = ["AVG_POOL2D", "INFOS_HERE", "MAX_POOL2D"]

MAX_REGIMES = (
    "kernel>1",
    "1x1",
    "stride>1 with padding",
    "padding",
    "dilation>1",
    "overlapping windows",
    "ties",
    "shared maximum",
)
AVG_REGIMES = ("kernel>1", "1x1", "stride>1 with padding", "padding", "overlapping windows", "padding not counted")


def _max_twin(x: Any, *, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1) -> Any:
    return F.max_pool2d(x, kernel_size, stride, padding, dilation)


def _avg_twin(x: Any, *, kernel_size: Any, stride: Any = None, padding: Any = 0, count_include_pad: bool = True) -> Any:
    return F.avg_pool2d(x, kernel_size, stride, padding, count_include_pad=count_include_pad)


def _counts(g: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """How many windows hold each element of the padded input (H + 2p_h, W + 2p_w), and how many unpadded
    elements each window holds (H_out, W_out)."""
    k, s, p, d, size, out = g.k, g.s, g.p, g.d, g.size, g.out
    real = np.zeros((size[0] + 2 * p[0], size[1] + 2 * p[1]), dtype=np.int64)
    real[p[0] : p[0] + size[0], p[1] : p[1] + size[1]] = 1
    held = np.zeros_like(real)
    inside = np.zeros(out, dtype=np.int64)
    for h in range(out[0]):
        for w in range(out[1]):
            key = (
                slice(s[0] * h, s[0] * h + d[0] * (k[0] - 1) + 1, d[0]),
                slice(s[1] * w, s[1] * w + d[1] * (k[1] - 1) + 1, d[1]),
            )
            held[key] += 1
            inside[h, w] = real[key].sum()
    return held, inside


def _pool_geometry(draw: Any, target: str, d_max: int) -> tuple[Geometry, dict[str, Any], list[str]]:
    geometry_target = "overlapping windows" if target == "shared maximum" else target
    g = geometry(draw, geometry_target, k_max=3, s_max=3, d_max=d_max, pad_limit=True)
    s = None if g.s == g.k and draw(st.booleans()) else as_constant(draw, *g.s)
    constants = {"kernel_size": as_constant(draw, *g.k), "stride": s, "padding": as_constant(draw, *g.p)}
    found = window_regimes(g)
    held, _ = _counts(g)
    p, n = g.p, g.size
    if held[p[0] : p[0] + n[0], p[1] : p[1] + n[1]].max() > 1:  # an unpadded element in two windows
        found.append("overlapping windows")
    return g, constants, found


def _values(rng: np.random.Generator, shape: tuple[int, ...], grid: bool, dtype: Any) -> np.ndarray:
    """Uniform in [-3, 3], or (``grid``) halves in [-1, 1], where ties are common."""
    return (rng.integers(-2, 3, shape) / 2 if grid else rng.uniform(-3, 3, shape)).astype(dtype)


def _max_value_regimes(x: np.ndarray, g: Geometry) -> list[str]:
    """The regimes of the values: "ties", a window whose maximum two of its elements attain;
    "shared maximum", an element that torch routes two windows' δ to."""
    t = torch.from_numpy(x.astype(np.float64))
    (kh, kw), s, (ph, pw), d = g.k, g.s, g.p, g.d
    cols = F.unfold(F.pad(t, (pw, pw, ph, ph), value=-float("inf")), (kh, kw), dilation=d, stride=s)
    cols = cols.reshape(x.shape[0], x.shape[1], kh * kw, -1)
    found = []
    if ((cols == cols.max(dim=2, keepdim=True).values).sum(dim=2) > 1).any():
        found.append("ties")
    _, where = F.max_pool2d(t, (kh, kw), s, (ph, pw), d, return_indices=True)
    routed = where.reshape(x.shape[0] * x.shape[1], -1).sort(dim=1).values
    if (routed[:, 1:] == routed[:, :-1]).any():
        found.append("shared maximum")
    return found


@st.composite
def _max_cases(draw: Any, dtype: Any) -> LayerCase:
    target = draw(st.sampled_from(("any", *MAX_REGIMES)))
    g, constants, found = _pool_geometry(draw, target, d_max=2)
    constants["dilation"] = as_constant(draw, *g.d)
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = _values(rng, (N, C, *g.size), target == "ties" or draw(st.booleans()), dtype)
    regimes = [r for r in (*found, *_max_value_regimes(x, g)) if r in MAX_REGIMES]
    dims = {"N": N, "C": C, "H": g.size[0], "W": g.size[1], "kh": g.k[0], "kw": g.k[1]}
    return LayerCase(x, {}, constants, tuple(regimes), dims)


@st.composite
def _avg_cases(draw: Any, dtype: Any) -> LayerCase:
    target = draw(st.sampled_from(("any", *AVG_REGIMES)))
    g, constants, found = _pool_geometry(draw, target, d_max=1)
    include = target != "padding not counted" and draw(st.booleans())
    constants["count_include_pad"] = include
    inside = _counts(g)[1]
    divisor = np.full_like(inside, g.k[0] * g.k[1]) if include else inside
    found = [r for r in found if r != "kernel>1"] + ["kernel>1"] * bool(divisor.max() > 1)
    if not include and any(g.p):
        found.append("padding not counted")
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = _values(rng, (N, C, *g.size), False, dtype)
    dims = {"N": N, "C": C, "H": g.size[0], "W": g.size[1], "kh": g.k[0], "kw": g.k[1]}
    return LayerCase(x, {}, constants, tuple(r for r in found if r in AVG_REGIMES), dims)


def _max_draw(dtype: Any) -> st.SearchStrategy[LayerCase]:
    return _max_cases(np.dtype(dtype))


def _avg_draw(dtype: Any) -> st.SearchStrategy[LayerCase]:
    return _avg_cases(np.dtype(dtype))


def _geometry(x: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any) -> tuple:
    k = pair(kernel_size, "kernel_size", minimum=1)
    s = k if stride is None else pair(stride, "stride", minimum=1)
    p, d = pair(padding, "padding", minimum=0), pair(dilation, "dilation", minimum=1)
    return k, s, p, d, output_size(x.shape[2:], k, s, p, d)


def _max_routed(dout: Any, x: Any, order: str, **constants: Any) -> dict[str, Any]:
    """max pool's δ to every tied maximum (``order="all"``) or to the last one (``"last"``)."""
    xp = namespace(dout, x)
    (kh, kw), s, p, d, out = _geometry(x, **{"stride": None, "padding": 0, "dilation": 1, **constants})
    xt = padded(x, p, -float("inf"), xp)
    O = max_pool2d(x, **constants)
    dxt = xp.zeros(xt.shape, dtype=x.dtype, device=device(x))
    taken = xp.zeros(dout.shape, dtype=xp.bool, device=device(x))
    offsets = [(i, j) for i in range(kh) for j in range(kw)]
    for i, j in reversed(offsets) if order == "last" else offsets:
        key = window(i, j, out, s, d)
        hit = xt[key] == O
        if order == "last":
            hit = xp.logical_and(hit, xp.logical_not(taken))
            taken = xp.logical_or(taken, hit)
        dxt[key] = dxt[key] + xp.where(hit, dout, xp.zeros_like(dout))
    return {"x": dxt[:, :, p[0] : p[0] + x.shape[2], p[1] : p[1] + x.shape[3]]}


def _max_all_ties(dout: Any, x: Any, **constants: Any) -> dict[str, Any]:
    return _max_routed(dout, x, "all", **constants)


def _max_last_tie(dout: Any, x: Any, **constants: Any) -> dict[str, Any]:
    return _max_routed(dout, x, "last", **constants)


def _overwritten(dout: Any, x: Any, share: Any, k: Any, s: Any, p: Any, d: Any, out: Any, first: Any) -> Any:
    """A loop over the windows that assigns each window's δ to its region (``=``, not ``+=``):
    a later window's zeros and values replace what an earlier one left on a shared element."""
    xp = namespace(dout, x)
    n, c = x.shape[:2]
    dxt = xp.zeros(padded(x, p, 0.0, xp).shape, dtype=x.dtype, device=device(x))
    for h in range(out[0]):
        for w in range(out[1]):
            rows = slice(s[0] * h, s[0] * h + d[0] * (k[0] - 1) + 1, d[0])
            cols = slice(s[1] * w, s[1] * w + d[1] * (k[1] - 1) + 1, d[1])
            mask = xp.reshape(
                xp.stack([first[i][j][:, :, h, w] for i in range(k[0]) for j in range(k[1])], axis=2), (n, c, *k)
            )
            dxt[:, :, rows, cols] = mask * xp.reshape(share[:, :, h, w], (n, c, 1, 1))
    return dxt[:, :, p[0] : p[0] + x.shape[2], p[1] : p[1] + x.shape[3]]


def _max_overwrite(dout: Any, x: Any, **constants: Any) -> dict[str, Any]:
    xp = namespace(dout, x)
    k, s, p, d, out = _geometry(x, **{"stride": None, "padding": 0, "dilation": 1, **constants})
    xt = padded(x, p, -float("inf"), xp)
    O = max_pool2d(x, **constants)
    first: list[list[Any]] = [[None] * k[1] for _ in range(k[0])]
    taken = xp.zeros(dout.shape, dtype=xp.bool, device=device(x))
    for i in range(k[0]):
        for j in range(k[1]):
            hit = xp.logical_and(xt[window(i, j, out, s, d)] == O, xp.logical_not(taken))
            taken = xp.logical_or(taken, hit)
            first[i][j] = xp.astype(hit, x.dtype)
    return {"x": _overwritten(dout, x, dout, k, s, p, d, out, first)}


def _avg_geometry(
    x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, count_include_pad: bool = True
) -> tuple:
    return _geometry(x, kernel_size, stride, padding, 1)


def _avg_scatter(x: Any, share: Any, k: Any, s: Any, p: Any, out: Any) -> Any:
    """Each window's ``share`` added to all of its elements, the padding cropped."""
    xp = namespace(share, x)
    dxt = xp.zeros(padded(x, p, 0.0, xp).shape, dtype=x.dtype, device=device(x))
    for i in range(k[0]):
        for j in range(k[1]):
            key = window(i, j, out, s, (1, 1))
            dxt[key] = dxt[key] + share
    return dxt[:, :, p[0] : p[0] + x.shape[2], p[1] : p[1] + x.shape[3]]


def _avg_no_area(dout: Any, x: Any, **constants: Any) -> dict[str, Any]:
    k, s, p, _, out = _avg_geometry(x, **constants)
    return {"x": _avg_scatter(x, dout, k, s, p, out)}


def _avg_area_always(dout: Any, x: Any, **constants: Any) -> dict[str, Any]:
    return avg_pool2d_backward(dout, x, **{**constants, "count_include_pad": True})


def _avg_overwrite(dout: Any, x: Any, **constants: Any) -> dict[str, Any]:
    xp = namespace(dout, x)
    k, s, p, d, out = _avg_geometry(x, **constants)
    D: Any = float(k[0] * k[1])
    if not constants.get("count_include_pad", True):
        ones = padded(xp.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=device(x)), p, 0.0, xp)
        D = sum(ones[window(i, j, out, s, (1, 1))] for i in range(k[0]) for j in range(k[1]))
    every = [[xp.ones_like(dout)] * k[1] for _ in range(k[0])]
    return {"x": _overwritten(dout, x, dout / D, k, s, p, d, out, every)}


MAX_POOL2D = LayerInfo(
    "max_pool2d",
    _max_twin,
    _max_draw,
    regimes=MAX_REGIMES,
    mistakes=(
        Mistake(
            "δ sent to every tied maximum",
            _max_all_ties,
            source="Theano issue 5248, https://github.com/Theano/Theano/issues/5248 (max-pool gradient to every input equal to the maximum)",
            formula="δ_x̃[s h + d i, s w + d j] += δ_out[h,w] · [x̃[s h + d i, s w + d j] = O[h,w]] for every (i, j)",
            regime="ties",
        ),
        Mistake(
            "δ routed to the last tied maximum (a valid subgradient, not torch's)",
            _max_last_tie,
            formula="(i*, j*) = the LAST (i, j) in row-major order with x̃[s h + d i, s w + d j] = O[h,w]",
            regime="ties",
        ),
        Mistake(
            "overlapping windows overwrite instead of accumulating",
            _max_overwrite,
            source="tangermeme pull request 95, https://github.com/jmschrei/tangermeme/pull/95 (max_unpool assigns, overlapping windows lost)",
            formula="δ_x̃[window(h,w)] = mask(h,w) δ_out[h,w] (=, not +=), windows in row-major order",
            regime="shared maximum",
        ),
    ),
    convention=(
        "δ of a window goes to ONE maximum: the first in row-major order within the window at a tie (torch's CPU kernel)",
        "padding is -inf (never a maximum); padding <= kernel_size // 2 as torch requires",
    ),
)

AVG_POOL2D = LayerInfo(
    "avg_pool2d",
    _avg_twin,
    _avg_draw,
    regimes=AVG_REGIMES,
    mistakes=(
        Mistake(
            "δ not divided by the window's size",
            _avg_no_area,
            formula="δ_x̃[s h + i, s w + j] += δ_out[h,w] (no 1/D)",
            regime="kernel>1",
        ),
        Mistake(
            "divisor ignores count_include_pad (kernel area always)",
            _avg_area_always,
            formula="δ_x̃[s h + i, s w + j] += δ_out[h,w] / (kh kw) even with count_include_pad=False",
            source="burn issue 5604, https://github.com/tracel-ai/burn/issues/5604 (the backward divides by the kernel volume where the forward does not)",
            regime="padding not counted",
        ),
        Mistake(
            "overlapping windows overwrite instead of accumulating",
            _avg_overwrite,
            formula="δ_x̃[window(h,w)] = δ_out[h,w] / D (=, not +=), windows in row-major order",
            regime="overlapping windows",
        ),
    ),
    convention=(
        "ceil_mode=False; zero padding, padding <= kernel_size // 2 as torch requires",
        "divisor D = kh kw with count_include_pad (torch's default), else the window's count of unpadded elements",
    ),
)

INFOS_HERE = (MAX_POOL2D, AVG_POOL2D)
