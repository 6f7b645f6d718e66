"""Whole-network mistakes, each placed at one block or layer of a network: a wrong network whose
manual backward is the mistaken one (same forward, same parameters), for the diagnosis and the
adversarial tests.

- the residual gradient not added in block k: δ_in = δ through the body only (the skip's δ_out lost);
- normalization statistics over the wrong axis in one layer: a layer norm differentiated as a batch
  norm (statistics over the examples) or a batch norm as a layer norm (over the features);
- the attention's causal mask left out of one layer's backward (the forward keeps it);
- a pooling layer's gradient misrouted: max pooling's δ sent to each window's first entry instead of
  its maximum; average pooling's δ not divided by the window's size;
- any published mistake of a built-in layer (:mod:`torch_ref.layers.builtins`' catalogues), at one node.

(Dropout's mask reused across steps is a training mistake: :mod:`torch_ref.networks.training`.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from manual._xp import namespace
from manual.layers import LAYERS, Layer
from manual.layers.norms import batch_norm_backward, layer_norm_backward
from manual.layers.pooling import avg_pool2d_backward
from manual.network import SELF_ATTENTION, Network, Node, Residual
from manual.network.attention import self_attention_backward

from ..layers.table import infos

__all__ = ["Placed", "catalogue", "place"]


@dataclass(frozen=True)
class Placed:
    """A mistake at one place: its name (what a report says), the path it sits at, the wrong network."""

    name: str
    path: str
    net: Network
    formula: str = ""
    source: str = ""


class DroppedSkip(Residual):
    """A residual block whose backward forgets the skip: δ_in = δ_in^F."""

    def join(self, past: Any, through: Any) -> Any:
        return through


def place(net: Network, path: str, new: Any) -> Network:
    """``net`` with the entry at ``path`` replaced by ``new``."""

    def swap(entries: tuple[Any, ...], parts: list[str]) -> list[Any]:
        out = list(entries)
        i = int(parts[0])
        if len(parts) == 1:
            out[i] = new
        else:
            out[i] = Residual(swap(out[i].body, parts[1:]), out[i].label)
        return out

    return Network(swap(net.layers, path.split(".")), net.head.loss, reduction=net.reduction)


def _wrong(node: Node, backward: Callable[..., dict[str, Any]], tag: str) -> Node:
    layer = node.layer
    wrong = Layer(
        layer.name,
        layer.forward,
        backward,
        params=layer.params,
        shapes=layer.shapes,
        constants=layer.constants,
        nondiff=layer.nondiff,
        description=tag,
    )
    return replace(node, layer=wrong)


def _ln_as_bn(dout: Any, x: Any, weight: Any, bias: Any, *, eps: float = 1e-5) -> dict[str, Any]:
    xp = namespace(x)
    C = x.shape[1]
    zeros = xp.zeros((C,), dtype=x.dtype)
    return batch_norm_backward(dout, x, weight, bias, zeros, zeros + 1, training=True, eps=eps)


def _ln_means_axis0(dout: Any, x: Any, weight: Any, bias: Any, *, eps: float = 1e-5) -> dict[str, Any]:
    xp = namespace(x)
    mu = xp.mean(x, axis=1, keepdims=True)
    sigma = xp.sqrt(xp.mean((x - mu) * (x - mu), axis=1, keepdims=True) + eps)
    x_hat = (x - mu) / sigma
    g = dout * weight
    dx = (g - xp.mean(g, axis=0, keepdims=True) - x_hat * xp.mean(g * x_hat, axis=0, keepdims=True)) / sigma
    return {"x": dx, "weight": xp.sum(dout * x_hat, axis=0), "bias": xp.sum(dout, axis=0)}


def _bn_as_ln(
    dout: Any,
    x: Any,
    weight: Any,
    bias: Any,
    running_mean: Any,
    running_var: Any,
    *,
    training: bool = True,
    eps: float = 1e-5,
) -> dict[str, Any]:
    got = layer_norm_backward(dout, x, weight, bias, eps=eps)
    return {**got, "running_mean": None, "running_var": None}


def _unmasked(dout: Any, x: Any, **arrays: Any) -> dict[str, Any]:
    return self_attention_backward(dout, x, **{**arrays, "causal": False})


def _first_of_window(dout: Any, x: Any, *, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1):
    """δ of each window to its first (top-left) entry, whatever the maximum."""
    xp = namespace(dout, x)
    k = kernel_size
    s = stride or k
    dx = xp.zeros(x.shape, dtype=x.dtype)
    Ho, Wo = dout.shape[2], dout.shape[3]
    for i in range(Ho):
        for j in range(Wo):
            dx[:, :, i * s, j * s] = dx[:, :, i * s, j * s] + dout[:, :, i, j]
    return {"x": dx}


def _avg_undivided(
    dout: Any, x: Any, *, kernel_size: Any, stride: Any = None, padding: Any = 0, count_include_pad: bool = True
):
    k = kernel_size
    got = avg_pool2d_backward(
        dout, x, kernel_size=k, stride=stride, padding=padding, count_include_pad=count_include_pad
    )
    return {"x": got["x"] * (k * k)}


_AXIS = "normalization statistics over the wrong axis"
_STRUCTURAL: dict[str, list[tuple[Callable[..., Any], str, str]]] = {
    "layer_norm": [
        (_ln_as_bn, f"{_AXIS}: the layer norm's backward takes them over the examples (a batch norm's)", "δx = γ/σ_B (δ - mean_N(δ) - x̂_B mean_N(δ x̂_B)), x̂_B and means over axis 0"),
        (_ln_means_axis0, f"{_AXIS}: the layer norm's backward takes its means over the examples (axis 0), with the forward's x̂ and σ", "δx = (g - mean_N(g) - x̂ mean_N(g x̂))/σ, g = γ δ, means over axis 0"),
    ],
    "batch_norm": [
        (_bn_as_ln, f"{_AXIS}: the batch norm's backward takes them over the features (a layer norm's)", "δx = γ/σ (δ - mean_D(δ) - x̂ mean_D(δ x̂)), means over axis 1"),
    ],
    "max_pool2d": [
        (_first_of_window, "the pooling gradient misrouted: max pooling's δ sent to each window's first entry, not its maximum", "δx[window's top-left] += δ_out"),
    ],
    "avg_pool2d": [
        (_avg_undivided, "the pooling gradient misrouted: average pooling's δ not divided by the window's size", "δx[window] += δ_out (not δ_out / k²)"),
    ],
}  # fmt: skip


def catalogue(net: Network) -> Iterator[Placed]:
    """Every whole-network mistake that has a place in ``net``, each placed once per place."""
    for path, block in net.blocks():
        where = net.where(path + ".0").split(" > ")[0]
        yield Placed(
            f"the residual gradient not added in {where}: δ_in = δ through the body only, the skip's δ_out lost",
            path,
            place(net, path, DroppedSkip(block.body, block.label)),
            "δ_in = δ_in^F (should be δ_out + δ_in^F)",
        )
    for path, node in net.nodes():
        for fn, name, formula in _STRUCTURAL.get(node.name, []):
            yield Placed(f"{name}, in {net.where(path)}", path, place(net, path, _wrong(node, fn, name)), formula)
        if node.layer is SELF_ATTENTION and node.constants.get("causal"):
            name = "the causal mask left out of the attention's backward (the forward keeps it)"
            yield Placed(
                f"{name}, in {net.where(path)}",
                path,
                place(net, path, _wrong(node, _unmasked, name)),
                "δS = P ∘ (δP - D) over every key, also j > i",
            )
        if LAYERS.get(node.name) is node.layer and node.name in infos():
            for m in infos()[node.name].mistakes:
                yield Placed(
                    f"{node.name}: {m.name}, in {net.where(path)}",
                    path,
                    place(net, path, _wrong(node, m.backward, m.name)),
                    m.formula,
                    m.source,
                )
