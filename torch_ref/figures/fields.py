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

from ..training.points import step_point
from .diagram import diagram_of
from .finite import at_worst
from .grid import grid

__all__ = ["page_fields"]


def _number(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def page_fields(kind: Any, v: Any, opt: Any, extra: Any, layer: int | None, diagnosis: Any = ()) -> dict[str, Any]:
    """The page's fields of failing outcome ``v`` of a check of ``kind`` (a
    :class:`~torch_ref.engine.kind.Kind`); ``layer`` the fully connected layer where it parts, if known;
    ``diagnosis`` the report's verified diagnosis lines."""
    comparison = getattr(v, "comparison", None)
    rows = list(comparison.rows) if comparison is not None else []
    arrays = []
    for r in rows:
        a = r.at_worst
        arrays.append(
            {
                "name": r.name,
                "status": r.status,
                "share": _number(r.share),
                "worst": list(r.worst),
                "at_worst": None
                if a is None
                else {"derivation": _number(a[0]), "reference": _number(a[1]), "bound": _number(a[2])},
                "grid": grid(r),
                "note": r.note,
            }
        )
    beyond = [r for r in rows if not r.ok and r.at_worst is not None and r.worst]
    worst = max(beyond, key=lambda r: (math.isnan(r.share), r.share), default=None)
    worst_fields = None
    if worst is not None:
        worst_fields = {
            "array": worst.name,
            "index": list(worst.worst),
            "finite_difference": at_worst(kind.name, v, worst.name, worst.worst, extra),
        }
    parting: dict[str, Any] = {"layer": layer, "path": _network_parting(v)}
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


def _of_this_case(text: str, v: Any) -> str:
    """A kind's reference sentence without the parenthesis about torch's bce floor where the case's
    loss is not bce (that convention cannot apply to it)."""
    spec = getattr(getattr(v, "case", None), "spec", None)
    loss = getattr(getattr(spec, "loss", None), "name", None)
    if loss is not None and loss != "bce":
        text = re.sub(r"\s*\([^()]*bce floor[^()]*\)", "", text)
    return text


def _network_parting(v: Any) -> str | None:
    """The node path where a network's gradients part: the first parameter beyond its bound from the
    loss down (:func:`torch_ref.networks.diagnose.parting`'s rule)."""
    net = getattr(getattr(v, "case", None), "net", None)
    comparison = getattr(v, "comparison", None)
    if net is None or comparison is None:
        return None
    rows = {row.name: row for row in comparison.rows}
    first = next((k for k in reversed(list(net.parameters())) if k in rows and not rows[k].ok), None)
    return None if first is None else first.rsplit(".", 1)[0]


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
