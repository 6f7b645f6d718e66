"""The report's pages, written from records alone (:mod:`torch_ref.engine.record`): one check's page
(a failure, a pass, a run that judged too little) and one page for many checks (a pytest run's, a
campaign's), failures first. Standalone: the stylesheet inline, every figure inline SVG, formulas
MathML, and one inline script for the copy button; nothing is fetched.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from typing import Any

from .diagram import caption as diagram_caption
from .diagram import svg as diagram_svg
from .formulas import formula_for
from .heatmap import heatmap, scale
from .style import CSS
from .svg import esc, fmt, high_of, share_value
from .trajectory import chart

__all__ = ["page", "run_page", "section"]

_SCRIPT = """
document.querySelectorAll('button.copy').forEach(function (b) {
  b.addEventListener('click', function () {
    var text = document.getElementById(b.dataset.target).textContent;
    var done = function () { b.textContent = 'Copied'; };
    var select = function () {
      var r = document.createRange(); r.selectNodeContents(document.getElementById(b.dataset.target));
      var s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
      b.textContent = 'Selected: press Ctrl+C';
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, select);
    } else { select(); }
  });
});
"""


def _doc(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body><main>\n{body}\n</main>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


def page(record: dict[str, Any], title: str | None = None) -> str:
    """One check's standalone page."""
    head = title or _title(record)
    return _doc(head, section(record, "r0", level=1, title=head))


def run_page(records: Sequence[dict[str, Any]], title: str) -> str:
    """Many checks on one page, failures first (then not judged, then passes), each with its own section."""
    order = sorted(range(len(records)), key=lambda i: (_rank(records[i]), i))
    counts = {w: sum(_rank(r) == k for r in records) for k, w in enumerate(("failed", "not judged", "passed"))}
    summary = ", ".join(f"{n} {w}" for w, n in counts.items())
    toc = "".join(f'<a href="#r{i}">{esc(_label(records[i]))}</a> ' for i in order)
    body = [
        f'<h1>{esc(title)}</h1><p class="verdict {"fail" if counts["failed"] else "pass"}">'
        f'<span class="badge">{esc(summary)}</span>{len(records)} checks</p>',
        f'<nav class="toc" aria-label="checks">{toc}</nav>' if records else "<p>No check ran.</p>",
    ]
    for i in order:
        body.append(
            f'<section class="run" id="r{i}">{section(records[i], f"r{i}", level=2, title=_label(records[i]))}</section>'
        )
    return _doc(title, "\n".join(body))


def _rank(r: dict[str, Any]) -> int:
    if r.get("passed"):
        return 2
    return 1 if r.get("verdict") == "not judged" and "case" not in r else 0


def _label(r: dict[str, Any]) -> str:
    who = r.get("test") or r.get("title") or r.get("kind", "check")
    return f"{who}: {'passed' if r.get('passed') else r.get('verdict', 'failed')}"


def _title(r: dict[str, Any]) -> str:
    if r.get("passed"):
        return f"Check passed: {r['kind']}"
    return f"Check failed: {r['kind']} ({r.get('verdict')})"


def section(record: dict[str, Any], uid: str, *, level: int, title: str) -> str:
    """The body of one check's page (``level`` its heading's level, ``uid`` unique on the page)."""
    h = f"h{level}"
    if record.get("passed"):
        return _passing(record, uid, h, title)
    if record.get("verdict") == "not judged" and "case" not in record:
        return (
            f'<{h}>{esc(title)}</{h}><div class="verdict unjudged"><span class="badge">Not judged</span>'
            f"{esc(record['kind'])}: too few cases could be judged to pass.</div>"
            f"<pre>{esc(record['report'])}</pre>"
        )
    return _failure(record, uid, h, title)


# ---------------------------------------------------------------------------------------- a failure


