"""False-alarm campaign: many random *correct* cases, none of which may be reported as a mismatch.

Each case draws a network (depth 1-5, widths 1-12, every activation, loss pair, bias, reduction),
float64 or float32, in one of three regimes: ``normal`` (weights at gain 0.5-2), ``grid`` (weights
and inputs on the 1/4 grid, where ReLU inputs of exactly 0 are common) and ``saturated`` (gain 4-8,
inputs scaled by 3: sigmoid, tanh and softmax outputs that round to 0 or 1). It compares
manual.gradients and manual.deltas with the float64 autograd reference under the derived
tolerances. Exit status 1 if any case fails; each failure is printed with what rebuilds it.

    python scripts/false_alarm_campaign.py [--cases 100000] [--workers 2] [--seed 0] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from multiprocessing import Pool

REGIMES = ("normal", "grid", "saturated")


def draw_case(seed: int, k: int):
    """Case ``k`` of the campaign with ``seed``: (spec, params, X, Y, label), from its own Generator."""
    import numpy as np

    from torch_ref.strategies import data_for, params_for, random_spec

    rng = np.random.default_rng([seed, k])
    spec = random_spec(rng)
    dtype = np.float64 if k % 2 == 0 else np.float32
    regime = REGIMES[k % 3]
    N = int(rng.integers(1, 9))
    if regime == "normal":
        gain = float(rng.choice([0.5, 1.0, 2.0]))
    elif regime == "saturated":
        gain = float(rng.choice([4.0, 8.0]))
    else:
        gain = 1.0
    params = params_for(spec, rng, grid=regime == "grid", gain=gain, dtype=dtype)
    X, Y = data_for(spec, N, rng, grid=regime == "grid", dtype=dtype)
    if regime == "saturated":
        X = (X * 3).astype(dtype)
    return spec, params, X, Y, f"{np.dtype(dtype).name}/{regime}"


def _check_chunk(args: tuple[int, int, int]) -> dict:
    seed, start, count = args
    import torch

    torch.set_num_threads(1)
    from torch_ref.crosscheck import crosscheck_deltas, crosscheck_gradients

    stats: dict = {"cases": 0, "failures": [], "conventions": 0, "worst_share": 0.0, "by": {}}
    for k in range(start, start + count):
        spec, params, X, Y, key = draw_case(seed, k)
        stats["by"][key] = stats["by"].get(key, 0) + 1
        stats["cases"] += 1
        for check in (crosscheck_gradients(spec, params, X, Y), crosscheck_deltas(spec, params, X, Y)):
            stats["worst_share"] = max(stats["worst_share"], check.worst_share)
            stats["conventions"] += bool(check.conventions)
            if not check.ok:
                stats["failures"].append(
                    f"case {k} ({key}); rebuild it with scripts/false_alarm_campaign.py's "
                    f"draw_case({seed}, {k}):\n{check}")
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    if args.cases < 1 or args.workers < 1:
        parser.error("--cases and --workers must be >= 1")
    chunk = 500
    jobs = [(args.seed, s, min(chunk, args.cases - s)) for s in range(0, args.cases, chunk)]
    start = time.perf_counter()
    total = {"cases": 0, "failures": [], "conventions": 0, "worst_share": 0.0, "by": {}}
    with Pool(args.workers) as pool:
        for n, stats in enumerate(pool.imap_unordered(_check_chunk, jobs), start=1):
            total["cases"] += stats["cases"]
            total["failures"] += stats["failures"]
            total["conventions"] += stats["conventions"]
            total["worst_share"] = max(total["worst_share"], stats["worst_share"])
            for key, count in stats["by"].items():
                total["by"][key] = total["by"].get(key, 0) + count
            sys.stderr.write(f"\r{total['cases']}/{args.cases} cases, {len(total['failures'])} failures")
    sys.stderr.write("\n")
    seconds = time.perf_counter() - start
    for failure in total["failures"][:10]:
        print(failure)
    print(f"{total['cases']} cases ({', '.join(f'{k} {v}' for k, v in sorted(total['by'].items()))}), "
          f"gradients and deltas each: {len(total['failures'])} failures; {total['conventions']} checks under a "
          f"named convention; largest share of the tolerance used {total['worst_share']:.3g}; "
          f"{seconds:.0f} s with {args.workers} workers")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({**total, "seconds": seconds, "workers": args.workers, "seed": args.seed}, fh, indent=1)
    return 1 if total["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
