"""Random valid architectures from the layer registry, as Hypothesis strategies that shrink towards
the smallest failing network (fewer layers, fewer blocks, narrower, shorter sequences, smaller batches).

Families:

- ``"mlp"``: ``linear`` layers with, per hidden layer, an optional norm (layer, RMS or batch), an
  activation of :data:`manual.ACTIVATIONS`, an optional dropout, and residual blocks ``[linear, activation]``;
  heads: cross-entropy on logits, canonical pairs (sigmoid + bce, softmax + ce, identity + squared),
  output activations whose own backward runs (tanh, sigmoid or softmax + squared, sigmoid + ce), and
  Huber.
- ``"cnn"``: one or two ``conv2d`` (kernel 1-3, padding 0-1, stride 1-2) + activation + optional pooling
  (max or average, window 2 or 3, stride 1 up to the window: overlapping windows), on inputs whose
  height and width are drawn apart, then ``flatten``, ``linear``, cross-entropy.
- ``"transformer"``: GPT-style: ``embedding``, 1-2 blocks ``[layer_norm, self_attention] + x``,
  ``[layer_norm, linear, activation, linear] + x``, ``layer_norm``, ``linear``, cross-entropy over every
  token; heads dividing the width, causal or not.

Every value is drawn by :func:`~torch_ref.networks.case.network_case` from one drawn seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from manual import ACTIVATIONS
from manual.network import (
    Network,
    Residual,
    avg_pool2d,
    batch_norm,
    conv2d,
    dropout,
    embedding,
    layer_norm,
    linear,
    max_pool2d,
    rms_norm,
    self_attention,
)

from .case import NetworkCase, network_case

__all__ = ["FAMILIES", "architectures", "network_cases"]

FAMILIES = ("mlp", "cnn", "transformer")
_ELEMENTWISE = tuple(n for n, a in ACTIVATIONS.items() if a.elementwise)
# the heads: canonical pairs (the output activation's backward folded into y* - y), and pairs whose
# output activation runs its own backward (softmax's vector-Jacobian product, tanh's and sigmoid's
# derivatives) under a loss's gradient, and the Huber loss
_HEADS = (
    ("cross_entropy", None), ("bce", "sigmoid"), ("ce", "softmax"), ("squared", None), ("squared", "tanh"),
    ("squared", "sigmoid"), ("squared", "softmax"), ("huber", None), ("ce", "sigmoid"),
)  # fmt: skip


@st.composite
def _mlp(draw: Any) -> tuple[Network, tuple[int, ...]]:
    D = draw(st.integers(1, 5))
    hidden = draw(st.lists(st.integers(1, 6), min_size=0, max_size=3))
    N = draw(st.integers(1, 6))
    layers: list[Any] = []
    width = D
    for H in hidden:
        layers.append(linear(width, H, bias=draw(st.booleans())))
        norm = draw(st.sampled_from(("", "layer_norm", "rms_norm", "batch_norm")))
        if norm == "batch_norm" and N >= 2:
            layers.append(batch_norm(H))
        elif norm == "layer_norm":
            layers.append(layer_norm(H))
        elif norm == "rms_norm":
            layers.append(rms_norm(H))
        layers.append(draw(st.sampled_from(_ELEMENTWISE)))
        if draw(st.booleans()) and draw(st.booleans()):
            layers.append(dropout(draw(st.sampled_from((0.25, 0.5)))))
        if draw(st.booleans()):
            layers.append(Residual([linear(H, H), draw(st.sampled_from(_ELEMENTWISE))]))
        width = H
    loss, out = draw(st.sampled_from(_HEADS))
    J = draw(st.integers(2 if out == "softmax" or loss == "cross_entropy" else 1, 4))
    layers.append(linear(width, J))
    if out is not None:
        layers.append(out)
    reduction = draw(st.sampled_from(("mean", "sum")))
    return Network(layers, loss, reduction=reduction), (N, D)


@st.composite
def _transformer(draw: Any) -> tuple[Network, tuple[int, ...]]:
    heads = draw(st.integers(1, 2))
    D = heads * draw(st.integers(2 // heads, 3))  # D >= 2: a layer norm over one feature is degenerate
    V, T, N = draw(st.integers(2, 9)), draw(st.integers(1, 5)), draw(st.integers(1, 2))
    act = draw(st.sampled_from(("gelu", "relu", "silu", "tanh")))
    layers: list[Any] = [embedding(V, D)]
    for _ in range(draw(st.integers(1, 2))):
        M = draw(st.integers(1, 2 * D))
        layers.append(Residual([layer_norm(D), self_attention(D, heads, causal=draw(st.booleans()))]))
        layers.append(Residual([layer_norm(D), linear(D, M), act, linear(M, D)]))
    layers += [layer_norm(D), linear(D, V)]
    return Network(layers, "cross_entropy", reduction=draw(st.sampled_from(("mean", "sum")))), (N, T)


def _cnn_sized() -> Any:
    """A CNN on (N, C, H, W) inputs, H and W drawn apart; pooling windows of 2 or 3 with a stride of
    1 up to the window (overlapping windows where it is smaller)."""

    @st.composite
    def build(draw: Any) -> tuple[Network, tuple[int, int, int, int]]:
        C, N = draw(st.integers(1, 2)), draw(st.integers(1, 3))
        H, W = draw(st.integers(3, 8)), draw(st.integers(3, 8))
        layers: list[Any] = []
        channels, h, w = C, H, W
        for _ in range(draw(st.integers(1, 2))):
            F, k = draw(st.integers(1, 3)), draw(st.integers(1, 3))
            padding, stride = draw(st.integers(0, 1)), draw(st.integers(1, 2))
            oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
            if oh < 1 or ow < 1:
                break
            layers += [conv2d(channels, F, k, stride=stride, padding=padding), draw(st.sampled_from(_ELEMENTWISE))]
            channels, h, w = F, oh, ow
            pool = draw(st.sampled_from(("", "max", "avg")))
            if pool:
                kp = draw(st.integers(2, 3))
                sp = draw(st.integers(1, kp))
                if h >= kp and w >= kp:
                    layers.append((max_pool2d if pool == "max" else avg_pool2d)(kp, stride=None if sp == kp else sp))
                    h, w = (h - kp) // sp + 1, (w - kp) // sp + 1
        if not layers:
            layers += [conv2d(channels, 1, 1), "relu"]
            channels = 1
        K = draw(st.integers(2, 4))
        layers += ["flatten", linear(channels * h * w, K)]
        net = Network(layers, "cross_entropy", reduction=draw(st.sampled_from(("mean", "sum"))))
        return net, (N, C, H, W)

    return build()


def architectures(families: tuple[str, ...] = FAMILIES) -> Any:
    """``(family, network, input shape)`` of the given families."""
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"networks must name families among {FAMILIES}, got {families!r}")
    parts = []
    for family in families:
        if family == "mlp":
            parts.append(_mlp().map(lambda a: ("mlp", *a)))
        elif family == "cnn":
            parts.append(_cnn_sized().map(lambda a: ("cnn", *a)))
        else:
            parts.append(_transformer().map(lambda a: ("transformer", *a)))
    return st.one_of(*parts)


def network_cases(families: tuple[str, ...], dtype: np.dtype) -> Any:
    """``SearchStrategy[NetworkCase]``: an architecture of ``families`` and one seed for its values."""

    @st.composite
    def build(draw: Any) -> NetworkCase:
        family, net, shape = draw(architectures(families))
        seed = draw(st.integers(0, 2**32 - 1))
        return network_case(net, shape, seed, dtype, family=family)

    return build()
