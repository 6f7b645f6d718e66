"""A check's outcome as JSON-ready values: what the command line writes (``--json``, ``--markdown``)
and what the pytest plugin collects (``--oracle-report``)."""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["before_shrinking", "failure_record", "markdown", "not_judged_record", "summary_record"]


def _number(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)  # JSON has no inf or NaN


def _case(v: Any, opt: Any) -> dict[str, Any]:
    case, spec = v.case, v.case.spec
    out = {
        "spec": str(spec),
        "sizes": list(spec.sizes),
        "activations": [a.name for a in spec.activations],
        "loss": spec.loss.name,
        "bias": spec.bias,
        "reduction": spec.reduction,
        "N": int(case.X.shape[0]),
        "seed": case.seed,
        "grid": case.grid,
        "gain": case.gain,
        "kink": case.kink,
        "targets": case.targets,
        "logits": case.logits,
        "hidden": case.hidden,
        "lr": case.lr,
        "dtype": opt.dtype,
        "device": opt.device,
    }
    if getattr(v, "steps", None):
        out["steps"] = v.steps
    sizes = getattr(v, "sizes", None)
    if sizes is not None:  # a data-parallel case: its ranks' shards
        out["world_size"] = len(sizes)
        out["shard_sizes"] = [int(n) for n in sizes]
    return out


def _rows(v: Any) -> list[dict[str, Any]]:
    if getattr(v, "comparison", None) is None:
        return []
    return [
        {
            "name": r.name,
            "status": r.status,
            "max_abs": _number(r.max_abs),
            "max_rel": _number(r.max_rel),
            "worst": list(r.worst),
            "share_of_tolerance": _number(r.share),
            "note": r.note,
        }
        for r in v.comparison.rows
    ]


def before_shrinking(before: Any) -> tuple[str, float] | None:
    """The array and the largest relative difference of the first failing case found, where it has a
    comparison (a crash or a wrong type has none)."""
    comparison = getattr(before, "comparison", None)
    if comparison is None or not comparison.rows:
        return None
    row = max(comparison.rows, key=lambda r: (r.max_rel != r.max_rel, r.max_rel))  # NaN counts as largest
    return row.name, row.max_rel


def _before(before: Any, describe: Any = None, opt: Any = None) -> dict[str, Any] | None:
    """The first failing case found, before shrinking, and its largest relative difference."""
    seen = None if before is None else before_shrinking(before)
    if seen is None:
        return None
    case = before.case
    if describe is not None:
        return {
            **describe(case, opt),
            "array": seen[0],
            "largest_relative_difference": _number(seen[1]),
            "case_from": case.rebuild(),
        }
    return {
        "spec": str(case.spec),
        "N": int(case.X.shape[0]),
        "seed": case.seed,
        "array": seen[0],
        "largest_relative_difference": _number(seen[1]),
        "case_from": case.rebuild(),
    }


def not_judged_record(summary: Any, report: str) -> dict[str, Any]:
    """A run that judged too little to pass (no case, or fewer than it could not judge)."""
    return {
        "passed": False,
        "kind": summary.kind,
        "verdict": "not judged",
        "covered": summary.to_dict(),
        "not_judged": summary.not_judged,
        "judged": summary.examples,
        "reasons": dict(summary.not_judged_reasons),
        "report": report,
    }


