"""Networks campaigns: manual's whole-network gradients on many random architectures (false alarms), and
every placed whole-network mistake on them (adversarial).

``false-alarms``: ``--cases`` cases per family (mlp, cnn, transformer) and dtype, drawn by
:func:`torch_ref.networks.draw.network_cases`, each judged by :func:`torch_ref.networks.judge.judge`
(the judge ``check_network`` calls, so that every case is counted) with manual's gradients
(``net.gradients``). A right derivation must end as ``agree`` or ``not judged``; a ``mismatch`` or a
crash is a false alarm, printed with the Python that rebuilds its case.

``adversarial``: on each drawn case, every mistake of :func:`torch_ref.networks.mistakes.catalogue`
placed in that network (the residual gradient not added, normalization statistics over the wrong axis,
the attention's mask left out, pooling misrouted, and each built-in layer's published mistakes, at every
place they fit). A mistake passing a case (``agree``) is ``ACCEPTED``; one whose gradients equal the
right ones on the case (a mistake with no effect there, e.g. dilation ignored where the dilation is 1)
is counted apart as ``no effect``, and one whose float64 gradients lie within the case's bound of the
right ones as ``within rounding`` (no computation in that dtype can tell it from a right derivation
there: eps outside the square root where the variance dwarfs eps, a bias before a batch norm, whose
gradient is 0), and one within twice the bound as ``within 2x`` (a right computation of the wrong
formula rounds by up to a bound of its own, so it may land within the right one's: no check with that
allowance can catch every computation of it); ``not judged`` is counted apart (never a pass). Only a
mistake more than twice the bound from the right gradients is ACCEPTED when it passes.

Cases come from Hypothesis' generate phase (no database), one seed per chunk (from ``--seed``, the family,
the dtype and the chunk), chunks dealt to ``--workers`` processes. Exit status 1 on any false alarm or
accepted mistake.

    python scripts/network_campaign.py false-alarms [--cases 1700] [--dtypes float64 float32] [--workers 2] \
        [--seed 0] [--families mlp cnn transformer] [--json PATH]
    python scripts/network_campaign.py adversarial [--cases 100] [...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from collections import Counter
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

DTYPES = ("float64", "float32")
FAMILIES = ("mlp", "cnn", "transformer")
CHUNK = 50
SAVED = 10


def _right(net: Any, params: Any, X: Any, Y: Any, masks: Any = None) -> Any:
    return net.gradients(params, X, Y, masks=masks)


def _draw(family: str, dtype: str, n: int, seed: int) -> list[Any]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fix

    from torch_ref.networks.draw import network_cases

    out: list[Any] = []

    @fix(seed)
    @settings(
        max_examples=n, database=None, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck)
    )
    @given(network_cases((family,), np.dtype(dtype)))
    def collect(case: Any) -> None:
        out.append(case)

    collect()
    return out[:n]


def run_job(job: tuple[str, str, str, int, int]) -> dict[str, Any]:
    from torch_ref.networks.judge import judge, reference_of
    from torch_ref.networks.mistakes import catalogue

    mode, family, dtype, n, seed = job
    tally: dict[str, Any] = {
        "family": family,
        "dtype": dtype,
        "kinds": Counter(),
        "failures": [],
        "worst": 0.0,
        "reasons": Counter(),
    }
    per_mistake: dict[str, Counter] = {}
    for case in _draw(family, dtype, n, seed):
        traced = reference_of(case)
        if mode == "false-alarms":
            v = judge(_right, case, "numpy", "cpu", dtype, traced)
            tally["kinds"][v.kind] += 1
            if v.kind == "agree" and v.comparison is not None:
                tally["worst"] = max(tally["worst"], v.comparison.worst_share)
            if v.kind == "not judged":
                tally["reasons"][v.detail.split(":")[0][:120]] += 1
            if v.kind not in ("agree", "not judged") and len(tally["failures"]) < SAVED:
                tally["failures"].append(
                    {"case": case.rebuild(), "kind": v.kind, "detail": (v.detail or str(v.comparison))[:2000]}
                )
            continue
        right = judge(_right, case, "numpy", "cpu", dtype, traced)
        for placed in catalogue(case.net):
            kind = placed.name.split(", in ")[0]
            counts = per_mistake.setdefault(kind, Counter())

            def grad_fn(net: Any, params: Any, X: Any, Y: Any, masks: Any = None, _p: Any = placed) -> Any:
                return _p.net.gradients(params, X, Y, masks=masks)

            try:
                v = judge(grad_fn, case, "numpy", "cpu", dtype, traced)
            except Exception as exc:  # the mistake cannot run on these shapes
                counts[f"cannot run ({type(exc).__name__})"] += 1
                continue
            verdict = v.kind
            if verdict == "agree":
                same = all(np.array_equal(v.values[k], right.values[k]) for k in v.values) if right.values else False
                share = _share(placed, case, traced, dtype)
                verdict = (
                    "no effect"
                    if same
                    else "within rounding"
                    if share <= 1
                    else "within 2x"
                    if share <= 2
                    else "ACCEPTED"
                )
                if verdict == "ACCEPTED" and len(tally["failures"]) < SAVED:
                    tally["failures"].append(
                        {
                            "case": case.rebuild(),
                            "mistake": placed.name,
                            "share": v.comparison.worst_share if v.comparison else None,
                        }
                    )
            counts["caught" if verdict in ("mismatch", "crash", "type") else verdict] += 1
    tally["mistakes"] = {k: dict(c) for k, c in per_mistake.items()}
    tally["kinds"] = dict(tally["kinds"])
    tally["reasons"] = dict(tally["reasons"])
    return tally


def _share(placed: Any, case: Any, traced: Any, dtype: str) -> float:
    """The mistake's own gradients, in float64, as a share of the case's bound from the right ones (the
    largest over every entry). At most 1: no computation in ``dtype`` can tell it from a right
    derivation there. At most 2: a right computation of the wrong formula rounds by up to one bound
    too, so it may land within the right one's bound; only beyond 2 must every computation of it fail."""
    names = list(case.net.parameters())
    X = case.X if case.X.dtype.kind == "i" else case.X.astype(np.float64)
    Y = case.Y if case.Y.dtype.kind == "i" else case.Y.astype(np.float64)
    got = placed.net.gradients(case.params_as(np.float64), X, Y, masks=dict(case.masks) or None)
    worst = 0.0
    for k in names:
        diff = np.abs(np.asarray(got[k]) - traced.grads[k].numpy())
        bound = traced.bound(k, np.dtype(dtype)).numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(diff == 0, 0.0, diff / bound)
        worst = max(worst, float(share.max()) if share.size else 0.0)
    return worst


