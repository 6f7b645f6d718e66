"""What a failing check's HTML page (:mod:`torch_ref.pages`) needs beyond its text report, taken from
the failing outcome while it is at hand and stored in the failure record (``record["page"]``,
JSON-ready), so that a page can be written later from the record alone (the pytest plugin's, a
campaign's). The engine, which raises the failure, sits below every kind's outcome type, so it calls
:func:`page_fields` through a hook that :mod:`torch_ref.kinds` sets (``torch_ref.engine.run.PAGE_FIELDS``).

- ``arrays``: every compared array's heat map of ``|difference| / tolerance`` (:mod:`.grid`) and the
  derivation's, the reference's and the bound's values at its worst entry;
- ``worst``: the array and entry with the largest share among those beyond their bound, and the
  central finite difference there where the arrays are one objective's gradient (:mod:`.finite`);
- ``diagram``: the case's network with the node where the two part and the places a verified
  diagnosis names marked (:mod:`.diagram`);
- ``trajectory``: a training check's distance against its bound, step by step;
- ``ranks``: a data-parallel check's ranks, each one's shard and verdict;
- ``conventions``: what the callable was called with, what it was compared with, how the bound is
  derived, and the numerical conventions in force on the case.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..pages.formulas import names_a_mistake
from ..training.points import step_point
from .diagram import diagram_of
from .finite import at_worst
from .grid import array_fields

__all__ = ["page_fields"]


def _number(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def page_fields(kind: Any, v: Any, opt: Any, extra: Any, record: dict[str, Any]) -> dict[str, Any]:
    """The page's fields of failing outcome ``v`` of a check of ``kind`` (a
    :class:`~torch_ref.engine.kind.Kind`), beside its ``record`` (:func:`torch_ref.engine.record.failure_record`:
    the layer where it parts, the report's lines, its diagnosis)."""
    diagnosis = [d for d in record.get("diagnosis", ()) if names_a_mistake(d)]
    comparison = getattr(v, "comparison", None)
    rows = list(comparison.rows) if comparison is not None else []
    arrays = [array_fields(r) for r in rows]
    beyond = [a for a in arrays if a["status"] not in ("ok", "precision", "NOT JUDGED") and a["at_worst"] is not None]
    worst = max(beyond, key=lambda a: _rank(a["share"]), default=None)
    worst_fields = None
    if worst is not None:
        index = tuple(worst["worst"])
        fd = at_worst(kind.name, v, worst["name"], index, extra)
        if "value" in fd:
            fd["sides"] = _sides(fd, worst["at_worst"])
        worst_fields = {"array": worst["name"], "index": list(index), "finite_difference": fd}
    parting: dict[str, Any] = {"layer": record.get("layer"), "path": _network_parting(record.get("report", ""))}
    conventions = [
        f"called as {kind.call}",
        f"compared with {_of_this_case(kind.reference, v)}",
        f"within {kind.tolerance}",
        *(f"convention: {c}" for c in (comparison.conventions if comparison is not None else ())),
        *(
            [
                "parameters named as the same nn.Sequential's state_dict; a linear weight of shape (in, out), "
                "nn.Linear's transposed"
            ]
            if getattr(getattr(v, "case", None), "net", None) is not None
            else []
        ),
        f"dtype {opt.dtype}, arrays handed out as {opt.arrays} on {opt.device}",
    ]
    return {
        "arrays": arrays,
        "worst": worst_fields,
        "diagram": diagram_of(kind.name, v, parting, list(diagnosis)),
        "trajectory": _trajectory(v) if kind.name in ("training", "network-training") else [],
        "parted_step": getattr(v, "step", None) if getattr(v, "kind", "") == "mismatch" else None,
        "conventions": conventions,
        "ranks": _ranks(v),
        "reference": _reference(kind.name, extra),
        "arrays_of": _arrays_of(v),
    }


def _ranks(v: Any) -> list[dict[str, Any]]:
    """A data-parallel outcome's ranks: each one's shard size and its comparison's verdict."""
    comparisons, sizes = getattr(v, "comparisons", None), getattr(v, "sizes", None)
    if not comparisons or sizes is None:
        return []
    out = []
    for rank, (c, n) in enumerate(zip(comparisons, sizes, strict=False)):
        row = max(c.rows, key=lambda r: (math.isnan(r.share), r.share), default=None)
        status = "ok" if c.ok else "NOT JUDGED" if c.not_judged else "MISMATCH"
        out.append(
            {
                "rank": rank,
                "examples": int(n),
                "status": status,
                "share": _number(c.worst_share),
                "worst_array": None if row is None else row.name,
            }
        )
    return out


def _sides(fd: dict[str, Any], at: dict[str, Any]) -> str:
    """Which value the finite difference supports, within its own error (the report's blame rule)."""
    value, error = fd["value"], fd["error"]
    mine, theirs = (float(at[k]) for k in ("derivation", "reference"))
    if abs(value - theirs) <= error < abs(value - mine):
        return "they side with the reference"
    if abs(value - mine) <= error < abs(value - theirs):
        return "they side with your derivation"
    why = "; " + fd["kinks"] if "kinks" in fd else ""
    return f"inconclusive: they cannot tell the two apart here{why}"


def _rank(share: Any) -> float:
    """A share for ordering (JSON's "inf" the largest, "nan" the smallest)."""
    value = float(share)
    return -1.0 if math.isnan(value) else value


def _reference(kind: str, extra: Any) -> str:
    """What the reference column holds, in a word or three."""
    if kind in ("training", "network-training"):
        return "torch.optim"
    if kind == "update":
        return "torch.optim.SGD"
    if kind in ("data-parallel", "network-data-parallel"):
        return "autograd, whole batch"
    setup = extra.get("setup") if isinstance(extra, dict) else None
    if kind in ("layer", "function") and getattr(setup, "fd", False):
        return "finite differences of your forward"
    return "autograd"


def _arrays_of(v: Any) -> str:
    """Whose arrays the page's tables and heat maps show, where it is not plain (a data-parallel rank)."""
    comparisons = getattr(v, "comparisons", None)
    failing = getattr(v, "failing", None)
    if comparisons and failing:
        return f"rank {failing[0]}'s result, the first rank beyond its bound, against the whole batch's gradient"
    return ""


def _of_this_case(text: str, v: Any) -> str:
    """A kind's reference sentence without the parenthesis about torch's bce floor where the case's
    loss is not bce (that convention cannot apply to it)."""
    spec = getattr(getattr(v, "case", None), "spec", None)
    loss = getattr(getattr(spec, "loss", None), "name", None)
    if loss is not None and loss != "bce":
        text = re.sub(r"\s*\([^()]*bce floor[^()]*\)", "", text)
    return text


def _network_parting(report: str) -> str | None:
    """The node path of the place a network report's parting line names ("They part at ...", a
    training report's "Step k parts first ... at ..."), or None where the report has no such line (a
    network's data-parallel or per-example check names ranks or examples, not a layer)."""
    line = next(
        (l for l in report.splitlines() if l.startswith("They part at ") or re.match(r"Step \d+ parts first", l)), None
    )
    if line is None:
        return None
    place = re.split(r": |, '", line.split(" at ", 1)[1])[0]
    found = re.findall(r"layers((?:\[\d+\])+)", place)
    return ".".join(re.findall(r"\d+", found[-1])) if found else None


def _trajectory(v: Any) -> list[dict[str, Any]]:
    """A training outcome's steps (:func:`step_point`): the fully connected kind keeps them; a network's
    are taken from the user's and torch's parameters and the bound at every step that ran."""
    path = getattr(v, "trajectory", None)
    if not path:
        user, torch_path, allowed = (getattr(v, k, ()) for k in ("user", "torch_path", "allowed"))
        path = [
            step_point(
                k,
                [user[k][n] for n in user[k]],
                [torch_path[k][n] for n in user[k]],
                [allowed[k - 1][n] for n in user[k]],
            )
            for k in range(1, min(len(user), len(torch_path), len(allowed) + 1))
        ]
    return [{k: _number(x) if isinstance(x, float) else x for k, x in p.items()} for p in path]