def _failure(r: dict[str, Any], uid: str, h: str, title: str) -> str:
    sub = "h3" if h == "h2" else "h2"
    page = r.get("page") or {}
    first = r["report"].splitlines()[0] if r.get("report") else ""
    out = [
        f"<{h}>{esc(title)}</{h}>",
        f'<div class="verdict fail" role="status"><span class="badge">Failed</span>{esc(first)}</div>',
    ]
    uses_lr = r["kind"] in ("update", "training", "network-training")
    out += [f"<{sub}>The minimal case</{sub}>", _facts(r["case"], uses_lr)]
    if page.get("diagram"):
        out.append(
            f'<figure class="diagram-fig">{diagram_svg(page["diagram"], uid + "-net")}'
            f"<figcaption>{esc(diagram_caption(page['diagram']))}</figcaption></figure>"
        )
    where = [x for x in (r.get("parts"), *_they_part(r)) if x]
    if where:
        out += [f"<{sub}>Where they part</{sub}>", *(f"<p>{esc(x)}</p>" for x in where)]
    out += [f"<{sub}>Diagnosis</{sub}>", _diagnosis(r)]
    if page.get("worst"):
        out += [f"<{sub}>The worst entry</{sub}>", _worst(r, page)]
    if page.get("trajectory"):
        out += [f"<{sub}>The trajectory</{sub}>", _trajectory(page, uid)]
    if page.get("ranks"):
        out += [f"<{sub}>The ranks</{sub}>", _ranks(page["ranks"])]
    if page.get("arrays"):
        whose = f"<p>The arrays below are {esc(page['arrays_of'])}.</p>" if page.get("arrays_of") else ""
        what = {
            "hvp": " (the Hessian-vector product, layer by layer)",
            "gnvp": " (the Gauss-Newton-vector product, layer by layer)",
        }
        head = f"Every compared array{what.get(r['kind'], '')}: |difference| / tolerance"
        out += [f"<{sub}>{esc(head)}</{sub}>", whose, _arrays(r, page, uid)]
    if page.get("error"):
        out.append(
            f"<p>The page's figures could not be made for this case ({esc(page['error'])}); the text report below is whole.</p>"
        )
    if r.get("reproduce"):
        rid = f"{uid}-repro"
        out += [
            f"<{sub}>Reproduce</{sub}>",
            f'<p><button class="copy" type="button" data-target="{rid}">Copy the Reproduce lines</button></p>',
            f'<pre id="{rid}">{esc(chr(10).join(r["reproduce"]))}</pre>',
        ]
    if page.get("conventions"):
        out += [
            f"<{sub}>Conventions of this check</{sub}>",
            "<ul>",
            *(f"<li>{esc(c)}</li>" for c in page["conventions"]),
            "</ul>",
        ]
    out.append(f"<details><summary>The whole text report</summary><pre>{esc(r['report'])}</pre></details>")
    return "\n".join(out)


def _they_part(r: dict[str, Any]) -> list[str]:
    """The network kinds' "They part at ..." (or a training report's "Step k parts first ...") sentence
    and the span after it."""
    lines = r.get("report", "").splitlines()
    out = []
    for k, line in enumerate(lines):
        if line.startswith("They part at") or re.match(r"Step \d+ parts first", line):
            out.append(line)
            if k + 1 < len(lines) and lines[k + 1].startswith(("Every gradient above", "No parameter lies")):
                out.append(lines[k + 1])
    return out


# what a case's fields mean (torch_ref.strategies.case_from and the kinds' describe), shown beside them
_GLOSSARY = {
    "spec": "the network: layer widths, activations, loss and reduction",
    "N": "examples in the batch",
    "seed": "the seed every value of the case is drawn from",
    "grid": "weights and inputs on grids of quarters scaled by powers of two, so that sums are exact",
    "gain": "the weights' range, gain/√fan_in",
    "kink": "an input placed exactly at a ReLU kink",
    "targets": "how the targets Y are drawn",
    "logits": "the output layer scaled to this largest |I| (0: not scaled)",
    "hidden": "every hidden layer scaled to this largest |I| (0: not scaled)",
    "lr": "the learning rate",
    "steps": "the training steps taken",
    "shape": "the input X's shape",
    "regimes": "what the case meets, verified on its values",
    "shard_sizes": "each rank's examples",
    "world_size": "the number of ranks",
    "dtype": "the dtype of the arrays handed to your code",
}


def _gloss(key: str, case: dict[str, Any]) -> str:
    if key == "spec" and "shapes" in case:  # a layer's or a Function's case
        return "the arrays' shapes and the constants"
    return _GLOSSARY[key]


