"""A user's own entry checked on its own: its ``derivative`` against autograd of its ``forward``, its
``gradient`` against autograd of its ``value``, at the points of the case in front of us.

Only entries that are not built-ins are checked here (a built-in's formulas are checked against
torch's function by the project's tests). A finding is a verified fact about the entry at these
points, so the report can say which layer's activation (or the loss) is wrong before anything else.

The allowance, in float64 at the reference's own I (or y*), follows the tolerance model's evaluation
model (:mod:`torch_ref.numerics.tolerance`): a correct derivative is accurate to :math:`c\\,\\varepsilon` times
the model's magnitude of A''s error (``_derivative_error``), a correct gradient to :math:`c\\,\\varepsilon G`
(:class:`torch_ref.twin.loss_terms.AutogradTerms`), with c = 64 for the few operations of one formula.
"""

from __future__ import annotations

import numpy as np

import manual

from ..numerics.tolerance import _derivative_error
from ..twin.reference import Reference
from ..twins import loss_twin

__all__ = ["entry_findings"]

_C = 64 * float(np.finfo(np.float64).eps)


def _where(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def entry_findings(ref: Reference) -> list[str]:
    """Sentences, one per user entry whose formula disagrees with autograd of its own function here."""
    spec = ref.spec
    out = []
    for l, entry in enumerate(spec.activations):
        if manual.ACTIVATIONS.get(entry.name) is entry or not entry.elementwise:
            continue
        I, O = ref.I[l], ref.O[l]
        with np.errstate(all="ignore"):
            d = np.asarray(entry.prime(I.copy(), O.copy(), np), dtype=np.float64)
        a = ref.first(l)
        room = _C * _derivative_error(entry, ref, l, np.zeros_like(I), 0.0)
        if d.shape != a.shape:
            out.append(
                f"layer {l + 1}'s activation {entry.name!r} (your entry) has a derivative of shape {d.shape} "
                f"where I has shape {a.shape}: derivative(I, O, xp) must be elementwise"
            )
            continue
        bad = ~(np.abs(d - a) <= room)
        if bad.any():
            k = _where(bad)
            out.append(
                f"layer {l + 1}'s activation {entry.name!r} (your entry) has a derivative that disagrees with "
                f"autograd of its own forward at {int(bad.sum())} of {bad.size} inputs, e.g. I = {I[k]:.10g}: "
                f"derivative(I, O) = {d[k]:.10g}, autograd A'(I) = {a[k]:.10g}"
            )
    loss = spec.loss
    if manual.LOSSES.get(loss.name) is not loss:
        O, Y = ref.O[-1], ref.Y
        g_ref, G, _ = loss_twin(loss).terms.gradient(O, Y, np.zeros_like(O))
        with np.errstate(all="ignore"):
            g = np.asarray(loss.gradient(O.copy(), Y.copy(), np), dtype=np.float64)
        if g.shape != g_ref.shape:
            out.append(
                f"the loss {loss.name!r} (your entry) has a gradient of shape {g.shape} where y* has shape "
                f"{g_ref.shape}: gradient(O, Y, xp) is dL/dy*, one entry per output"
            )
            return out
        bad = ~(np.abs(g - g_ref) <= _C * G)
        if bad.any():
            k = _where(bad)
            out.append(
                f"the loss {loss.name!r} (your entry) has a gradient that disagrees with autograd of its own "
                f"value at {int(bad.sum())} of {bad.size} outputs, e.g. y* = {O[k]:.10g}, y = {Y[k]:.10g}: "
                f"gradient(O, Y) = {g[k]:.10g}, autograd dL/dy* = {g_ref[k]:.10g}"
            )
    return out
