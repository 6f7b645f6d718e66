r"""2-D max and average pooling (torch's, ``ceil_mode=False``), with their δ derived by hand.

Both loop over the window's offsets :math:`(i, j)` as :mod:`.conv` does (its :func:`~.conv.window`
slices): each offset sees one strided slice of the padded input, one element of every window. The
backward scatters δ back through the same slices, adding, so that an element shared by overlapping
windows collects the δ of each.

Max pooling's δ goes to ONE maximum per window, the first in row-major order within the window at
a tie: the element torch's CPU kernel picks (it replaces its running maximum only on a strictly
greater value). Any tied maximum gives a valid subgradient; this one is torch's.
"""

from __future__ import annotations

from typing import Any

from .._xp import Array, device, namespace
from .conv import Pair, output_size, padded, pair, window
from .layer import Layer

__all__ = [
    "AVG_POOL2D",
    "LAYERS_HERE",
    "MAX_POOL2D",
    "avg_pool2d",
    "avg_pool2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
]


def _geometry(
    name: str, x: Array, kernel_size: Any, stride: Any, padding: Any, dilation: Any
) -> tuple[Pair, Pair, Pair, Pair, Pair]:
    """Validated ``(kernel, stride, padding, dilation, (H_out, W_out))``; stride None is the kernel."""
    if len(x.shape) != 4:
        raise ValueError(f"{name}: x must have shape (N, C, H, W), got shape {tuple(x.shape)}")
    k = pair(kernel_size, "kernel_size", minimum=1)
    s = k if stride is None else pair(stride, "stride", minimum=1)
    p, d = pair(padding, "padding", minimum=0), pair(dilation, "dilation", minimum=1)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        # torch's own limit: a wider padding could make a window of padding alone
        raise ValueError(
            f"{name}: padding must be at most kernel_size // 2 = {(k[0] // 2, k[1] // 2)} (torch's limit), got {padding!r}"
        )
    return k, s, p, d, output_size((x.shape[2], x.shape[3]), k, s, p, d)


def _check_dout(name: str, dout: Array, x: Array, out: Pair) -> None:
    want = (*x.shape[:2], *out)
    if tuple(dout.shape) != want:
        raise ValueError(f"{name}: dout must have the output's shape {want}, got {tuple(dout.shape)}")


def max_pool2d(x: Array, *, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1) -> Array:
    r"""torch's ``max_pool2d``: :math:`O[n,c,h,w] = \max_{i,j} \tilde x[n,c,s_h h + d_h i, s_w w + d_w j]`.

    Args:
        x: the input, shape (N, C, H, W); :math:`\tilde x` is it padded with -inf (torch's).
        kernel_size: (kh, kw), or an int for both (no default, as torch).
        stride: ints or (h, w) pairs; None (the default) means ``kernel_size``.
        padding: at most ``kernel_size // 2`` per axis (torch's limit).
        dilation: the spacing of a window's elements.

    Returns:
        O, shape (N, C, H_out, W_out).
    """
    xp = namespace(x)
    (kh, kw), s, p, d, out = _geometry("max_pool2d", x, kernel_size, stride, padding, dilation)
    xt = padded(x, p, -float("inf"), xp)
    O = xt[window(0, 0, out, s, d)]
    for i in range(kh):
        for j in range(kw):
            O = xp.maximum(O, xt[window(i, j, out, s, d)])
    return O


def max_pool2d_backward(
    dout: Array, x: Array, *, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1
) -> dict[str, Array | None]:
    r"""δ of :func:`max_pool2d`: each window's δ to its first maximum in row-major order (torch's).

    (i*, j*)[n,c,h,w] = the first (i, j) in row-major order with x̃[n,c,s_h h + d_h i, s_w w + d_w j] = O[n,c,h,w]
    δ_x̃[n,c,s_h h + d_h i*, s_w w + d_w j*] += δ_out[n,c,h,w]     (N, C, H+2p_h, W+2p_w): summed over the windows sharing an element
    δ_x = δ_x̃[:, :, p_h : p_h + H, p_w : p_w + W]                (N, C, H, W): the padding cropped (it never holds a maximum)

    Returns:
        ``{"x": δ_x}``.
    """
    xp = namespace(dout, x)
    (kh, kw), s, p, d, out = _geometry("max_pool2d", x, kernel_size, stride, padding, dilation)
    _check_dout("max_pool2d", dout, x, out)
    (h, w) = x.shape[2:]
    xt = padded(x, p, -float("inf"), xp)
    O = max_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
    dxt = xp.zeros(xt.shape, dtype=x.dtype, device=device(x))
    zero = xp.zeros_like(dout)
    taken = xp.zeros(dout.shape, dtype=xp.bool, device=device(x))  # the window's δ has gone to an earlier offset
    for i in range(kh):
        for j in range(kw):
            key = window(i, j, out, s, d)
            first = xp.logical_and(xt[key] == O, xp.logical_not(taken))
            dxt[key] = dxt[key] + xp.where(first, dout, zero)
            taken = xp.logical_or(taken, first)
    return {"x": dxt[:, :, p[0] : p[0] + h, p[1] : p[1] + w]}