def _facts(case: dict[str, Any], uses_lr: bool = True) -> str:
    keep = [(k, v) for k, v in case.items() if v not in (None, "", [], {}) and k != "sizes"]
    if case.get("grid") is True:  # grid weights take no gain
        keep = [(k, v) for k, v in keep if k != "gain"]
    # a scaling or a placed kink only where the case has one; a learning rate only where one is used
    keep = [(k, v) for k, v in keep if not (k in ("logits", "hidden", "kink") and not v)]
    if not uses_lr:
        keep = [(k, v) for k, v in keep if k != "lr"]
    return (
        '<dl class="facts">'
        + "".join(
            f"<dt>{esc(k)}</dt><dd>{esc(_plain(v))}"
            + (f' <span class="muted">({esc(_gloss(k, case))})</span>' if k in _GLOSSARY else "")
            + "</dd>"
            for k, v in keep
        )
        + "</dl>"
    )


def _plain(v: Any) -> str:
    if isinstance(v, float):
        return fmt(v, 6)
    if isinstance(v, (list, tuple)):
        return ", ".join(_plain(x) for x in v)
    if isinstance(v, dict):
        return "; ".join(f"{k} {_plain(x)}" for k, x in v.items())
    return str(v)


def _diagnosis(r: dict[str, Any]) -> str:
    found = r.get("diagnosis") or []
    if not found:
        return "<p>No diagnosis: the report names none for this case.</p>"
    out = []
    for d in found:
        out.append(f"<p><strong>Diagnosis:</strong> {esc(d)}</p>")
        f = formula_for(d)
        if f is not None:
            what, mathml = f
            out.append(
                f'<div class="formula" role="figure" aria-label="the right formula: {esc(what)}">'
                f'<div class="muted">The right formula ({esc(what)}):</div>{mathml}</div>'
            )
    if r.get("blame"):
        out.append(f"<p>{esc(r['blame'])}</p>")
    return "\n".join(out)


def _worst(r: dict[str, Any], page: dict[str, Any]) -> str:
    w = page["worst"]
    a = next((x for x in page["arrays"] if x["name"] == w["array"]), None)
    at = (a or {}).get("at_worst") or {}
    reference = page.get("reference") or "autograd"
    fd = w["finite_difference"]
    fd_cell = (
        f"{fmt(fd['value'], 10)} ± {fmt(fd['error'], 2)} ({esc(fd['dtype'])}): {esc(fd['sides'])}"
        if "value" in fd
        else f"none: {esc(fd['absent'])}"
    )
    mine, theirs = share_value(at.get("derivation")), share_value(at.get("reference"))
    rows = [
        ("yours", fmt(at.get("derivation"), 10)),
        (f"reference ({reference})", fmt(at.get("reference"), 10)),
        ("finite differences", fd_cell),
        ("the bound at this entry", fmt(at.get("bound"), 3)),
        ("|difference| / bound", fmt(share_value(a["share"]) if a else None, 3)),
        ("|difference| / |reference|", fmt(abs(mine - theirs) / abs(theirs) if theirs else math.inf, 3)),
    ]
    note = f"<p>{esc(fd['note'])}</p>" if fd.get("note") else ""
    step = f" after step {page['parted_step']}" if page.get("trajectory") and page.get("parted_step") else ""
    return (
        f"<p>At {esc(w['array'])}{_at(w['index'])}{step}, the entry that uses the most of its bound:</p>"
        '<div class="scroll"><table><tbody>'
        + "".join(f'<tr><th scope="row">{esc(k)}</th><td class="num">{v}</td></tr>' for k, v in rows)
        + "</tbody></table></div>"
        + note
    )


def _at(index: list[int]) -> str:
    return f"[{', '.join(str(i) for i in index)}]" if index else " (a scalar)"


