"""The engine's cost per case, two source trees side by side: ``check_case`` on one 32-48-24-10
tanh/softmax/ce case (N = 16, float64), and the per-example seconds of whole runs of
``check_derivation`` and ``check_hvp`` (50 drawn cases, seed 0). Each tree is measured in its own
subprocess (``PYTHONPATH`` set to the tree), in interleaved rounds (A B, then B A, ...), so that a
drift of the machine falls on both alike; the report gives each round's ratio (tree B over tree A)
and their median. Only the public API is called, so a tree from before a refactor runs it too.

    python benchmarks/engine_cost.py BEFORE_TREE AFTER_TREE --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

_MEASURE = r"""
import json, time, warnings
import numpy as np
import manual, torch_ref
from torch_ref.strategies import case_from

warnings.simplefilter("ignore")
spec = manual.Spec((32, 48, 24, 10), ("tanh", "tanh", "softmax"), "ce", bias=True)
case = case_from(spec, N=16, seed=0)
torch_ref.check_case(manual.gradients, case)  # warm-up
times = []
for _ in range(200):
    start = time.perf_counter()
    torch_ref.check_case(manual.gradients, case)
    times.append(time.perf_counter() - start)
out = {"check_case_ms": 1e3 * float(np.median(times))}
for name, check, fn in (("check_derivation", torch_ref.check_derivation, manual.gradients),
                        ("check_hvp", torch_ref.check_hvp, manual.hvp)):
    start = time.perf_counter()
    summary = check(fn, max_examples=50, seed=0)
    out[name + "_ms_per_example"] = 1e3 * (time.perf_counter() - start) / summary.examples
    out[name + "_examples"] = summary.examples
print(json.dumps(out))
"""


def measure(tree: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE], env=env, cwd=tree, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("before", type=Path, help="the tree measured as A (e.g. a worktree of an older commit)")
    parser.add_argument("after", type=Path, help="the tree measured as B")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rounds = []
    for k in range(args.rounds):
        order = [("A", args.before), ("B", args.after)]
        got = dict((label, measure(tree)) for label, tree in (order if k % 2 == 0 else order[::-1]))
        rounds.append(got)
        print(f"round {k + 1}: " + "; ".join(f"{label} {json.dumps(v)}" for label, v in sorted(got.items())))
    keys = [k for k in rounds[0]["A"] if not k.endswith("_examples")]
    summary = {}
    for key in keys:
        a = [r["A"][key] for r in rounds]
        b = [r["B"][key] for r in rounds]
        ratios = [y / x for x, y in zip(a, b)]
        summary[key] = {
            "A_median": float(np.median(a)),
            "B_median": float(np.median(b)),
            "ratio_B_over_A_median": float(np.median(ratios)),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
        }
        print(
            f"{key:36s} A {np.median(a):8.2f}  B {np.median(b):8.2f}  B/A median {np.median(ratios):.3f} "
            f"(rounds {min(ratios):.3f}-{max(ratios):.3f})"
        )
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