def failure_record(
    kind: str, v: Any, report: str, reproduce: list[str], opt: Any, before: Any = None, describe: Any = None
) -> dict[str, Any]:
    """The failing outcome ``v`` of a ``kind`` check (its report already rendered) as a record, with
    the same fields for every kind; ``before`` the first failing outcome found before shrinking;
    ``describe(case, opt)`` the case's fields for a kind whose cases are not networks."""
    lines = report.splitlines()
    # where the two part: a first-order or training "Parts from ... layer l" line, or the layer the
    # backward R-pass reaches first (second order); a data-parallel failure names ranks, not layers
    parts = next((line for line in lines if line.startswith(("Parts from", "Layers whose blocks differ"))), None)
    layer = re.search(r"reaches layer (\d+)" if parts and parts.startswith("Layers") else r"layer (\d+)", parts or "")
    step = getattr(v, "step", 0) or None
    return {
        "passed": False,
        "kind": kind,
        "verdict": v.kind,
        "what": v.what,
        "case": _case(v, opt) if describe is None else describe(v.case, opt),
        "rows": _rows(v),
        "step": step,
        "layer": int(layer.group(1)) if layer else None,
        "parts": parts,
        "diagnosis": [line.removeprefix("Diagnosis: ") for line in lines if line.startswith("Diagnosis:")],
        "blame": next((line.removeprefix("Blame: ") for line in lines if line.startswith("Blame:")), None),
        # the sentences beyond the parting layer and the diagnosis (those have their own fields)
        "findings": [f for f in getattr(v, "findings", ()) if not f.startswith(("Diagnosis:", "Parts from"))],
        "detail": getattr(v, "detail", ""),
        "reproduce": [line.removeprefix("    ") for line in reproduce[1:]],
        # as the report's "Before shrinking:" lines: none where the first case found is the minimal one
        "before_shrinking": None
        if before is None or repr(before.case) == repr(v.case)
        else _before(before, describe, opt),
        "report": report,
    }


def _short(x: float | str) -> str:
    return x if isinstance(x, str) else f"{x:.3g}"


def summary_record(summary: Any) -> dict[str, Any]:
    """A passing check's record: what it covered."""
    return {"passed": True, "kind": summary.kind, "covered": summary.to_dict(), "report": str(summary)}


def markdown(record: dict[str, Any], title: str) -> str:
    """The record for sharing: a heading, the verdict, a table of the arrays, the report in a code block."""
    lines = [f"# {title}", ""]
    if record["passed"]:
        c = record["covered"]
        lines += [
            f"**Passed**: {c['examples']} examples on {c['networks']} networks ({c['dtype']}, {c['device']}), "
            f"{c['seconds']} s.",
            "",
            "| covered | |",
            "|---|---|",
        ]
        for key in ("activations", "output_loss_pairs", "bias", "reductions", "batch_sizes", "targets"):
            lines.append(f"| {key.replace('_', ' ')} | {c[key]} |")
        lines.append(f"| largest share of the tolerance used | {_short(c['largest_share_of_tolerance'])} |")
        return "\n".join(lines) + "\n"
    if record["verdict"] == "not judged" and "case" not in record:
        return "\n".join([*lines, f"**Not judged** ({record['kind']})", "", "```", record["report"], "```"]) + "\n"
    case = record["case"]
    lines += [
        f"**Failed** ({record['kind']}: {record['verdict']}) on `{case['spec']}`, N={case['N']}, {case['dtype']}.",
        "",
    ]
    if record["parts"]:
        lines += [record["parts"] + ".", ""]
    for d in record["diagnosis"]:
        lines += [f"Diagnosis: {d}", ""]
    if record["blame"]:
        lines += [f"Blame: {record['blame']}", ""]
    seen = record.get("before_shrinking")
    if seen:
        lines += [
            f"Before shrinking: the first failing case found (`{seen['spec']}`, N={seen['N']}) parted by a largest "
            f"relative difference of {_short(seen['largest_relative_difference'])} (at {seen['array']}).",
            "",
        ]
    if record["rows"]:
        lines += ["| array | status | max abs | max rel | worst at | diff/tol |", "|---|---|---|---|---|---|"]
        for r in record["rows"]:
            lines.append(
                f"| {r['name']} | {r['status']} | {_short(r['max_abs'])} | {_short(r['max_rel'])} | "
                f"{tuple(r['worst'])} | {_short(r['share_of_tolerance'])} |"
            )
        lines.append("")
    lines += [
        "Reproduce:",
        "",
        "```python",
        *record["reproduce"],
        "```",
        "",
        "Full report:",
        "",
        "```",
        record["report"],
        "```",
    ]
    return "\n".join(lines) + "\n"
