r"""2-D convolution (torch's cross-correlation), with its δ derived by hand.

The forward loops over the kernel's offsets :math:`(i, j)`: each offset sees one strided slice of the
zero-padded input, which is contracted with ``weight[:, :, i, j]`` over the input channels of its
group. The backward runs the same loop: the bias and weight gradients sum over the batch and the
output positions, and :math:`\delta_x` scatters each offset's share back through the same strided
slice (the "full" correlation with the flipped kernel, written as a scatter), then crops the padding.

The window arithmetic (:func:`pair`, :func:`output_size`, :func:`window`, :func:`padded`) is shared
with :mod:`.pooling`.
"""

from __future__ import annotations

import operator
from typing import Any

from .._xp import Array, device, namespace
from .layer import Layer

__all__ = ["CONV2D", "LAYERS_HERE", "conv2d", "conv2d_backward", "output_size", "padded", "pair", "window"]

Pair = tuple[int, int]


def pair(value: Any, name: str, *, minimum: int) -> Pair:
    """``value`` as an ``(h, w)`` pair of ints, each at least ``minimum`` (an int stands for both)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}")
    out = []
    for v in items:
        if isinstance(v, bool):
            raise TypeError(f"{name} must be an int or an (h, w) pair of ints, got {value!r}")
        try:
            v = operator.index(v)
        except TypeError:
            raise TypeError(f"{name} must be an int or an (h, w) pair of ints, got {value!r}") from None
        if v < minimum:
            raise ValueError(f"{name} must be at least {minimum} (an int or an (h, w) pair), got {value!r}")
        out.append(v)
    return out[0], out[1]


def output_size(size: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> Pair:
    """The output's ``(H_out, W_out)``: :math:`\\lfloor (H + 2p - d(k - 1) - 1)/s \\rfloor + 1` per axis
    (torch's, ``ceil_mode=False``); ``ValueError`` where an axis has no whole window."""
    out = tuple(
        (n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in zip(size, kernel, stride, padding, dilation)
    )
    if min(out) < 1:
        raise ValueError(
            f"input of spatial size {tuple(size)} with padding {padding} is smaller than the kernel {kernel} "
            f"dilated by {dilation}: no whole window fits; pass a larger input, more padding or a smaller kernel"
        )
    return out[0], out[1]


def window(i: int, j: int, out: Pair, stride: Pair, dilation: Pair) -> tuple[slice, ...]:
    """The key of the padded input's elements that offset ``(i, j)`` of every window sees:
    rows :math:`d_h i + s_h h` for :math:`h < H_{out}`, columns likewise."""
    (ho, wo), (sh, sw), (dh, dw) = out, stride, dilation
    return (
        slice(None),
        slice(None),
        slice(dh * i, dh * i + sh * (ho - 1) + 1, sh),
        slice(dw * j, dw * j + sw * (wo - 1) + 1, sw),
    )


def padded(x: Array, padding: Pair, value: float, xp: Any) -> Array:
    """``x`` (N, C, H, W) with ``padding`` rows and columns of ``value`` on each side."""
    (ph, pw), (n, c, h, w) = padding, x.shape
    if ph == 0 and pw == 0:
        return x
    out = xp.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype, device=device(x))
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def _check(x: Array, weight: Array, bias: Array | None, stride: Any, padding: Any, dilation: Any, groups: Any) -> tuple:
    if len(x.shape) != 4:
        raise ValueError(f"conv2d: x must have shape (N, C, H, W), got shape {tuple(x.shape)}")
    if len(weight.shape) != 4:
        raise ValueError(f"conv2d: weight must have shape (F, C // groups, kh, kw), got shape {tuple(weight.shape)}")
    if isinstance(groups, bool) or not isinstance(groups, int):
        raise TypeError(f"conv2d: groups must be a positive int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    (c, f) = x.shape[1], weight.shape[0]
    if c % groups or f % groups:
        raise ValueError(f"conv2d: groups={groups} must divide x's channels ({c}) and weight's filters ({f})")
    if weight.shape[1] != c // groups:
        raise ValueError(
            f"conv2d: weight of shape {tuple(weight.shape)} needs C // groups = {c // groups} input channels "
            f"(x has C = {c}, groups = {groups}), got {weight.shape[1]}"
        )
    if bias is not None and tuple(bias.shape) != (f,):
        raise ValueError(f"conv2d: bias must have shape (F,) = ({f},) or be None, got shape {tuple(bias.shape)}")
    s, p, d = (
        pair(stride, "stride", minimum=1),
        pair(padding, "padding", minimum=0),
        pair(dilation, "dilation", minimum=1),
    )
    k = (weight.shape[2], weight.shape[3])
    return s, p, d, k, output_size((x.shape[2], x.shape[3]), k, s, p, d)


def conv2d(
    x: Array,
    weight: Array,
    bias: Array | None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Array:
    r"""torch's ``conv2d``: :math:`O[n,f,h,w] = b_f + \sum_{c,i,j} W[f,c,i,j]\,
    \tilde x[n, gC_g + c, s_h h + d_h i, s_w w + d_w j]` (cross-correlation, no flip).

    Args:
        x: the input, shape (N, C, H, W); :math:`\tilde x` is it zero-padded by ``padding``.
        weight: the kernel, shape (F, C // groups, kh, kw); filter f reads the channels of its group
            :math:`g = \lfloor f / (F/G) \rfloor`, :math:`C_g = C/G` of them.
        bias: shape (F,), or None for none.
        stride, padding, dilation: ints or (h, w) pairs (torch's).
        groups: G, dividing C and F.

    Returns:
        O, shape (N, F, H_out, W_out).
    """
    xp = namespace(x, weight, bias)
    s, p, d, (kh, kw), (ho, wo) = _check(x, weight, bias, stride, padding, dilation, groups)
    (n, c), f, G = x.shape[:2], weight.shape[0], groups
    xt = padded(x, p, 0.0, xp)
    O = xp.zeros((n, G, f // G, ho * wo), dtype=x.dtype, device=device(x))
    for i in range(kh):
        for j in range(kw):
            u = xp.reshape(xt[window(i, j, (ho, wo), s, d)], (n, G, c // G, ho * wo))
            O = O + xp.matmul(xp.reshape(weight[:, :, i, j], (G, f // G, c // G)), u)
    O = xp.reshape(O, (n, f, ho, wo))
    return O if bias is None else O + xp.reshape(bias, (1, f, 1, 1))


def conv2d_backward(
    dout: Array,
    x: Array,
    weight: Array,
    bias: Array | None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> dict[str, Array | None]:
    r"""δ of :func:`conv2d` (:math:`\tilde x` the padded input, :math:`f \in g` the filters of group g,
    c a channel within the group):

    δ_b[f] = Σ_{n,h,w} δ_out[n,f,h,w]                                                    (F,): sum over batch and positions
    δ_W[f,c,i,j] = Σ_{n,h,w} δ_out[n,f,h,w] x̃[n, g C_g + c, s_h h + d_h i, s_w w + d_w j]  (F, C/G, kh, kw): same sums
    δ_x̃[n, g C_g + c, s_h h + d_h i, s_w w + d_w j] += Σ_{f∈g} W[f,c,i,j] δ_out[n,f,h,w]   (N, C, H+2p_h, W+2p_w): each offset's share
    with δ̂ = δ_out dilated by the stride (δ̂[n,f,s_h h,s_w w] = δ_out[n,f,h,w], zero between), the scatter is
    δ_x̃[n, g C_g + c, a, b] = Σ_{f∈g} Σ_{i,j} δ̂[n,f, a - d_h i, b - d_w j] W[f,c,i,j]
                            = Σ_{f∈g} Σ_{i',j'} δ̂[n,f, a - d_h(kh-1) + d_h i', b - d_w(kw-1) + d_w j'] W[f,c,kh-1-i',kw-1-j']:
    the "full" correlation of δ̂ (zero-padded by d(k-1)) with the kernel flipped in both spatial axes, its
    filter and channel axes swapped; rows past the last window get no δ
    δ_x = δ_x̃[:, :, p_h : p_h + H, p_w : p_w + W]                                         (N, C, H, W): the padding cropped off

    Returns:
        ``{"x": δ_x, "weight": δ_W, "bias": δ_b}`` (``"bias": None`` where bias is None).
    """
    xp = namespace(dout, x, weight, bias)
    s, p, d, (kh, kw), (ho, wo) = _check(x, weight, bias, stride, padding, dilation, groups)
    (n, c, h, w), f, G = x.shape, weight.shape[0], groups
    if tuple(dout.shape) != (n, f, ho, wo):
        raise ValueError(f"conv2d: dout must have the output's shape {(n, f, ho, wo)}, got {tuple(dout.shape)}")
    xt = padded(x, p, 0.0, xp)
    delta = xp.reshape(dout, (n, G, f // G, ho * wo))
    dxt = xp.zeros(xt.shape, dtype=x.dtype, device=device(x))
    dW = xp.zeros(weight.shape, dtype=weight.dtype, device=device(weight))
    for i in range(kh):
        for j in range(kw):
            key = window(i, j, (ho, wo), s, d)
            u = xp.reshape(xt[key], (n, G, c // G, ho * wo))
            dW_ij = xp.sum(xp.matmul(delta, xp.permute_dims(u, (0, 1, 3, 2))), axis=0)  # (G, F/G, C/G)
            dW[:, :, i, j] = xp.reshape(dW_ij, (f, c // G))
            W_ij = xp.reshape(weight[:, :, i, j], (G, f // G, c // G))
            du = xp.matmul(xp.permute_dims(W_ij, (0, 2, 1)), delta)  # (N, G, C/G, H_out W_out)
            dxt[key] = dxt[key] + xp.reshape(du, (n, c, ho, wo))
    db = None if bias is None else xp.sum(dout, axis=(0, 2, 3))
    return {"x": dxt[:, :, p[0] : p[0] + h, p[1] : p[1] + w], "weight": dW, "bias": db}


CONV2D = Layer(
    "conv2d",
    conv2d,
    conv2d_backward,
    params=("weight", "bias"),
    shapes={"x": "N C H W", "weight": "F Cg kh kw", "bias": "F", "out": "N F Ho Wo"},
    constants={"stride": 1, "padding": 0, "dilation": 1, "groups": 1},
    description="O[n,f,h,w] = b_f + Σ_{c,i,j} W[f,c,i,j] x̃[n,c,s h + d i,s w + d j] (torch's cross-correlation)",
)

LAYERS_HERE = (CONV2D,)
