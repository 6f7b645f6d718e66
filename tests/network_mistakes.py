"""Whole-network mistakes written as a user would write them (independently of the oracle's own
catalogue in torch_ref/networks/mistakes.py), each placed at one block or layer: the check must catch
each and its diagnosis must name the mistake and where it sits."""

from __future__ import annotations

import dataclasses
from typing import Any

from manual._xp import namespace
from manual.layers import Layer
from manual.network import Network, Node, Residual
from manual.network.attention import self_attention_backward


class _NoSkip(Residual):
    def join(self, past: Any, through: Any) -> Any:  # the skip's δ forgotten
        return through


def _rebuilt(net: Network, swap: Any) -> Network:
    def walk(entries: tuple[Any, ...], prefix: str) -> list[Any]:
        out = []
        for i, e in enumerate(entries):
            path = f"{prefix}{i}"
            new = swap(path, e)
            if new is e and isinstance(e, Residual):
                new = Residual(walk(e.body, path + "."), e.label)
            out.append(new)
        return out

    return Network(walk(net.layers, ""), net.loss, reduction=net.reduction)


def _node(node: Node, backward: Any) -> Node:
    layer = node.layer
    wrong = Layer(
        layer.name, layer.forward, backward, params=layer.params, constants=layer.constants, nondiff=layer.nondiff
    )
    return dataclasses.replace(node, layer=wrong)


def _blocks(net: Network) -> list[str]:
    return [p for p, _ in net.blocks() if "." not in p]


def residual_not_added(block: int) -> Any:
    """The skip's gradient dropped in the ``block``-th residual (from 1)."""

    def grad_fn(net: Network, params: Any, X: Any, Y: Any, masks: Any = None) -> Any:
        tops = _blocks(net)
        target = tops[min(block, len(tops)) - 1] if tops else None
        wrong = _rebuilt(net, lambda p, e: _NoSkip(e.body, e.label) if p == target else e)
        return wrong.gradients(params, X, Y, masks=masks)

    return grad_fn


def _ln_batch_axis(dout: Any, x: Any, weight: Any, bias: Any, *, eps: float = 1e-5) -> dict[str, Any]:
    """Layer norm's forward, but its backward with the statistics over the examples (axis 0)."""
    xp = namespace(dout, x)
    mu = xp.mean(x, axis=1, keepdims=True)
    var = xp.mean((x - mu) ** 2, axis=1, keepdims=True)
    xhat = (x - mu) / xp.sqrt(var + eps)
    g = dout * weight
    M = x.shape[0]
    dx = (M * g - xp.sum(g, axis=0) - xhat * xp.sum(g * xhat, axis=0)) / (M * xp.sqrt(var + eps))
    return {"x": dx, "weight": xp.sum(dout * xhat, axis=0), "bias": xp.sum(dout, axis=0)}


def norm_wrong_axis(block: int) -> Any:
    """The first layer norm of the ``block``-th residual differentiated over the batch axis."""

    def grad_fn(net: Network, params: Any, X: Any, Y: Any, masks: Any = None) -> Any:
        tops = _blocks(net)
        prefix = tops[min(block, len(tops)) - 1] + "." if tops else "-"
        norms = [p for p, n in net.nodes() if n.name == "layer_norm" and p.startswith(prefix)]
        target = norms[0] if norms else None
        wrong = _rebuilt(net, lambda p, e: _node(e, _ln_batch_axis) if p == target else e)
        return wrong.gradients(params, X, Y, masks=masks)

    return grad_fn


def _no_mask(dout: Any, x: Any, **arrays: Any) -> dict[str, Any]:
    return self_attention_backward(dout, x, **{**arrays, "causal": False})


def attention_mask_left_out(block: int) -> Any:
    """The causal mask left out of the backward of the ``block``-th residual's attention."""

    def grad_fn(net: Network, params: Any, X: Any, Y: Any, masks: Any = None) -> Any:
        tops = _blocks(net)
        prefix = tops[min(block, len(tops)) - 1] + "." if tops else "-"
        att = [p for p, n in net.nodes() if n.name == "self_attention" and p.startswith(prefix)]
        target = att[0] if att else None
        wrong = _rebuilt(net, lambda p, e: _node(e, _no_mask) if p == target else e)
        return wrong.gradients(params, X, Y, masks=masks)

    return grad_fn


def _to_corner(
    dout: Any, x: Any, *, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1
) -> dict[str, Any]:
    """Max pooling's δ sent to each window's top-left entry (NumPy or torch)."""
    xp = namespace(dout, x)
    s = stride or kernel_size
    dx = xp.zeros(x.shape, dtype=x.dtype)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dx[:, :, i * s, j * s] += dout[:, :, i, j]
    return {"x": dx}


def pooling_misrouted(grad_fn_base: Any = None) -> Any:
    """Every max pooling's gradient to the window's first entry."""

    def grad_fn(net: Network, params: Any, X: Any, Y: Any, masks: Any = None) -> Any:
        wrong = _rebuilt(
            net, lambda p, e: _node(e, _to_corner) if isinstance(e, Node) and e.name == "max_pool2d" else e
        )
        return wrong.gradients(params, X, Y, masks=masks)

    return grad_fn


class DropoutMaskReused:
    """A trainer that keeps the first step's dropout masks (``make_trainer(net, params, lr=lr)``)."""

    def __init__(self, net: Network, params: Any, lr: float) -> None:
        from manual.network import NetworkTrainer

        self.inner = NetworkTrainer(net, params, lr=lr)
        self.first: Any = None

    @property
    def params(self) -> Any:
        return self.inner.params

    def step(self, X: Any, Y: Any, masks: Any = None) -> Any:
        if self.first is None:
            self.first = masks
        return self.inner.step(X, Y, masks=self.first)
