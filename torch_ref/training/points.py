"""One training step as the report's trajectory shows it: how far the trainer's weights are from the
rule's (torch.optim's) and the trajectory bound at the same entry.

At step k, over every entry of every parameter with a finite bound: the largest ``|W_k - V_k|``
(``distance``), and at the entry where ``|W_k - V_k| / B_k`` is largest, the distance there
(``distance_at``), the bound there (``bound_at``) and their ratio (``share_of_bound``), which exceeds 1
exactly where the step is beyond its bound. The bound carries the measured distance of the step
before (:mod:`torch_ref.training.step_compare`), so past the first step beyond it, the ratio no longer
says whether that step itself is right: the distance and the bound are shown side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["step_point"]


def step_point(step: int, W: Sequence[Any], V: Sequence[Any], B: Sequence[Any]) -> dict[str, Any]:
    """Step ``step``'s point from the trainer's arrays ``W``, the rule's ``V`` and the bound ``B``
    (float64, the same order and shapes)."""
    distance, best = 0.0, (-1.0, 0.0, 0.0)
    for w, v, b in zip(W, V, B, strict=True):
        d = np.abs(np.asarray(w, dtype=np.float64) - np.asarray(v, dtype=np.float64))
        if not d.size:
            continue
        bound = np.broadcast_to(np.asarray(b, dtype=np.float64), d.shape)
        distance = max(distance, float(np.max(d)))
        judged = np.isfinite(bound)
        if not judged.any():
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(judged, np.where(d == 0, 0.0, d / np.where(judged, bound, 1.0)), -1.0)
        i = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        if ratio[i] > best[0]:
            best = (float(ratio[i]), float(d[i]), float(bound[i]))
    share, at, at_bound = best
    return {
        "step": step,
        "distance": distance,
        "distance_at": at,
        "bound_at": at_bound,
        "share_of_bound": max(share, 0.0),
    }
