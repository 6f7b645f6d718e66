"""The network of a failing case, as the page draws it (:mod:`torch_ref.pages.diagram`): a list of
nodes from the input to the loss, each with its label and detail, its residual block (``group``), and
two marks:

- ``marked``: the node where the two sides part: a fully connected network's layer of the report's
  "Parts from ... layer l" line, a network's node of its "They part at ..." line, a layer check's layer;
- ``diagnosed``: a node or block that a verified diagnosis line names (a fully connected layer by its
  ``W``/``b`` arrays, a network's ``layers[i][j]`` node or ``the residual at layers[i]`` block).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["diagram_of"]


def diagram_of(kind: str, v: Any, parting: dict[str, Any], diagnosis: Sequence[str]) -> dict[str, Any] | None:
    """The diagram's data for outcome ``v``: ``{"input", "nodes", "groups", "loss"}``; ``parting`` says
    where the two part (``{"layer": l}`` or ``{"path": p}``), ``diagnosis`` the verified diagnosis lines.
    None where the case has no network (a function's)."""
    case = getattr(v, "case", None)
    spec = getattr(case, "spec", None)
    if spec is not None and hasattr(spec, "sizes"):
        return _fully_connected(spec, parting.get("layer"), case, diagnosis)
    net = getattr(case, "net", None)
    if net is not None:
        return _network(net, parting.get("path"), case, diagnosis)
    inner = getattr(case, "case", None)
    if kind == "layer" and inner is not None and hasattr(inner, "arrays"):
        return _layer(v, inner)
    return None


def _named_layers(diagnosis: Sequence[str]) -> set[int]:
    """The fully connected layers whose arrays (``W2``, ``b1``, ``delta3``) a diagnosis line names."""
    return {int(m) for line in diagnosis for m in re.findall(r"\b(?:W|b|delta)(\d+)\b", line)}


def _fully_connected(spec: Any, layer: int | None, case: Any, diagnosis: Sequence[str]) -> dict[str, Any]:
    named = _named_layers(diagnosis)
    nodes = [
        {
            "label": f"layer {l}: W{l} {spec.sizes[l - 1]}→{spec.sizes[l]}" + (f", b{l}" if spec.bias else ""),
            "detail": spec.activations[l - 1].name,
            "group": None,
            "marked": layer == l,
            "diagnosed": l in named,
        }
        for l in range(1, spec.depth + 1)
    ]
    N = int(case.X.shape[0])
    return {
        "input": f"input X: N={N} × {spec.sizes[0]}",
        "nodes": nodes,
        "groups": [],
        "loss": f"loss: {spec.loss.name} ({spec.reduction} over N)",
    }


def _network(net: Any, path: str | None, case: Any, diagnosis: Sequence[str]) -> dict[str, Any]:
    blocks = [p for p, _ in net.blocks()]
    text = " ".join(diagnosis)
    # a node named as "layers[1][0] layer_norm" (after "> " in a place), a block as "the residual at layers[1]"
    named_nodes = {".".join(re.findall(r"\[(\d+)\]", m)) for m in re.findall(r"> (layers(?:\[\d+\])+)", text)}
    named_nodes |= {
        ".".join(re.findall(r"\[(\d+)\]", m)) for m in re.findall(r"(?:^|[,;:] |in )(layers(?:\[\d+\])+) ", text)
    }
    named_blocks = set(re.findall(r"the residual at layers\[(\d+)\]", text))
    nodes = []
    for p, node in net.nodes():
        group = next((b for b in blocks if p.startswith(b + ".")), None)
        nodes.append(
            {
                "label": f"layers[{']['.join(p.split('.'))}] {node.label}",
                "detail": ", ".join(f"{k} {tuple(s)}" for k, s in node.shapes.items()),
                "group": None if group is None else f"residual at layers[{group}]",
                "marked": p == path,
                "diagnosed": p in named_nodes,
            }
        )
    # a block is diagnosed where the diagnosis names it and none of its own nodes
    groups = [
        {
            "name": f"residual at layers[{b}]",
            "diagnosed": b in named_blocks and not any(q.startswith(b + ".") for q in named_nodes),
        }
        for b in blocks
    ]
    loss = net.loss if isinstance(net.loss, str) else net.loss.name
    return {
        "input": f"input X: {tuple(case.shape)}",
        "nodes": nodes,
        "groups": groups,
        "loss": f"loss: {loss} ({net.reduction})",
    }


def _layer(v: Any, inner: Any) -> dict[str, Any]:
    arrays = ", ".join(f"{k} {tuple(a.shape)}" for k, a in inner.arrays.items())
    failing = [r.name for r in v.comparison.rows if not r.ok] if v.comparison is not None else []
    return {
        "kind": "layer",
        "input": f"arguments: {arrays}",
        "nodes": [
            {
                "label": "the layer: your backward",
                "detail": "parts at " + ", ".join(failing) if failing else "",
                "group": None,
                "marked": bool(failing),
                "diagnosed": False,
            }
        ],
        "groups": [],
        "loss": "δ_out given (the gradients of Σ δ_out ∘ out)",
    }