def _seed(seed: int, family: str, dtype: str, chunk: int) -> int:
    return int(hashlib.sha256(f"{seed}/{family}/{dtype}/{chunk}".encode()).hexdigest()[:8], 16)


def campaign(
    mode: str, families: list[str], dtypes: list[str], cases: int, seed: int, workers: int, partial: Path | None = None
) -> list[dict[str, Any]]:
    jobs = []
    for c, start in enumerate(range(0, cases, CHUNK)):  # chunk by chunk across (family, dtype): a run cut
        for family in families:  # short has met every family in every dtype
            for dtype in dtypes:
                jobs.append((mode, family, dtype, min(CHUNK, cases - start), _seed(seed, family, dtype, c)))
    parts = []
    with Pool(workers) as pool:
        for part in pool.imap_unordered(run_job, jobs, chunksize=1):
            parts.append(part)
            if partial is not None:  # each chunk as it ends: a run cut short keeps what it judged
                with partial.open("a") as out:
                    out.write(json.dumps(part) + "\n")
            done = sum(sum(p["kinds"].values()) for p in parts)
            print(f"  {len(parts)}/{len(jobs)} chunks, {done} cases judged", file=sys.stderr, flush=True)
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for p in parts:
        m = merged.setdefault(
            (p["family"], p["dtype"]),
            {
                "family": p["family"],
                "dtype": p["dtype"],
                "kinds": Counter(),
                "failures": [],
                "worst": 0.0,
                "reasons": Counter(),
                "mistakes": {},
            },
        )
        m["kinds"].update(p["kinds"])
        m["reasons"].update(p["reasons"])
        m["worst"] = max(m["worst"], p["worst"])
        m["failures"] += p["failures"][: SAVED - len(m["failures"])]
        for k, c in p.get("mistakes", {}).items():
            m["mistakes"].setdefault(k, Counter()).update(c)
    return [
        {
            **m,
            "kinds": dict(m["kinds"]),
            "reasons": dict(m["reasons"]),
            "mistakes": {k: dict(c) for k, c in m["mistakes"].items()},
        }
        for m in merged.values()
    ]


