"""Where a network's gradients part from autograd's, and which whole-network mistake explains them.

- Where: the parameters in backward order (from the loss down); the first that disagrees names the
  block and layer where the two part, every parameter above it agreeing (a mistake in one layer's
  backward shows in the gradients below it, and sometimes in that layer's own).
- Which: each mistake of :func:`~torch_ref.networks.mistakes.catalogue` run on the failing case in
  float64 (manual's δ recursion with one entry wrong); it is named only when it reproduces the user's
  gradients within the case's bound on every array and differs from the right ones there. None that
  does: "no known whole-network mistake reproduces these gradients".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..numerics.compare import compare
from .judge import NetworkOutcome
from .mistakes import catalogue

__all__ = ["explain", "parting"]


def parting(v: Any) -> list[str]:
    """The block and layer where the gradients part (backward order), from the comparison, and the span
    of the network the parting can lie in: the δ from the nearest agreeing node above down to the
    parting node (through the nodes without parameters between them), or the parting node's own
    parameter gradients."""
    if v.comparison is None or v.comparison.ok:
        return []
    net = v.case.net
    rows = {row.name: row for row in v.comparison.rows}
    order = list(reversed(list(net.parameters())))
    first = next(k for k in order if not rows[k].ok)
    above = order[: order.index(first)]
    wrong = [k for k in order if not rows[k].ok]
    count = f"{len(wrong)} of {len(order)} parameters {'disagrees' if len(wrong) == 1 else 'disagree'}"
    lines = [
        f"They part at {net.where(first)}: from the loss down, {first!r} is the first gradient beyond its bound"
        + (f" (the {len(above)} above it agree)" if above else " (the layer nearest the loss)")
        + f"; {count}."
    ]
    lines += _span(net, first, above[-1] if above else None)
    return lines


def _span(net: Any, first: str, agreeing: str | None) -> list[str]:
    """Where the parting can lie, in words that hold whatever the mistake: the parameter-free nodes
    between the parting node and the nearest agreeing one have nothing of their own to compare."""
    paths = [p for p, _ in net.nodes()]
    nodes = dict(net.nodes())
    low = paths.index(first.rsplit(".", 1)[0])
    high = paths.index(agreeing.rsplit(".", 1)[0]) if agreeing is not None else len(paths)
    between = [f"layers[{']['.join(p.split('.'))}] {nodes[p].label}" for p in paths[low + 1 : high]]
    blocks = [p for p, _ in net.blocks()]
    # the δ leaves a block (its join adds the skip's δ) between the agreeing node and the parting one
    joins = [
        p
        for p in blocks
        if any(q.startswith(p + ".") for q in paths[low + 1 : high + 1]) and not paths[low].startswith(p + ".")
    ]
    top = (
        f"{net.where(agreeing.rsplit('.', 1)[0])}'s δ to the layer below"
        if agreeing is not None
        else "the loss head's δ"
    )
    parts = [f"in {top}"]
    if between:
        parts.append(f"in the layers without parameters between, {', '.join(between)}")
    if joins:
        parts.append(f"in a residual join ({', '.join(f'layers[{p}]' for p in joins)})")
    parts.append(f"or in {net.where(first)}'s own parameter gradients")
    lead = "Every gradient above agrees, so" if agreeing is not None else "No parameter lies above it, so"
    return [f"{lead} the mistake lies " + "; ".join(parts) + "."]


def explain(v: NetworkOutcome) -> list[str]:
    """The diagnosis lines: the catalogue's mistakes that reproduce the user's gradients."""
    if v.kind != "mismatch" or v.traced is None:
        return []
    case = v.case
    names = list(case.net.parameters())
    params = case.params_as(np.float64)
    X = case.X if case.X.dtype.kind == "i" else case.X.astype(np.float64)
    Y = case.Y if case.Y.dtype.kind == "i" else case.Y.astype(np.float64)
    right = [v.traced.grads[k].numpy() for k in names]
    allowed = [v.traced.bound(k, np.dtype(v.dtype)).numpy() for k in names]
    named: list[str] = []
    seen: list[list[np.ndarray]] = []
    for mistake in catalogue(case.net):
        try:
            got = mistake.net.gradients(params, X, Y, masks=dict(case.masks) or None)
        except Exception:  # a mistake that cannot run on these shapes (W not transposed, W not square)
            continue
        wrong = [np.asarray(got[k], dtype=np.float64) for k in names]
        if not all(np.isfinite(w).all() for w in wrong):
            continue
        if compare(names, wrong, right, allowed).ok:
            continue  # equals the right gradients here: it explains nothing
        if not compare(names, [v.values[k] for k in names], wrong, allowed).ok:
            continue
        if any(all(np.array_equal(a, b) for a, b in zip(wrong, other)) for other in seen):
            continue  # the same gradients as a mistake named already
        seen.append(wrong)
        named.append(
            f"Diagnosis: {mistake.name}. Verified: that mistake, run in float64 on this case, reproduces every "
            f"gradient within its bound ({mistake.formula})"
            + (f"; published: {mistake.source}" if mistake.source else "")
        )
        if len(named) >= 3:
            break
    if not named:
        named.append(
            "Diagnosis: no known whole-network mistake reproduces these gradients (residual, normalization axis, "
            "attention mask, pooling route, and each built-in layer's published mistakes, at every place)."
        )
    return named
