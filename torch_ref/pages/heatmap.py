"""One array's heat map of ``|difference| / tolerance`` as inline SVG, and the scale beside it.

Each cell is one entry (or, for a reduced grid, the largest of its block); its fill follows
:func:`torch_ref.pages.svg.colour`, and a cell beyond its bound also carries a hatch, so within and
beyond differ by more than colour. The worst entry is outlined. Every cell has a tooltip (its index
and share); the figure's title and description say, in words, how many entries lie beyond the bound
and where the worst one is: the text alternative for a reader who cannot see it.
"""

from __future__ import annotations

from typing import Any

from .svg import HIGH, LOW, NONFINITE, colour, esc, fmt, share_value

__all__ = ["heatmap", "scale"]


def _hatch(uid: str) -> str:
    return (
        f'<defs><pattern id="{uid}-h" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<line x1="0" y1="0" x2="0" y2="6" class="hatch-on-cell"/></pattern></defs>'
    )


def _index(g: dict[str, Any], r: int, c: int) -> str:
    """The entry (or block) a cell stands for, in the array's own indices where the layout keeps them."""
    fr, fc = g["block"]
    shape = g["shape"]
    if (fr, fc) != (1, 1):
        return f"rows {r * fr}–{r * fr + fr - 1}, columns {c * fc}–{c * fc + fc - 1} (largest of the block)"
    if len(shape) == 0:
        return "()"
    if len(shape) == 1:
        return f"({c},)"
    if len(shape) == 2:
        return f"({r}, {c})"
    rest, flat, idx = shape[1:], c, []
    for n in reversed(rest):
        idx.append(flat % n)
        flat //= n
    return "(" + ", ".join(str(i) for i in (r, *reversed(idx))) + ")"