def _arrays(r: dict[str, Any], page: dict[str, Any], uid: str) -> str:
    arrays = page["arrays"]
    relative = {row["name"]: row.get("max_rel") for row in r.get("rows", [])}
    table = [
        '<div class="scroll"><table><thead><tr><th scope="col">array</th><th scope="col">status</th>'
        '<th scope="col">largest |diff| / tol</th><th scope="col">worst at</th><th scope="col">entries beyond</th>'
        '<th scope="col">largest |diff| / |reference|</th></tr></thead><tbody>'
    ]
    for a in arrays:
        g = a.get("grid") or {}
        cls = "beyond" if a["status"] == "MISMATCH" else ""
        table.append(
            f'<tr class="{cls}"><td>{esc(a["name"])}</td><td>{esc(a["status"])}</td>'
            f'<td class="num">{fmt(share_value(a["share"]))}</td><td>{esc(tuple(a["worst"]))}</td>'
            f'<td class="num">{g.get("beyond", "n/a")} of {g.get("entries", "n/a")}</td>'
            f'<td class="num">{fmt(share_value(relative.get(a["name"])))}</td></tr>'
        )
    table.append("</tbody></table></div>")
    figures = []
    counter = itertools.count()
    high = high_of(c for a in arrays if a.get("grid") for c in a["grid"]["cells"])
    for a in arrays:
        g = a.get("grid")
        if g is None:
            figures.append(
                f'<figure class="array"><figcaption>{esc(a["name"])}: {esc(a.get("note") or "no heat map")}</figcaption></figure>'
            )
            continue
        reduced = "" if g["block"] == [1, 1] else f"; each cell the largest of a {g['block'][0]}×{g['block'][1]} block"
        layout = "" if g["layout"] == "as is" else f"; {g['layout']}"
        figures.append(
            f'<figure class="array"><div class="scroll">{heatmap(a, f"{uid}-a{next(counter)}", high)}</div>'
            f"<figcaption><strong>{esc(a['name'])}</strong> {esc(tuple(g['shape']))}: {esc(a['status'])}, "
            f"{g['beyond']} of {g['entries']} beyond{esc(layout + reduced)}</figcaption></figure>"
        )
    caption = (
        "<p>Each cell is one entry's |derivation − reference| divided by its tolerance: at most 1 (blue) is within the "
        "bound; above 1 (orange to black, hatched) is beyond. Hover a cell for its index, its share and the two values.</p>"
    )
    return (
        "".join(table)
        + caption
        + f'<div class="scroll">{scale(uid + "-scale", high)}</div>'
        + f'<div class="arrays">{"".join(figures)}</div>'
    )


def _trajectory(page: dict[str, Any], uid: str) -> str:
    path = page["trajectory"]
    parted = page.get("parted_step")
    rows = "".join(
        f'<tr class="{"beyond" if share_value(p["share_of_bound"]) > 1 else ""}"><td class="num">{p["step"]}</td>'
        f'<td class="num">{fmt(share_value(p["distance"]))}</td><td class="num">{fmt(share_value(p["distance_at"]))}</td>'
        f'<td class="num">{fmt(share_value(p["bound_at"]))}</td><td class="num">{fmt(share_value(p["share_of_bound"]))}</td>'
        f"<td>{'parts here' if p['step'] == parted else ''}</td></tr>"
        for p in path
    )
    return (
        f'<figure><div class="scroll">{chart(path, parted, uid + "-traj")}</div><figcaption>Step by step, the distance |W − V| '
        "between the trainer's weights W and torch.optim's V on the same network, at the entry nearest its bound, "
        "and the trajectory bound there. The bound of each step carries the distance measured at the step before, "
        "so once a step is beyond it, the bound rises with the distance and no longer says whether later steps are "
        "right.</figcaption></figure>"
        '<div class="scroll"><table><thead><tr><th scope="col">step</th><th scope="col">largest |W − V|</th>'
        '<th scope="col">|W − V| at the entry nearest its bound</th><th scope="col">the bound there</th>'
        f'<th scope="col">ratio</th><th scope="col"></th></tr></thead><tbody>{rows}</tbody></table></div>'
    )


