"""How NumPy's OpenBLAS threads disturb torch's, and which way of timing both keeps them apart.

    python benchmarks/interference.py [--rounds 30] [--case 784-128-10/b64] [--dtype float64] [--json PATH]

Each option runs in a fresh interpreter (its own OpenBLAS and torch thread pools) and times
interleaved rounds (benchmarks/rounds.py) of the case's implementations; the figure of merit is
manual_torch / autograd_module, which does not involve NumPy at all and should therefore not move
when manual_numpy joins the rounds:

- ``torch_only``: manual_torch, autograd_module, autograd_functional; no NumPy in the rounds.
- ``numpy_inline``: manual_numpy joins the rounds, nothing else done.
- ``numpy_pause``: as inline, with a pause after every manual_numpy block (``--pause``, default 0.2 s).
- ``numpy_timeout``: as inline, in an interpreter started with ``OPENBLAS_THREAD_TIMEOUT=4`` (OpenBLAS
  worker threads wait 2**4 cycles, not 2**28, before they sleep).
- ``numpy_process``: manual_numpy's block runs in a child process (its own OpenBLAS); the parent,
  which never calls NumPy's BLAS, waits for it.
- ``numpy_settle``: ``OPENBLAS_THREAD_TIMEOUT=22`` (2**22 cycles, about a millisecond: NumPy's
  threads stay awake between the BLAS calls of one step and are asleep soon after its block) and a
  10 ms sleep before and after every manual_numpy block (torch's OpenMP threads, which spin a while
  after their last call, are asleep before NumPy starts).

Besides manual_torch's ratio, the spread of manual_numpy's own ratio tells whether NumPy is timed
fairly (its time per step is comparable between options only in spirit: each option is a fresh
process, and the same NumPy step runs at one of two speeds in a given process).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _cli import at_least, check_outputs, description, positive

HERE = Path(__file__).resolve().parent
OPTIONS = ("torch_only", "numpy_inline", "numpy_pause", "numpy_timeout", "numpy_process", "numpy_settle")


def _child_env(option: str) -> dict[str, str]:
    """The option's environment: OpenBLAS's thread timeout as the option says, never inherited (this
    process has imported train_step.py, which sets one for its own runs)."""
    env = dict(os.environ)
    env.pop("OPENBLAS_THREAD_TIMEOUT", None)
    if option == "numpy_timeout":
        env["OPENBLAS_THREAD_TIMEOUT"] = "4"
    if option == "numpy_settle":
        env["OPENBLAS_THREAD_TIMEOUT"] = "22"
    return env


def measure(option: str, case: str, dtype: str, rounds: int, pause: float, block_s: float) -> dict:
    """Run one option in a fresh interpreter; returns its per-implementation ratio summaries."""
    cmd = [sys.executable, str(HERE / "interference.py"), "--_one", option, "--case", case, "--dtype", dtype]
    cmd += ["--rounds", str(rounds), "--pause", str(pause), "--block", str(block_s)]
    out = subprocess.run(cmd, env=_child_env(option), capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"interference.py: option {option} failed in its interpreter:\n{out.stderr.strip()}")
    return json.loads(out.stdout.splitlines()[-1])


def _one(option: str, case_name: str, dtype: str, rounds: int, pause: float, block_s: float) -> dict:
    import numpy as np
    from impls import BUILDERS
    from numpy_worker import NumpyWorker
    from rounds import Spread, block, interleaved, ratios
    from train_step import CASES

    from torch_ref.strategies import data_for, params_for

    case = next(c for c in CASES if c.name == case_name)
    rng = np.random.default_rng(0)
    params = params_for(case.spec, rng, dtype=np.dtype(dtype))
    X, Y = data_for(case.spec, case.N, rng, dtype=np.dtype(dtype))
    names = ["manual_torch", "autograd_module", "autograd_functional"]
    blocks = {n: block(BUILDERS[n](case.spec, params, X, Y, 0.01, "cpu"), block_s=block_s) for n in names}
    settle = {}
    worker = None
    if option != "torch_only":
        if option == "numpy_process":
            worker = NumpyWorker(case.spec, case.N, dtype, block_s)
            blocks = {"manual_numpy": worker.block, **blocks}
        else:
            step = BUILDERS["manual_numpy"](case.spec, params, X, Y, 0.01, "cpu")
            blocks = {"manual_numpy": block(step, block_s=block_s), **blocks}
        if option == "numpy_pause":
            settle["manual_numpy"] = pause / 2  # half before, half after: the pause in all
        if option == "numpy_settle":
            settle["manual_numpy"] = 0.01
    start = time.perf_counter()
    times = interleaved(blocks, rounds=rounds, settle=settle)
    wall = time.perf_counter() - start
    if worker is not None:
        worker.close()
    r = ratios(times, "autograd_module")
    return {
        "option": option,
        "wall_s": wall,
        "ratio": {n: Spread.of(v).as_dict() for n, v in r.items()},
        "median_s": {n: float(np.median(v)) for n, v in times.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    from train_step import CASES  # the benchmark's own cases

    parser.add_argument("--case", default="784-128-10/b64", choices=[c.name for c in CASES], help="the case measured")
    parser.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds per option (at least 3)")
    parser.add_argument("--pause", type=float, default=0.2, help="numpy_pause's pause in seconds")
    parser.add_argument("--block", type=float, default=0.02, help="seconds per timed block")
    parser.add_argument(
        "--options", default=",".join(OPTIONS), help=f"comma-separated, from {', '.join(OPTIONS)} (default all)"
    )
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--_one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    at_least(parser, "--rounds", args.rounds, 3)
    positive(parser, "--block", args.block)
    options = [o.strip() for o in args.options.split(",") if o.strip()]
    unknown = [o for o in options if o not in OPTIONS]
    if unknown or not options:
        parser.error(f"--options: unknown {unknown or options}; the options are {list(OPTIONS)}")
    if args._one:
        print(json.dumps(_one(args._one, args.case, args.dtype, args.rounds, args.pause, args.block)))
        return 0
    check_outputs(parser, args.json, None)
    print(f"{args.case}, {args.dtype}, {args.rounds} interleaved rounds per option, each in a fresh interpreter")
    results = []
    for option in options:
        res = measure(option, args.case, args.dtype, args.rounds, args.pause, args.block)
        results.append(res)
        mt = res["ratio"]["manual_torch"]
        line = f"{option:<14} manual_torch/autograd_module {mt['median']:.3f} (IQR {mt['lo']:.3f}-{mt['hi']:.3f}, range {mt['min']:.3f}-{mt['max']:.3f})"
        if "manual_numpy" in res["ratio"]:
            mn = res["ratio"]["manual_numpy"]
            us = res["median_s"]["manual_numpy"] * 1e6
            line += f"  manual_numpy {mn['median']:.3f} ({mn['lo']:.3f}-{mn['hi']:.3f}; {us:.0f} us a step)"
        print(line + f"  wall {res['wall_s']:.1f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"case": args.case, "dtype": args.dtype, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
