"""False-alarm campaign for second order: right Hessian-vector and Gauss-Newton products on many
random cases, none of which may be called wrong by the second-order tolerance model.

The cases are the first-order campaign's (scripts/false_alarm_campaign.py ``draw_case``: depth 1-5,
widths 1-12, every built-in activation and loss pair, float64 and float32, in the regimes
``normal``, ``grid`` with constructed ReLU kinks, and ``saturated``), each with a direction V drawn
by ``torch_ref.direction``. Two right implementations of each product are compared with the float64
references under :func:`torch_ref.second_order.tolerance.bounds`:

- ``manual``: :func:`manual.hvp` / :func:`manual.gnvp` on the case's NumPy arrays;
- ``torch``: torch's own double backward (H V) and jvp/vjp (Gauss-Newton), computed in the case's
  dtype, an evaluation order that is not manual's.

Exit status 1 if any finite result is outside the bound (each printed with its case number). A result
with inf or nan where the reference is finite is counted apart, by product, output/loss pair and
regime; a case whose float64 reference or bound is not finite is counted as not judged.

    python scripts/second_order_campaign.py [--cases 2000] [--seed 0] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter

import numpy as np
from false_alarm_campaign import draw_case

import manual
from torch_ref.numerics.compare import compare
from torch_ref.second_order.check import direction
from torch_ref.second_order.products import gnvp_reference, hvp_reference, parts
from torch_ref.second_order.tolerance import bounds


def check_case(seed: int, k: int) -> list[tuple[str, str, float]]:
    """(label, product/implementation, largest share of the bound used) for case ``k``."""
    case, label = draw_case(seed, k)
    spec = case.spec
    V = direction(case)
    p = parts(spec, case.params, case.X, case.Y)
    dtype = case.X.dtype
    out = []
    for kind, ref, mine in (("hvp", hvp_reference, manual.hvp), ("gnvp", gnvp_reference, manual.gnvp)):
        want_p = ref(spec, case.params, case.X, case.Y, V)
        names = [n for n, _ in want_p.arrays()]
        want = [a for _, a in want_p.arrays()]
        allowed = bounds(spec, case.params, case.X, case.Y, V, p, kind)
        if not all(np.all(np.isfinite(a)) for a in want + allowed):
            # the float64 reference (or its bound) overflowed: y* so saturated that the loss's
            # second derivative in y* is not a float64 number; nothing to judge against
            out.append((label, f"{kind}/not judged", float("nan")))
            continue
        with np.errstate(all="ignore"):  # an overflow is counted below, not warned about
            results = (
                ("manual", mine(spec, case.params, case.X, case.Y, V)),
                ("torch", ref(spec, case.params, case.X, case.Y, V, dtype=dtype)),
            )
        for impl, got_p in results:
            got = [a for _, a in got_p.arrays()]
            if not all(np.all(np.isfinite(a)) for a in got):
                # an overflow (inf or nan) where the reference is finite: counted apart from the
                # bound's verdicts, with the pair named (see the README)
                out.append((label, f"{kind}/{impl} overflow", float("nan")))
                continue
            comparison = compare(names, got, want, allowed)
            out.append((label, f"{kind}/{impl}", comparison.worst_share if comparison.ok else float("inf")))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the counts here")
    args = parser.parse_args(argv)
    if args.cases < 1:
        parser.error(f"--cases must be at least 1, got {args.cases}")
    start = time.perf_counter()
    worst: dict[str, float] = {}
    checked: Counter = Counter()
    failures = []
    overflows: Counter = Counter()
    for k in range(args.cases):
        case, _ = draw_case(args.seed, k)
        pair = f"{case.spec.activations[-1].name}+{case.spec.loss.name}"
        for label, what, share in check_case(args.seed, k):
            checked[what] += 1
            if what.endswith(("not judged", "overflow")):
                if what.endswith("overflow"):
                    overflows[f"{what.split()[0]} {pair} {label}"] += 1
                continue
            worst[what] = max(worst.get(what, 0.0), share)
            if not share <= 1:
                failures.append((k, label, what))
                print(f"case {k} ({label}): {what} outside the bound: draw_case({args.seed}, {k})", flush=True)
        if (k + 1) % 500 == 0:
            print(f"{k + 1} cases", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    print(f"{args.cases} cases (seed {args.seed}) in {seconds:.0f} s; outside the bound {len(failures)}")
    for what in sorted(checked):
        if what.endswith("not judged"):
            print(f"  {what:<16} {checked[what]:>7} cases whose float64 reference or bound overflowed")
        elif what.endswith("overflow"):
            print(f"  {what:<16} {checked[what]:>7} cases where it returned inf or nan and the reference is finite")
        else:
            print(f"  {what:<16} {checked[what]:>7} checked, largest share of the bound used {worst[what]:.3g}")
    for what, count in sorted(overflows.items()):
        print(f"  overflow: {what}: {count}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "cases": args.cases,
                    "seed": args.seed,
                    "seconds": seconds,
                    "checked": dict(checked),
                    "worst_share": worst,
                    "failures": failures,
                    "overflows": dict(overflows),
                },
                fh,
                indent=1,
            )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
