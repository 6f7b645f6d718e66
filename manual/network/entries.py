"""The network entries, built like torch's modules (``linear(3, 4)`` as ``nn.Linear(3, 4)``): each a
:class:`Node` holding a layer of :data:`manual.LAYERS` (or of this package: an activation, flatten,
self-attention) with its parameters' shapes and initialisation; and :func:`entry`, which turns what a
user writes in a network's list (``"relu"``, a node, a :class:`Residual`) into an entry.

Initialisation follows torch's modules: uniform in ±1/√fan_in for linear and convolution weights and
biases, γ = 1 and β = 0 for norms, N(0, 1) for an embedding.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from .._xp import Array, namespace
from ..activation import Activation
from ..layers.layer import Layer
from ..layers.registry import LAYERS
from ..registry import ACTIVATIONS
from ..registry import activation as resolve_activation
from .attention import SELF_ATTENTION
from .node import Init, Node

__all__ = [
    "activation",
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "dropout",
    "embedding",
    "entry",
    "flatten",
    "layer_norm",
    "linear",
    "max_pool2d",
    "rms_norm",
    "self_attention",
]


def _uniform(bound: float) -> Init:
    return lambda rng, shape: rng.uniform(-bound, bound, size=shape)


def _const(value: float) -> Init:
    return lambda rng, shape: np.full(shape, value)


def _normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape)


def _eps(eps: float, default: float) -> str:
    return "" if eps == default else f", eps={eps!r}"


def _size(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: {name} must be an int >= 1, got {value!r}")
    return value


def linear(I: int, O: int, *, bias: bool = True) -> Node:
    """``out = u W + b``, W of shape ``(I, O)`` (the slides' layout), on the last axis of any input
    (``(N, I)`` or ``(N, T, I)``). ``bias=False``: b is the constant 0, not trained."""
    I, O = _size(I, "I", "linear"), _size(O, "O", "linear")
    bound = 1 / math.sqrt(I)
    shapes = {"weight": (I, O), **({"bias": (O,)} if bias else {})}
    fixed = None if bias else _zero_bias(O)
    init = {"weight": _uniform(bound), "bias": _uniform(bound)} if bias else {"weight": _uniform(bound)}
    call = f"linear({I}, {O}{'' if bias else ', bias=False'})"
    return Node(LAYERS["linear"], shapes, init=init, fixed=fixed, tokens=True, label=f"linear {I}->{O}", call=call)


def _zero_bias(O: int) -> Any:
    def fixed(x: Array, xp: Any) -> dict[str, Array]:
        return {"bias": xp.zeros((O,), dtype=x.dtype, device=getattr(x, "device", None))}

    return fixed


def layer_norm(D: int, *, eps: float = 1e-5) -> Node:
    """Layer normalization over the last axis, γ and β of shape ``(D,)``."""
    D = _size(D, "D", "layer_norm")
    return Node(
        LAYERS["layer_norm"],
        {"weight": (D,), "bias": (D,)},
        {"eps": eps},
        init={"weight": _const(1.0), "bias": _const(0.0)},
        tokens=True,
        label=f"layer_norm {D}",
        call=f"layer_norm({D}{_eps(eps, 1e-5)})",
    )


def rms_norm(D: int, *, eps: float = 1e-6) -> Node:
    """RMS normalization over the last axis, γ of shape ``(D,)``."""
    D = _size(D, "D", "rms_norm")
    return Node(
        LAYERS["rms_norm"],
        {"weight": (D,)},
        {"eps": eps},
        init={"weight": _const(1.0)},
        tokens=True,
        label=f"rms_norm {D}",
        call=f"rms_norm({D}{_eps(eps, 1e-6)})",
    )


def batch_norm(C: int, *, eps: float = 1e-5) -> Node:
    """Batch normalization of each of C columns over the batch, in training mode (the batch's
    statistics; running statistics are not kept), input ``(N, C)``."""
    C = _size(C, "C", "batch_norm")

    def fixed(x: Array, xp: Any) -> dict[str, Array]:
        device = getattr(x, "device", None)
        return {
            "running_mean": xp.zeros((C,), dtype=x.dtype, device=device),
            "running_var": xp.ones((C,), dtype=x.dtype, device=device),
        }

    return Node(
        LAYERS["batch_norm"],
        {"weight": (C,), "bias": (C,)},
        {"eps": eps, "training": True},
        init={"weight": _const(1.0), "bias": _const(0.0)},
        fixed=fixed,
        label=f"batch_norm {C}",
        call=f"batch_norm({C}{_eps(eps, 1e-5)})",
    )


def dropout(p: float = 0.5) -> Node:
    """Dropout with drop probability p; the mask comes from the network's ``masks`` on every call."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise ValueError(f"dropout: p must be a number in [0, 1), got {p!r}")
    return Node(
        LAYERS["dropout"], constants={"p": float(p)}, masked="mask", label=f"dropout {p:g}", call=f"dropout({p!r})"
    )


def embedding(V: int, E: int) -> Node:
    """A lookup table of V rows of E features; the input is integer indices ``(N, T)``."""
    V, E = _size(V, "V", "embedding"), _size(E, "E", "embedding")
    return Node(
        LAYERS["embedding"],
        {"weight": (V, E)},
        init={"weight": _normal},
        label=f"embedding {V}x{E}",
        call=f"embedding({V}, {E})",
    )


def conv2d(C: int, F: int, kernel_size: int, *, stride: int = 1, padding: int = 0, bias: bool = True) -> Node:
    """A 2-d convolution, weight ``(F, C, k, k)``; input ``(N, C, H, W)``."""
    C, F, k = _size(C, "C", "conv2d"), _size(F, "F", "conv2d"), _size(kernel_size, "kernel_size", "conv2d")
    bound = 1 / math.sqrt(C * k * k)
    shapes = {"weight": (F, C, k, k), **({"bias": (F,)} if bias else {})}
    init = {"weight": _uniform(bound), **({"bias": _uniform(bound)} if bias else {})}

    def no_bias(x: Array, xp: Any) -> dict[str, Array]:
        return {"bias": xp.zeros((F,), dtype=x.dtype, device=getattr(x, "device", None))}

    return Node(
        LAYERS["conv2d"],
        shapes,
        {"stride": stride, "padding": padding},
        init=init,
        fixed=None if bias else no_bias,
        label=f"conv2d {C}->{F} k{k}",
        call=f"conv2d({C}, {F}, {k}, stride={stride}, padding={padding}{'' if bias else ', bias=False'})",
    )


def max_pool2d(kernel_size: int, *, stride: int | None = None) -> Node:
    """Max pooling over k x k windows (the first maximum, row-major, at a tie)."""
    return Node(
        LAYERS["max_pool2d"],
        constants={"kernel_size": kernel_size, "stride": stride},
        label=f"max_pool2d {kernel_size}",
        call=f"max_pool2d({kernel_size!r}, stride={stride!r})",
    )


def avg_pool2d(kernel_size: int, *, stride: int | None = None) -> Node:
    """Average pooling over k x k windows."""
    return Node(
        LAYERS["avg_pool2d"],
        constants={"kernel_size": kernel_size, "stride": stride},
        label=f"avg_pool2d {kernel_size}",
        call=f"avg_pool2d({kernel_size!r}, stride={stride!r})",
    )


def self_attention(D: int, heads: int, *, causal: bool = True) -> Node:
    """Multi-head self-attention on ``(N, T, D)`` (:mod:`manual.network.attention`)."""
    D, heads = _size(D, "D", "self_attention"), _size(heads, "heads", "self_attention")
    if D % heads:
        raise ValueError(f"self_attention: heads={heads} must divide D={D}")
    if not isinstance(causal, bool):
        raise TypeError(f"self_attention: causal must be True or False, got {causal!r}")
    bound = 1 / math.sqrt(D)
    return Node(
        SELF_ATTENTION,
        {"qkv_weight": (D, 3 * D), "qkv_bias": (3 * D,), "out_weight": (D, D), "out_bias": (D,)},
        {"heads": heads, "causal": causal},
        init=dict.fromkeys(("qkv_weight", "qkv_bias", "out_weight", "out_bias"), _uniform(bound)),
        label=f"self_attention {D}/{heads}h{' causal' if causal else ''}",
        call=f"self_attention({D}, {heads}, causal={causal})",
    )


def _flatten(x: Array) -> Array:
    """out = x reshaped to (N, everything else)."""
    return namespace(x).reshape(x, (x.shape[0], -1))


def _flatten_backward(dout: Array, x: Array) -> dict[str, Array | None]:
    """δ_x = δ_out reshaped back to x's shape (a reshape moves no value)."""
    return {"x": namespace(dout).reshape(dout, x.shape)}


FLATTEN = Layer(
    "flatten", _flatten, _flatten_backward, shapes={"x": "N ...", "out": "N F"}, description="(N, ...) -> (N, F)"
)


def flatten() -> Node:
    """``(N, C, H, W) -> (N, C·H·W)``, for a convolution's output before a linear layer."""
    return Node(FLATTEN, call="'flatten'")


@functools.cache
def _activation_layer(entry: Activation) -> Layer:
    """The activation as a layer: out = A(x); δ_x = δ_out ⊙ A'(x) (elementwise), or the entry's
    vector-Jacobian product for a vector-valued one (softmax: h = O ⊙ δ_out, δ_x = h - O Σ h)."""

    def forward(x: Array) -> Array:
        return entry.forward(x, namespace(x))

    def backward(dout: Array, x: Array) -> dict[str, Array | None]:
        xp = namespace(dout, x)
        O = entry.forward(x, xp)
        if entry.elementwise:
            return {"x": dout * entry.prime(x, O, xp)}
        return {"x": entry.pullback(O, O * dout, xp)}

    return Layer(entry.name, forward, backward, shapes={"x": "N ...", "out": "N ..."}, description=entry.description)


def activation(value: str | Activation) -> Node:
    """An activation of :data:`manual.ACTIVATIONS` (or your own :class:`manual.Activation`) as a layer."""
    entry_ = resolve_activation(value, "activation")
    call = repr(entry_.name) if ACTIVATIONS.get(entry_.name) is entry_ else f"activation({entry_.name!r})"
    return Node(_activation_layer(entry_), label=entry_.name, activation=entry_, call=call)


def entry(value: Any, where: str = "layers") -> Node:
    """A node from what a network's list may hold: a :class:`Node`, an activation's name or entry,
    ``"flatten"``, or a :class:`manual.Layer` without trained parameters (a :class:`Residual` is taken
    as it is by its container)."""
    if isinstance(value, Node):
        return value
    if isinstance(value, Activation) or (isinstance(value, str) and value in ACTIVATIONS):
        return activation(value)
    if value == "flatten":
        return flatten()
    if isinstance(value, Layer):
        if any(p not in value.nondiff for p in value.params):
            raise ValueError(
                f"{where}: the layer {value.name!r} has parameters ({', '.join(value.params)}): wrap it in "
                "manual.network.Node(layer, shapes={...}, init={...}) to give their shapes"
            )
        return Node(value)
    raise TypeError(
        f"{where} must be a manual.network.Node (linear(3, 4), conv2d(...)), a Residual, an activation's name "
        f"({', '.join(ACTIVATIONS)}) or 'flatten', got {value!r}"
    )