def _divisor(x: Array, k: Pair, s: Pair, p: Pair, out: Pair, count_include_pad: bool, xp: Any) -> Array | float:
    """The kernel area kh·kw, or (without count_include_pad) each window's count of unpadded elements,
    shape (1, 1, H_out, W_out)."""
    if count_include_pad or p == (0, 0):
        return float(k[0] * k[1])
    ones = padded(xp.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=device(x)), p, 0.0, xp)
    return sum(ones[window(i, j, out, s, (1, 1))] for i in range(k[0]) for j in range(k[1]))


def _check_flag(count_include_pad: Any) -> None:
    if not isinstance(count_include_pad, bool):
        raise TypeError(f"avg_pool2d: count_include_pad must be True or False, got {count_include_pad!r}")


def avg_pool2d(
    x: Array, *, kernel_size: Any, stride: Any = None, padding: Any = 0, count_include_pad: bool = True
) -> Array:
    r"""torch's ``avg_pool2d``: :math:`O[n,c,h,w] = \frac{1}{D[h,w]} \sum_{i,j} \tilde x[n,c,s_h h + i, s_w w + j]`.

    Args:
        x: the input, shape (N, C, H, W); :math:`\tilde x` is it zero-padded.
        kernel_size: (kh, kw), or an int for both (no default, as torch).
        stride: ints or (h, w) pairs; None (the default) means ``kernel_size``.
        padding: at most ``kernel_size // 2`` per axis (torch's limit).
        count_include_pad: D = kh·kw when True (torch's default), else the window's count of
            unpadded elements.

    Returns:
        O, shape (N, C, H_out, W_out).
    """
    xp = namespace(x)
    _check_flag(count_include_pad)
    (kh, kw), s, p, d, out = _geometry("avg_pool2d", x, kernel_size, stride, padding, 1)
    xt = padded(x, p, 0.0, xp)
    total = sum(xt[window(i, j, out, s, d)] for i in range(kh) for j in range(kw))
    return total / _divisor(x, (kh, kw), s, p, out, count_include_pad, xp)


def avg_pool2d_backward(
    dout: Array, x: Array, *, kernel_size: Any, stride: Any = None, padding: Any = 0, count_include_pad: bool = True
) -> dict[str, Array | None]:
    r"""δ of :func:`avg_pool2d`: each window spreads δ_out / D evenly over its elements.

    D[h,w] = kh kw (count_include_pad) or #{(i, j): s_h h + i - p_h ∈ [0, H), s_w w + j - p_w ∈ [0, W)}   (H_out, W_out)
    δ_x̃[n,c,s_h h + i, s_w w + j] += δ_out[n,c,h,w] / D[h,w]     (N, C, H+2p_h, W+2p_w): summed over overlapping windows
    δ_x = δ_x̃[:, :, p_h : p_h + H, p_w : p_w + W]                (N, C, H, W): the padding cropped off

    Returns:
        ``{"x": δ_x}``.
    """
    xp = namespace(dout, x)
    _check_flag(count_include_pad)
    (kh, kw), s, p, d, out = _geometry("avg_pool2d", x, kernel_size, stride, padding, 1)
    _check_dout("avg_pool2d", dout, x, out)
    (h, w) = x.shape[2:]
    share = dout / _divisor(x, (kh, kw), s, p, out, count_include_pad, xp)
    dxt = xp.zeros((*x.shape[:2], h + 2 * p[0], w + 2 * p[1]), dtype=x.dtype, device=device(x))
    for i in range(kh):
        for j in range(kw):
            key = window(i, j, out, s, d)
            dxt[key] = dxt[key] + share
    return {"x": dxt[:, :, p[0] : p[0] + h, p[1] : p[1] + w]}


MAX_POOL2D = Layer(
    "max_pool2d",
    max_pool2d,
    max_pool2d_backward,
    shapes={"x": "N C H W", "out": "N C Ho Wo"},
    # kernel_size has no default in the functions (as torch); 2 is the value a generic caller uses
    constants={"kernel_size": 2, "stride": None, "padding": 0, "dilation": 1},
    description="O[n,c,h,w] = max_{i,j} x̃[n,c,s h + d i,s w + d j] (-inf padding); δ to the first maximum",
)

AVG_POOL2D = Layer(
    "avg_pool2d",
    avg_pool2d,
    avg_pool2d_backward,
    shapes={"x": "N C H W", "out": "N C Ho Wo"},
    constants={"kernel_size": 2, "stride": None, "padding": 0, "count_include_pad": True},
    description="O[n,c,h,w] = Σ_{i,j} x̃[n,c,s h + i,s w + j] / D (D = kh kw, or the unpadded count)",
)

LAYERS_HERE = (MAX_POOL2D, AVG_POOL2D)
