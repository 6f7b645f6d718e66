r"""One step of a training check compared: the trainer's weights :math:`W_k` against the rule's
:math:`V_k` under the trajectory bound :math:`B_k` (:mod:`torch_ref.training.trajectory`), with two things the
plain comparison (:func:`torch_ref.numerics.compare.compare`) cannot say (issue 21).

*Not judged.* An entry whose bound is not finite (the gradient tolerance there is infinite, or the
rule's arithmetic gives no bound) is compared with nothing: its row says how many entries were not
judged, and the row is never ``ok``. A wrong result is never accepted by an infinite allowance.

*The share of what the step adds.* :math:`B_k` carries the measured distance of the step before,
:math:`C_k` (the same rule run on the measured differences alone: :math:`|W_{k-1} - V_{k-1}|`, the
gradients' measured difference, the state so far, no rounding and no gradient tolerance). A right
trainer's distance is mostly that carried part, so :math:`|W_k - V_k| / B_k` reads close to 1 on
right code. The row's ``diff/tol`` is instead

.. math::
    s_k = \frac{\max(|W_k - V_k| - C_k,\ 0)}{B_k - C_k}

the share of what step k adds to the bound (the gradient tolerance and the rounding of the step)
that the new distance uses. Since :math:`C_k \le B_k` (every error of the bound arithmetic grows with
its inputs' errors and the rounding unit), :math:`s_k \le 1` exactly when :math:`|W_k - V_k| \le B_k`:
the verdict is the bound's, only the number reads as what it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..numerics.compare import Comparison, Row, compare

__all__ = ["SHARE_MEANING", "StepRow", "beyond", "compare_step", "unjudged"]

SHARE_MEANING = (
    "(diff/tol: of what this step adds to the bound, the gradient tolerance and the step's rounding, the share "
    "the new difference uses beyond the one carried from the step before; above 1 exactly where |W - V| exceeds the "
    "bound)"
)


@dataclass(frozen=True)
class StepRow(Row):
    """A :class:`~torch_ref.numerics.compare.Row` whose ``share`` is :math:`s_k`, with the entries that have no
    finite bound (``unjudged``) out of ``size``."""

    size: int = 0

    @property
    def beyond(self) -> bool:
        """Some judged entry exceeds its bound, or a value is not finite or of the wrong shape."""
        return self.share > 1.0 or bool(self.note)

    @property
    def status(self) -> str:
        return "MISMATCH" if self.beyond else "not judged" if self.unjudged else "ok"

    def line(self, width: int = 8) -> str:
        text = super().line(width)
        if self.unjudged and not self.note:
            text += f"  ({self.unjudged} of {self.size} entries not judged: no finite bound)"
        return text


def beyond(comparison: Comparison) -> StepRow | None:
    """The first row where a judged entry exceeds its bound (input side first)."""
    return next((r for r in comparison.rows if isinstance(r, StepRow) and r.beyond), None)


def unjudged(comparison: Comparison) -> list[tuple[str, int]]:
    """``(name, count)`` of every row with entries not judged."""
    return [(r.name, r.unjudged) for r in comparison.rows if isinstance(r, StepRow) and r.unjudged]


def compare_step(
    names: Sequence[str],
    W: Sequence[np.ndarray],
    V: Sequence[np.ndarray],
    allowed: Sequence[np.ndarray],
    carried: Sequence[np.ndarray],
    *,
    title: str,
) -> Comparison:
    """``W[i]`` against ``V[i]`` (float64, same shapes) within ``allowed[i]`` (:math:`B_k`), the share
    read as :math:`s_k` with ``carried[i]`` (:math:`C_k \\le B_k`); a non-finite bound is not judged."""
    bounds = [np.where(np.isfinite(B), B, np.inf) for B in allowed]  # NaN is no bound either
    plain = compare(names, W, V, bounds, title=f"{title}\n{SHARE_MEANING}")
    rows = []
    for row, w, v, B, C in zip(plain.rows, W, V, bounds, carried, strict=True):
        judged = np.isfinite(B)
        missing = int(np.size(B) - np.count_nonzero(judged))
        if row.note:  # a shape or a non-finite value: a mismatch as the plain row says
            rows.append(StepRow(**_fields(row), unjudged=missing, size=int(np.size(B))))
            continue
        d = np.abs(np.asarray(w, dtype=np.float64) - np.asarray(v, dtype=np.float64))
        C = np.minimum(np.asarray(C, dtype=np.float64), B)  # C <= B by construction; kept so where B is inf
        with np.errstate(divide="ignore", invalid="ignore"):
            excess = np.maximum(d - C, 0.0)
            s = np.where(excess == 0, 0.0, excess / (B - C))
        s = np.where(judged, s, 0.0)
        flat = int(np.argmax(s)) if s.size else 0
        worst = tuple(int(i) for i in np.unravel_index(flat, s.shape)) if s.size else ()
        share = float(s.flat[flat]) if s.size else 0.0
        at_worst = (float(np.asarray(w)[worst]), float(np.asarray(v)[worst]), float(B[worst])) if s.size else None
        fields = {**_fields(row), "share": share, "worst": worst, "at_worst": at_worst}
        rows.append(StepRow(**fields, unjudged=missing, size=int(np.size(B))))
    return replace(plain, rows=tuple(rows))


def _fields(row: Row) -> dict:
    return {f: getattr(row, f) for f in Row.__dataclass_fields__ if f != "unjudged"}