def _ranks(ranks: list[dict[str, Any]]) -> str:
    rows = "".join(
        f'<tr class="{"beyond" if x["status"] == "MISMATCH" else ""}"><td class="num">{x["rank"]}</td>'
        f'<td class="num">{x["examples"]}</td><td>{esc(x["status"])}</td><td class="num">{fmt(share_value(x["share"]))}</td>'
        f"<td>{esc(x['worst_array'] or '')}</td></tr>"
        for x in ranks
    )
    return (
        '<div class="scroll"><table><thead><tr><th scope="col">rank</th><th scope="col">examples in its shard</th>'
        '<th scope="col">status</th><th scope="col">largest |diff| / tol</th><th scope="col">worst array</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


# ---------------------------------------------------------------------------------------- a pass


# what a passing run covered, by the kind of its cases: a fully connected network's (a Spec) ...
_COVERAGE_FC = (
    ("activations", "activations"),
    ("losses", "losses"),
    ("output_loss_pairs", "output / loss pairs"),
    ("kink_hit", "an input exactly at an activation's kink"),
    ("saturation_hit", "a saturated probability output (y*(1 − y*) ≤ √eps)"),
    ("square_layers", "a square layer"),
    ("bias", "bias"),
    ("reductions", "reductions"),
    ("batch_sizes", "batch sizes (smallest, largest)"),
    ("targets", "targets"),
    ("shard_sizes", "shard sizes"),
    ("empty_shard", "an empty shard"),
)
# ... and a layer's, a Function's or a network of layers' (their summaries track none of the above)
_COVERAGE_OTHER = (
    ("families", "network families"),
    ("layers", "layers met"),
    ("regimes", "regimes met (verified on the case's values)"),
    ("batch_sizes", "batch sizes (smallest, largest)"),
    ("shard_sizes", "shard sizes"),
    ("empty_shard", "an empty shard"),
)
_NOT_SPECS = ("layer", "function", "network", "network-training", "network-per-example", "network-data-parallel")


def _what(kind: str) -> str:
    """What a kind's distinct cases are (the summary's own words)."""
    if kind.startswith("network"):
        return "architectures"
    return "distinct shapes" if kind in _NOT_SPECS else "networks"


def _not_met(key: str, c: dict[str, Any]) -> list[str]:
    """The built-in activations or losses a fully connected run did not meet (narrowed out, or not
    drawn): coverage says what was met, and this what was not."""
    if key not in ("activations", "losses") or c["kind"] in ("layer", "function") or c["kind"].startswith("network"):
        return []
    import manual

    table = manual.ACTIVATIONS if key == "activations" else manual.LOSSES
    return sorted(set(table) - set(c[key]))


def _passing(r: dict[str, Any], uid: str, h: str, title: str) -> str:
    c = r["covered"]
    share = share_value(c.get("largest_share_of_tolerance", 0.0))
    width = max(0.0, min(share, 1.0)) * 100
    rows = []
    for key, label in _COVERAGE_OTHER if c["kind"] in _NOT_SPECS else _COVERAGE_FC:
        if key in c and c[key] not in (None, [], ""):
            missing = _not_met(key, c)
            rest = f'<br><span class="muted">built-ins not met: {esc(", ".join(missing))}</span>' if missing else ""
            rows.append(f'<tr><th scope="row">{esc(label)}</th><td>{esc(_plain(c[key]))}{rest}</td></tr>')
    reasons = c.get("not_judged_reasons") or {}
    nj = "".join(f"<li>{n}: {esc(reason)}</li>" for reason, n in reasons.items())
    return "\n".join(
        [
            f"<{h}>{esc(title)}</{h}>",
            f'<div class="verdict pass" role="status"><span class="badge">Passed</span>{c["examples"]} examples judged on '
            f"{c['networks']} {_what(c['kind'])} ({esc(c['dtype'])}, "
            f"{esc(c['device'])}) in {fmt(c['seconds'])} s; every one within its bound.</div>",
            "<p><strong>Largest share of the bound used:</strong> "
            f'<span class="barbox" role="img" aria-label="{fmt(share)} of the bound"><span class="bar" style="width:{width:.1f}%"></span></span>'
            f"{fmt(share)} (1 is the bound)</p>",
            f"<h{int(h[1]) + 1}>What the run covered</h{int(h[1]) + 1}>",
            f'<div class="scroll"><table><tbody>{"".join(rows)}</tbody></table></div>',
            f"<p>{c.get('not_judged', 0)} drawn cases were not judged"
            + (":</p><ul>" + nj + "</ul>" if nj else ".</p>"),
            f"<p>{c.get('precision', 0)} agree only to rounding level; {c.get('conventions', 0)} met a named numerical "
            "convention.</p>",
            f"<details><summary>The whole text summary</summary><pre>{esc(r['report'])}</pre></details>",
        ]
    )