def heatmap(a: dict[str, Any], uid: str, high: float = HIGH) -> str:
    """The SVG of array record ``a`` (its ``grid`` and ``worst``), ``uid`` unique on the page, ``10**high``
    the page's darkest share (:func:`torch_ref.pages.svg.high_of`)."""
    g = a["grid"]
    rows, cols = g["rows"], g["cols"]
    cell = max(6, min(40, 420 // max(cols, 1)))
    pad = 2
    w, h = cols * cell + 2 * pad, rows * cell + 2 * pad
    worst = a.get("worst") or []
    wr, wc = g.get("worst_cell", [-1, -1])
    desc = (
        f"{a['name']}, shape {tuple(g['shape'])}: {g['beyond']} of {g['entries']} entries beyond the bound"
        + (f", {g['no_bound']} with no finite bound" if g["no_bound"] else "")
        + (f", {g['nonfinite']} NaN or infinite" if g.get("nonfinite") else "")
        + (f"; the worst at {tuple(worst)}, {fmt(share_value(a['share']))} times its bound" if worst else "")
        + "."
    )
    parts = [
        f'<svg class="heatmap" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-labelledby="{uid}-t {uid}-d" data-array="{esc(a["name"])}">',
        f'<title id="{uid}-t">|difference| / tolerance of {esc(a["name"])}</title>',
        f'<desc id="{uid}-d">{esc(desc)}</desc>',
        _hatch(uid),
    ]
    for k, v in enumerate(g["cells"]):
        r, c = divmod(k, cols)
        s = share_value(v)
        x, y = pad + c * cell, pad + r * cell
        state = "nonfinite" if v == "nonfinite" else "nobound" if s != s else "beyond" if s > 1.0 else "within"
        value = "a NaN or infinite value" if state == "nonfinite" else fmt(s)
        tip = f"{a['name']}{_index(g, r, c)}: |diff|/tol = {value}"
        if "derivation" in g:
            tip += (
                f"; yours {fmt(share_value(g['derivation'][k]), 7)}, reference {fmt(share_value(g['reference'][k]), 7)}"
            )
        parts.append(
            f'<rect class="cell {state}" x="{x}" y="{y}" width="{cell}" height="{cell}" '
            f'fill="{NONFINITE if state == "nonfinite" else colour(s, high)}" '
            f'data-share="{esc(v)}"><title>{esc(tip)}</title></rect>'
        )
        if state in ("beyond", "nonfinite"):
            parts.append(f'<rect class="hatched" x="{x}" y="{y}" width="{cell}" height="{cell}" fill="url(#{uid}-h)"/>')
        if state == "nobound":
            parts.append(f'<path class="cross" d="M{x} {y}L{x + cell} {y + cell}M{x + cell} {y}L{x} {y + cell}"/>')
    if wr >= 0:
        parts.append(
            f'<rect class="worst" x="{pad + wc * cell}" y="{pad + wr * cell}" width="{cell}" height="{cell}"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def scale(uid: str, high: float = HIGH) -> str:
    """The colour scale: within the bound (<= 1) on the left half, on a log axis from 1e-4; beyond
    (hatched) on the right half, on a log axis from 1 to ``10**high``; and the special cells (no finite
    bound, non-finite value, the worst entry)."""
    steps = 32
    w, bar_h, left = 400, 18, 22
    half = w / 2
    top = f"1e{int(high)}"
    parts = [
        f'<svg class="scale" viewBox="0 0 {w + 2 * left} 86" role="img" aria-labelledby="{uid}-t {uid}-d">',
        f'<title id="{uid}-t">Scale of |difference| / tolerance</title>',
        f'<desc id="{uid}-d">Left half, within the bound: from 1e-4 or less (lightest) to 1 (mid blue). Right half, '
        f"beyond the bound (deep orange, hatched): from just above 1 to {top} or more (near black). Grey with a "
        f"cross: no finite bound. Black: a non-finite value.</desc>",
        _hatch(uid),
    ]
    for i in range(steps):
        f = (i + 0.5) / steps
        parts.append(
            f'<rect x="{left + half * i / steps:.1f}" y="8" width="{half / steps + 0.5:.1f}" height="{bar_h}" '
            f'fill="{colour(10 ** (LOW * (1 - f)), high)}"/>'
        )
        parts.append(
            f'<rect x="{left + half + half * i / steps:.1f}" y="8" width="{half / steps + 0.5:.1f}" height="{bar_h}" '
            f'fill="{colour(10 ** (high * f), high)}"/>'
        )
    mid = left + half
    parts.append(f'<rect x="{mid:.1f}" y="8" width="{half:.1f}" height="{bar_h}" fill="url(#{uid}-h)"/>')
    parts.append(f'<line class="bound" x1="{mid}" x2="{mid}" y1="2" y2="{bar_h + 14}"/>')
    ticks = [
        (left, "1e-4"),
        (left + half / 2, "1e-2"),
        (mid, "1"),
        (mid + half / 2, f"1e{int(high) // 2}"),
        (left + w, top),
    ]
    for x, label in ticks:
        parts.append(f'<text class="tick" x="{x:.1f}" y="{bar_h + 26}" text-anchor="middle">{label}</text>')
    parts.append(f'<text class="tick" x="{left}" y="{bar_h + 44}">within the bound</text>')
    parts.append(
        f'<text class="tick" x="{left + w}" y="{bar_h + 44}" text-anchor="end">beyond the bound (hatched)</text>'
    )
    y2 = bar_h + 52
    parts.append(f'<rect x="{left}" y="{y2}" width="14" height="14" fill="#9a9a9a"/>')
    parts.append(f'<path class="cross" d="M{left} {y2}L{left + 14} {y2 + 14}M{left + 14} {y2}L{left} {y2 + 14}"/>')
    parts.append(f'<text class="tick" x="{left + 20}" y="{y2 + 12}">no finite bound</text>')
    parts.append(f'<rect x="{left + 120}" y="{y2}" width="14" height="14" fill="#000"/>')
    parts.append(f'<text class="tick" x="{left + 140}" y="{y2 + 12}">NaN or infinite value</text>')
    parts.append(f'<rect class="worst" x="{left + 280}" y="{y2}" width="14" height="14" fill="none"/>')
    parts.append(f'<text class="tick" x="{left + 300}" y="{y2 + 12}">the worst entry</text>')
    parts.append("</svg>")
    return "".join(parts)
