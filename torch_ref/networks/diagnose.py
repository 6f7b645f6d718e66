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

import numpy as np

from ..numerics.compare import compare
from .judge import NetworkOutcome
from .mistakes import catalogue

__all__ = ["explain", "parting"]


def parting(v: NetworkOutcome) -> list[str]:
    """The block and layer where the gradients part (backward order), from the comparison."""
    if v.comparison is None or v.comparison.ok:
        return []
    net = v.case.net
    rows = {row.name: row for row in v.comparison.rows}
    order = list(reversed(list(net.parameters())))
    first = next(k for k in order if not rows[k].ok)
    above = order[: order.index(first)]
    wrong = [k for k in order if not rows[k].ok]
    lines = [
        f"They part at {net.where(first)}: from the loss down, {first!r} is the first gradient beyond its bound"
        + (f" (the {len(above)} above it agree)" if above else " (the layer nearest the loss)")
        + f"; {len(wrong)} of {len(order)} parameters disagree."
    ]
    return lines


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
