"""Where one implementation's training step spends its time: torch.profiler's table of operators.

    python benchmarks/profile_step.py [--case 2048-2048-2048-2048-2048/b512] [--dtype float32]
                                      [--impl manual_torch] [--steps 5] [--rows 12]

The step is built as the benchmark builds it (benchmarks/impls.py), run twice to warm up, then
``--steps`` times under the profiler; the table is sorted by self CPU time, and a last line gives
the share of the matrix products (addmm, addmm_, mm) in the total.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from _cli import at_least, description
from impls import BUILDERS
from memory import quiet_native_stderr
from train_step import CASES

from torch_ref.strategies import data_for, params_for

GEMMS = ("aten::addmm", "aten::addmm_", "aten::mm")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--case", default="2048-2048-2048-2048-2048/b512", choices=[c.name for c in CASES])
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--impl", default="manual_torch", choices=sorted(BUILDERS))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rows", type=int, default=12)
    args = parser.parse_args(argv)
    at_least(parser, "--steps", args.steps, 1)
    case = next(c for c in CASES if c.name == args.case)
    rng = np.random.default_rng(0)
    params = params_for(case.spec, rng, dtype=np.dtype(args.dtype))
    X, Y = data_for(case.spec, case.N, rng, dtype=np.dtype(args.dtype))
    step = BUILDERS[args.impl](case.spec, params, X, Y, 0.01, "cpu")
    for _ in range(2):
        step()
    with quiet_native_stderr(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    averages = prof.key_averages()
    print(f"{args.impl}, {case.name}, {args.dtype}, {args.steps} steps")
    print(averages.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    total = sum(e.self_cpu_time_total for e in averages)
    gemm = sum(e.self_cpu_time_total for e in averages if e.key in GEMMS)
    print(f"matrix products ({', '.join(GEMMS)}): {100 * gemm / total:.1f} % of the self CPU time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
