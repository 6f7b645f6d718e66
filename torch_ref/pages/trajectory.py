"""A training check's trajectory chart: at every compared step (:func:`torch_ref.training.points.step_point`),
the distance ``|W_k - V_k|`` between the trainer's weights and the rule's at the entry nearest its
bound, and the trajectory bound ``B_k`` there, on one log axis. A right trainer's distance stays below
the bound at every step; the step where a wrong one parts is the first above it. Past that step the
bound carries the measured distance, so it rises with it: the chart shows both, never a ratio alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .svg import esc, fmt

__all__ = ["chart"]


def chart(path: Sequence[dict[str, Any]], parted: int | None, uid: str = "traj") -> str:
    """An inline SVG of each step's distance ``|W - V|`` and the trajectory bound at the same entry (the
    entry whose ratio is largest), on one log axis: solid circles the distance, hollow squares on a
    dashed line the bound; ``parted`` the step where the check parts (marked), or None; ``uid`` unique
    on the page."""
    if not path:
        return ""
    w, h, left, right, top, bottom = 460, 250, 56, 90, 16, 40
    dist = [_positive(p["distance_at"]) for p in path]
    bound = [_positive(p["bound_at"]) for p in path]
    values = [v for v in dist + bound if v is not None]
    lo = math.floor(math.log10(min(values))) if values else -1
    hi = math.ceil(math.log10(max(values))) if values else 1
    hi = max(hi, lo + 1)
    n = len(path)

    def x(i: int) -> float:
        return left + (w - left - right) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return top + (h - top - bottom) * (hi - math.log10(v)) / (hi - lo)

    parts = [
        f'<svg class="chart" viewBox="0 0 {w} {h}" width="100%" role="img" aria-labelledby="{uid}-t {uid}-d">',
        f'<title id="{uid}-t">The distance to the reference\'s weights and the bound, step by step</title>',
        f'<desc id="{uid}-d">'
        + esc(
            "; ".join(
                f"step {p['step']}: |W - V| {fmt(p['distance_at'])}, bound {fmt(p['bound_at'])}"
                + (" (beyond)" if _beyond(p) else "")
                + (" (parts here)" if p["step"] == parted else "")
                for p in path
            )
        )
        + "</desc>",
    ]
    every = max(1, math.ceil((hi - lo) / 6))  # at most about seven labelled decades
    for k in range(lo, hi + 1):
        parts.append(f'<line class="grid" x1="{left}" x2="{w - right}" y1="{y(10.0**k):.1f}" y2="{y(10.0**k):.1f}"/>')
        # the two ends, and every few decades between them, never two labels a decade apart
        if k in (lo, hi) or (k % every == 0 and min(k - lo, hi - k) > every // 2):
            label = "1" if k == 0 else f"1e{k}"
            parts.append(f'<text class="tick" x="{left - 6}" y="{y(10.0**k) + 4:.1f}" text-anchor="end">{label}</text>')
    for series, cls in ((bound, "series bound-series"), (dist, "series")):
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(series) if v is not None)
        parts.append(f'<polyline class="{cls}" points="{pts}"/>')
    for i, p in enumerate(path):
        b, d = bound[i], dist[i]
        if b is not None:
            parts.append(f'<rect class="dot-bound" x="{x(i) - 4:.1f}" y="{y(b) - 4:.1f}" width="8" height="8"/>')
        if d is not None:
            cls = "dot beyond" if _beyond(p) else "dot"
            parts.append(f'<circle class="{cls}" cx="{x(i):.1f}" cy="{y(d):.1f}" r="4.5"/>')
        parts.append(f'<text class="tick" x="{x(i):.1f}" y="{h - bottom + 16}" text-anchor="middle">{p["step"]}</text>')
        if p["step"] == parted and d is not None:  # below the point where it sits near the top
            ty = y(d) + 20 if y(d) < top + 24 else y(d) - 10
            parts.append(f'<text class="mark" x="{x(i) + 8:.1f}" y="{ty:.1f}">parts here</text>')
    lx = w - right + 10
    parts.append(f'<circle class="dot" cx="{lx + 4}" cy="{top + 8}" r="4.5"/>')
    parts.append(f'<text class="tick" x="{lx + 14}" y="{top + 12}">|W − V|,</text>')
    parts.append(f'<text class="tick" x="{lx + 14}" y="{top + 26}">within</text>')
    parts.append(f'<circle class="dot beyond" cx="{lx + 4}" cy="{top + 42}" r="4.5"/>')
    parts.append(f'<text class="tick" x="{lx + 14}" y="{top + 46}">|W − V|,</text>')
    parts.append(f'<text class="tick" x="{lx + 14}" y="{top + 60}">beyond</text>')
    parts.append(f'<rect class="dot-bound" x="{lx}" y="{top + 72}" width="8" height="8"/>')
    parts.append(f'<text class="tick" x="{lx + 14}" y="{top + 80}">the bound</text>')
    parts.append(f'<text class="axis" x="{(left + w - right) / 2:.1f}" y="{h - 4}" text-anchor="middle">step</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _positive(v: Any) -> float | None:
    """A value the log axis can place (finite and > 0), else None (not drawn; the table has it)."""
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) and v > 0 else None


def _beyond(p: dict[str, Any]) -> bool:
    s = p["share_of_bound"]
    return not isinstance(s, (int, float)) or s > 1.0
