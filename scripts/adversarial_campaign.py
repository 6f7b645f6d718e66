"""Adversarial campaign: wrong results confined to the regime of each allowance; none may be accepted.

The false-alarm campaign shows that right derivations pass. This one shows the other half: every
allowance the tolerance model grants (torch's bce floor, saturated outputs, kinks, the trajectory
bound of a training loop, the second-order bound, the data-parallel shards) is tried with wrong
results written to hide inside it: wrong only in the rows, entries or steps where the allowance
applies, in float64 and float32. Each family draws its cases in its own regime (cases outside it,
where the wrong result would equal the right one, are skipped and counted), and judges the wrong
result with the check a user calls on one case.

A family's cases end as ``caught`` (the check fails: mismatch, unstable, ...), ``not judged`` (the
check says it could not judge the case; never a pass) or ``ACCEPTED`` (the check passed a wrong
result). Exit status 1 if any wrong result is accepted, or if a family judged none of its cases.

    python scripts/adversarial_campaign.py [--cases 40] [--seed 0] [--family NAME ...] [--json PATH]

``--cases`` is per family and dtype. The wrong results themselves are in ``tests/adversaries_*.py``,
each with a docstring naming the allowance it hides in; the tests use the same ones.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

DTYPES = ("float64", "float32")


@dataclass
class Tally:
    """One family in one dtype: how its cases ended."""

    family: str
    dtype: str
    drawn: int = 0
    outside: int = 0  # drawn cases where the regime was not met (the wrong result equals the right one)
    indistinct: int = 0  # wrong results within 1% of the right one there (adversaries_campaign.DISTINCT)
    caught: dict[str, int] = field(default_factory=dict)
    not_judged: int = 0
    accepted: list[str] = field(default_factory=list)

    @property
    def judged(self) -> int:
        return sum(self.caught.values()) + len(self.accepted)

    def row(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.caught.items())) or "-"
        return (
            f"{self.family:<34} {self.dtype:<8} {self.drawn:>5} {self.outside:>7} {self.indistinct:>10} {self.judged:>6} "
            f"{self.not_judged:>9} {len(self.accepted):>8}   {kinds}"
        )


def run(families: list[Any], cases: int, seed: int) -> list[Tally]:
    out = []
    for family in families:
        for dtype in DTYPES:
            tally = Tally(family.name, dtype)
            for k in range(cases):
                tally.drawn += 1
                for label, outcome in family.trials(seed, k, dtype):
                    if outcome == "outside":
                        tally.outside += 1
                    elif outcome == "indistinct":
                        tally.indistinct += 1
                    elif outcome == "not judged":
                        tally.not_judged += 1
                    elif outcome == "accepted":
                        tally.accepted.append(f"{label} (case {k}, seed {seed})")
                    else:
                        tally.caught[outcome] = tally.caught.get(outcome, 0) + 1
            out.append(tally)
            print(tally.row(), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    import adversaries_campaign as A  # tests/adversaries_campaign.py: the families

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=40, help="cases per family and dtype (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--family", nargs="*", default=None, help="run only these families")
    parser.add_argument("--json", type=Path, default=None, help="write the counts here as JSON")
    args = parser.parse_args(argv)
    known = {f.name: f for f in A.FAMILIES}
    if args.family:
        unknown = [n for n in args.family if n not in known]
        if unknown:
            parser.error(f"unknown family {unknown}; known: {', '.join(known)}")
    families = [known[n] for n in args.family] if args.family else list(known.values())
    if args.cases < 1:
        parser.error(f"--cases must be >= 1, got {args.cases}")
    start = time.perf_counter()
    print(
        f"{'family':<34} {'dtype':<8} {'cases':>5} {'outside':>7} {'indistinct':>10} {'judged':>6} {'not judged':>9} {'ACCEPTED':>8}   caught as"
    )
    tallies = run(families, args.cases, args.seed)
    seconds = time.perf_counter() - start
    accepted = [a for t in tallies for a in t.accepted]
    empty = [f"{t.family}/{t.dtype}" for t in tallies if t.judged == 0]
    judged = sum(t.judged for t in tallies)
    print(f"\n{judged} wrong results judged in {seconds:.0f} s; {len(accepted)} accepted")
    for a in accepted:
        print(f"ACCEPTED: {a}")
    if empty:
        print(f"no wrong result judged in: {', '.join(empty)} (the family never met its regime)")
    if args.json is not None:
        record: dict[str, Any] = {
            "cases_per_family_and_dtype": args.cases,
            "seed": args.seed,
            "seconds": round(seconds, 1),
            "accepted": accepted,
            "families": [
                {
                    "family": t.family,
                    "allowance": known[t.family].allowance,
                    "dtype": t.dtype,
                    "drawn": t.drawn,
                    "outside_regime": t.outside,
                    "indistinct": t.indistinct,
                    "judged": t.judged,
                    "not_judged": t.not_judged,
                    "caught": t.caught,
                    "accepted": len(t.accepted),
                }
                for t in tallies
            ],
        }
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 1 if accepted or empty else 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