def report(mode: str, tallies: list[dict[str, Any]]) -> list[str]:
    lines = []
    if mode == "false-alarms":
        lines.append(
            f"{'family':<12} {'dtype':<8} {'cases':>6} {'agree':>6} {'not judged':>10} {'false alarms':>12} {'largest share':>13}"
        )
        for t in tallies:
            k = t["kinds"]
            n = sum(k.values())
            false = n - k.get("agree", 0) - k.get("not judged", 0)
            lines.append(
                f"{t['family']:<12} {t['dtype']:<8} {n:>6} {k.get('agree', 0):>6} {k.get('not judged', 0):>10} {false:>12} {t['worst']:>13.3g}"
            )
            for reason, c in t["reasons"].items():
                lines.append(f"    not judged {c}: {reason}")
        return lines
    totals: dict[str, Counter] = {}
    for t in tallies:
        for k, c in t["mistakes"].items():
            totals.setdefault(k, Counter()).update(c)
    lines.append(
        f"{'mistake':<100} {'caught':>7} {'ACCEPTED':>8} {'no effect':>9} {'within rounding':>15} {'within 2x':>9} "
        f"{'not judged':>10} {'cannot run':>10}"
    )
    for k in sorted(totals):
        c = totals[k]
        cannot = sum(v for key, v in c.items() if key.startswith("cannot run"))
        lines.append(
            f"{k[:100]:<100} {c.get('caught', 0):>7} {c.get('ACCEPTED', 0):>8} {c.get('no effect', 0):>9} "
            f"{c.get('within rounding', 0):>15} {c.get('within 2x', 0):>9} {c.get('not judged', 0):>10} {cannot:>10}"
        )
    return lines


def _provenance() -> dict[str, Any]:
    import platform

    import torch

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"commit": commit, "torch": torch.__version__, "python": platform.python_version(), "cpu": cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("mode", choices=("false-alarms", "adversarial"))
    parser.add_argument("--cases", type=int, default=1700, help="cases per family and dtype")
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=DTYPES)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--partial", type=Path, default=None, help="append each chunk's counts here as it ends (JSON lines)"
    )
    args = parser.parse_args(argv)
    provenance = _provenance()  # the code the run judges with: read before it starts
    start = time.perf_counter()
    tallies = campaign(args.mode, args.families, args.dtypes, args.cases, args.seed, args.workers, args.partial)
    seconds = time.perf_counter() - start
    lines = report(args.mode, tallies)
    total = sum(sum(t["kinds"].values()) for t in tallies) if args.mode == "false-alarms" else None
    bad = [f for t in tallies for f in t["failures"]]
    lines.append(
        f"{args.mode}: {total if total is not None else '-'} cases, {len(bad)} failures kept, {seconds:.0f} s, {args.workers} workers"
    )
    for f in bad:
        lines.append(f"  {json.dumps(f)[:600]}")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "mode": args.mode,
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "seconds": seconds,
                    "provenance": provenance,
                    "tallies": tallies,
                },
                indent=1,
            )
            + "\n"
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
