"""The network of a failing case drawn as inline SVG, from its data (:mod:`torch_ref.figures.diagram`):
the nodes top to bottom, input to loss, residual blocks outlined with their skip (an arc joining with
a circled +); the node where the
two sides part with a thick outline, a hatched strip and the words "parts here", and the nodes or
blocks the verified diagnosis names with a dashed outline and "diagnosed", so that both marks read
without colour.
"""

from __future__ import annotations

from typing import Any

from .svg import esc

__all__ = ["caption", "svg"]


def svg(d: dict[str, Any], uid: str) -> str:
    """The diagram as inline SVG, top (input) to bottom (loss); ``uid`` keeps its pattern's id unique."""
    box_w, box_h, gap, x0 = 280, 40, 14, 24
    rows = [("io", {"label": d["input"]}), *[("node", n) for n in d["nodes"]], ("io", {"label": d["loss"]})]
    height = len(rows) * (box_h + gap) + gap
    width = x0 + box_w + 200
    groups = {g["name"]: g for g in d.get("groups", [])}
    parts = [
        f'<svg class="diagram" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{uid}-t {uid}-d">',
        f'<title id="{uid}-t">{esc(_title(d))}</title>',
        f'<desc id="{uid}-d">{esc(_description(d))}</desc>',
        f'<defs><pattern id="{uid}-hatch" width="8" height="8" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="8" height="8" class="hatch-bg"/>'
        f'<line x1="0" y1="0" x2="0" y2="8" class="hatch-line"/></pattern></defs>',
    ]
    # residual groups: one outline around each run of nodes of the same group, its skip an arc that
    # joins with a circled +; a diagnosed block's outline dashed and thick, with "◀ diagnosed" on the row
    # of one of its nodes that carries no mark of its own
    spans: dict[str, list[int]] = {}
    free: dict[str, list[int]] = {}
    for k, (what, n) in enumerate(rows):
        start = gap + k * (box_h + gap)
        if what == "node" and n.get("group"):
            spans.setdefault(n["group"], [start, start + box_h])[1] = start + box_h
            if not (n.get("marked") or n.get("diagnosed")):
                free.setdefault(n["group"], []).append(start)
    for name, (top, bottom) in spans.items():
        diagnosed = groups.get(name, {}).get("diagnosed", False)
        cls = "group diagnosed" if diagnosed else "group"
        flag = ' data-diagnosed="true"' if diagnosed else ""
        parts.append(
            f'<rect class="{cls}"{flag} x="{x0 - 16}" y="{top - 7}" width="{box_w + 32}" height="{bottom - top + 14}" rx="8"/>'
        )
        parts.append(
            f'<path class="skip" d="M {x0 + box_w + 16} {bottom + 2} C {x0 + box_w + 40} {bottom}, '
            f'{x0 + box_w + 40} {top}, {x0 + box_w + 16} {top - 2}"/>'
        )
        cx, cy = x0 + box_w + 34, (top + bottom) / 2
        parts.append(f'<circle class="join" cx="{cx}" cy="{cy:.0f}" r="7"/>')
        parts.append(f'<text class="join-plus" x="{cx}" y="{cy + 4:.0f}" text-anchor="middle">+</text>')
        if diagnosed:
            row = free.get(name, [top])[-1]
            parts.append(f'<text x="{x0 + box_w + 50}" y="{row + 25}" class="mark">◀ diagnosed: block</text>')
    for k, (what, n) in enumerate(rows):
        y = gap + k * (box_h + gap)
        marked, diagnosed = bool(n.get("marked")), bool(n.get("diagnosed"))
        cls = (
            "io"
            if what == "io"
            else " ".join(["node", *(["marked"] if marked else []), *(["diagnosed"] if diagnosed else [])])
        )
        flags = (' data-marked="true"' if marked else "") + (' data-diagnosed="true"' if diagnosed else "")
        parts.append(f'<g class="{cls}"{flags}>')
        parts.append(f'<rect x="{x0}" y="{y}" width="{box_w}" height="{box_h}" rx="6"/>')
        if marked:
            parts.append(
                f'<rect x="{x0 - 14}" y="{y}" width="10" height="{box_h}" style="fill:url(#{uid}-hatch)" class="hatched"/>'
            )
        indent, room = 10, 40  # the hatched strip sits left of the box; 40 characters fit at 12 px
        label = n["label"] if len(n["label"]) <= room else n["label"][: room - 1] + "…"
        parts.append(f'<text x="{x0 + indent}" y="{y + 17}" class="node-label">{esc(label)}</text>')
        if n.get("detail"):
            detail = n["detail"] if len(n["detail"]) <= room + 4 else n["detail"][: room + 3] + "…"
            parts.append(f'<text x="{x0 + indent}" y="{y + 32}" class="node-detail">{esc(detail)}</text>')
        words = [
            w
            for w, on in (("◀ parts here", marked), ("◀ diagnosed" if not marked else "and diagnosed", diagnosed))
            if on
        ]
        mx = x0 + box_w + (50 if n.get("group") else 8)  # past a residual block's skip arc where the node sits in one
        for j, word in enumerate(words):  # one per line
            parts.append(
                f'<text x="{mx}" y="{y + (25 if len(words) == 1 else 17 + 15 * j)}" class="mark">{word}</text>'
            )
        parts.append("</g>")
        if k < len(rows) - 1:
            parts.append(
                f'<line class="flow" x1="{x0 + box_w / 2}" x2="{x0 + box_w / 2}" y1="{y + box_h}" y2="{y + box_h + gap}"/>'
            )
    parts.append("</svg>")
    return "\n".join(parts)


def _title(d: dict[str, Any]) -> str:
    marked = [n["label"] for n in d["nodes"] if n["marked"]]
    named = [n["label"] for n in d["nodes"] if n.get("diagnosed")] + [
        g["name"] for g in d.get("groups", []) if g["diagnosed"]
    ]
    return (
        "The network, input to loss"
        + (f"; the two part at {marked[0]}" if marked else "")
        + (f"; the diagnosis names {', '.join(named)}" if named else "")
    )


def _description(d: dict[str, Any]) -> str:
    items = [d["input"]]
    for n in d["nodes"]:
        words = [
            w for w, on in (("the two part here", n["marked"]), ("the diagnosis names it", n.get("diagnosed"))) if on
        ]
        items.append(
            n["label"]
            + (f" ({n['detail']})" if n["detail"] else "")
            + (f" in the {n['group']}" if n["group"] else "")
            + (": " + ", ".join(words) if words else "")
        )
    items += [f"the {g['name']}: the diagnosis names it" for g in d.get("groups", []) if g["diagnosed"]]
    return "; ".join([*items, d["loss"]])


def caption(d: dict[str, Any]) -> str:
    """The figure's caption, saying only what the drawing holds."""
    parts = (
        ["The layer of the minimal case: its arguments at the top, the δ_out it is given at the bottom."]
        if d.get("kind") == "layer"
        else ["The network of the minimal case, input at the top, loss at the bottom."]
    )
    if any(n["marked"] for n in d["nodes"]):
        parts.append(
            "The box with the thick outline and the hatched strip at its left (“parts here”) is the place the "
            "report's “Where they part” names."
        )
    else:
        parts.append("The report names no single layer where the two part, so none is marked.")
    if any(n.get("diagnosed") for n in d["nodes"]) or any(g["diagnosed"] for g in d.get("groups", [])):
        parts.append("Dashed outlines (“diagnosed”) are the places the verified diagnosis names.")
    return " ".join(parts)
