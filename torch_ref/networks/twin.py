"""The torch twin of a :class:`manual.network.Network`: the same architecture built from torch's own
modules (``nn.Linear``, ``nn.LayerNorm``, ``nn.Conv2d``, ``nn.MaxPool2d``, ``nn.Embedding``, ...), in an
``nn.Sequential`` whose ``state_dict`` names are the network's parameter names, and its objective as
a function of the arrays (the reference autograd differentiates, and the rounding model traces).

Weights: manual keeps the slides' ``(in, out)`` layout; ``nn.Linear`` holds ``(out, in)``. The one
transpose happens here (:func:`torch_names`), a view that moves no value. A dropout node's twin
multiplies by the mask it is given, as manual's does (torch's ``F.dropout`` draws its own).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from manual import LOSSES
from manual.network import CROSS_ENTROPY, SELF_ATTENTION, Network, Node, Residual

from ..twins import activation_twin, loss_twin

__all__ = ["TRANSPOSED", "module", "reference", "torch_names"]

# manual's name -> torch module's name, for parameters whose module holds them transposed
TRANSPOSED = {
    "linear": {"weight": "weight"},
    "self_attention": {"qkv_weight": "qkv.weight", "out_weight": "out.weight"},
}
RENAMED = {"self_attention": {"qkv_bias": "qkv.bias", "out_bias": "out.bias"}}


class Block(nn.Sequential):
    """``x + body(x)``: a residual block (its body's names stay ``<index>.<name>``, as manual's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)


class GivenDropout(nn.Module):
    """``x ⊙ m · 1/(1 - p)`` with the mask ``m`` set per call (buffer ``mask``), torch's dropout formula."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.register_buffer("mask", torch.ones(0, dtype=torch.bool), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask: torch.Tensor = self.mask  # type: ignore[assignment]
        return x * mask.to(x.dtype) * (1.0 / (1.0 - self.p))


class SelfAttention(nn.Module):
    """``nn.Linear(D, 3D)``, torch's ``F.scaled_dot_product_attention`` over the heads, ``nn.Linear(D, D)``."""

    def __init__(self, D: int, heads: int, causal: bool) -> None:
        super().__init__()
        self.qkv, self.out = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.heads, self.causal = heads, causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, T, D = x.shape
        q, k, v = (t.reshape(N, T, self.heads, D // self.heads).transpose(1, 2) for t in self.qkv(x).split(D, dim=-1))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.out(a.transpose(1, 2).reshape(N, T, D))


class Flatten(nn.Flatten):
    pass


def _node_module(node: Node) -> nn.Module:
    c, name = node.constants, node.name
    if node.activation is not None:
        return activation_twin(node.activation).module()
    if name == "linear":
        I, O = node.shapes["weight"]
        return nn.Linear(I, O, bias="bias" in node.shapes)
    if name == "layer_norm":
        return nn.LayerNorm(node.shapes["weight"][0], eps=c["eps"])
    if name == "rms_norm":
        return nn.RMSNorm(node.shapes["weight"][0], eps=c["eps"])
    if name == "batch_norm":
        return nn.BatchNorm1d(node.shapes["weight"][0], eps=c["eps"], track_running_stats=False)
    if name == "dropout":
        return GivenDropout(c["p"])
    if name == "embedding":
        V, E = node.shapes["weight"]
        return nn.Embedding(V, E)
    if name == "conv2d":
        F_, C, k, _ = node.shapes["weight"]
        return nn.Conv2d(C, F_, k, stride=c["stride"], padding=c["padding"], bias="bias" in node.shapes)
    if name == "max_pool2d":
        return nn.MaxPool2d(c["kernel_size"], stride=c["stride"])
    if name == "avg_pool2d":
        return nn.AvgPool2d(c["kernel_size"], stride=c["stride"])
    if name == "flatten":
        return nn.Flatten()
    if node.layer is SELF_ATTENTION:
        D = node.shapes["out_weight"][0]
        return SelfAttention(D, c["heads"], c["causal"])
    raise ValueError(
        f"no torch twin for the node {node.label!r} (layer {name!r}): a network is checked against torch's modules, "
        "so its nodes are the built-ins of manual.network (linear, conv2d, layer_norm, ...)"
    )


def _sequential(entries: tuple[Node | Residual, ...], cls: type[nn.Sequential] = nn.Sequential) -> nn.Sequential:
    return cls(*(_sequential(e.body, Block) if isinstance(e, Residual) else _node_module(e) for e in entries))


def module(net: Network, dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """The twin's modules (weights as torch initialises them; the reference loads the network's)."""
    return _sequential(net.layers).to(dtype)


def torch_names(net: Network) -> dict[str, tuple[str, bool]]:
    """manual's parameter name -> (the twin's state_dict name, whether it is held transposed)."""
    out: dict[str, tuple[str, bool]] = {}
    for path, node in net.nodes():
        for k in node.shapes:
            if node.activation is None and k in TRANSPOSED.get(node.name, {}):
                out[f"{path}.{k}"] = (f"{path}.{TRANSPOSED[node.name][k]}", True)
            else:
                out[f"{path}.{k}"] = (f"{path}.{RENAMED.get(node.name, {}).get(k, k)}", False)
    return out


def _head(net: Network) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    head = net.head
    if head.loss == CROSS_ENTROPY:
        return lambda out, Y: F.cross_entropy(out.reshape(-1, out.shape[-1]), Y.reshape(-1), reduction=head.reduction)
    twin = loss_twin(head.loss if not isinstance(head.loss, str) else LOSSES[head.loss])
    last = net.layers[-1]
    act = last.activation if isinstance(last, Node) else None
    from_logits = twin.from_logits.get(act.name) if act is not None else None

    def value(out: torch.Tensor, Y: torch.Tensor, I: torch.Tensor | None = None) -> torch.Tensor:
        per = from_logits(I, Y) if (from_logits is not None and I is not None) else twin.per_example(out, Y)
        total = per.sum()
        return total / Y.shape[0] if head.reduction == "mean" else total

    return value


@functools.lru_cache(maxsize=64)
def _reference_for(key: str, net: Network) -> Callable[..., torch.Tensor]:
    mod = module(net)
    names = torch_names(net)
    masks = [path for path, node in net.nodes() if node.masked]
    head = _head(net)
    last = net.layers[-1]
    logits_head = isinstance(last, Node) and last.activation is not None and net.head.loss != CROSS_ENTROPY
    body = mod[:-1] if logits_head else mod

    def reference(x: torch.Tensor, y: torch.Tensor, **arrays: torch.Tensor) -> torch.Tensor:
        state: dict[str, torch.Tensor] = {}
        for k, (torch_name, transposed) in names.items():
            state[torch_name] = arrays[k].T if transposed else arrays[k]
        for path in masks:
            state[f"{path}.mask"] = arrays[f"{path}.mask"]
        if logits_head:
            I = torch.func.functional_call(body, state, (x,))
            return head(mod[-1](I), y, I)  # type: ignore[call-arg]
        return head(torch.func.functional_call(mod, state, (x,)), y)

    return reference


def reference(net: Network) -> Callable[..., torch.Tensor]:
    """``reference(x, y, **params, **{"<path>.mask": mask})`` -> the objective, torch's modules with the
    network's weights (float64 tensors in, autograd differentiates it). One function per architecture
    (its graph is traced once per architecture and shapes)."""
    return _reference_for(repr(net) + str(net.parameters()), net)


def params_of(net: Network, mod: nn.Module) -> dict[str, torch.Tensor]:
    """manual-layout parameters read back from a twin's module (a torch.optim trajectory)."""
    state = dict(mod.named_parameters())
    return {k: (state[t].T if tr else state[t]) for k, (t, tr) in torch_names(net).items()}


def load(net: Network, mod: nn.Module, params: Mapping[str, Any]) -> None:
    """Copy manual-layout ``params`` into the twin's module (transposing where it holds (out, in))."""
    state = dict(mod.named_parameters())
    with torch.no_grad():
        for k, (t, tr) in torch_names(net).items():
            v = torch.as_tensor(params[k], dtype=state[t].dtype)
            state[t].copy_(v.T if tr else v)
