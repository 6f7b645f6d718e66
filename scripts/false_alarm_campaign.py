"""False-alarm campaign: right derivations on many random cases, none of which may be called wrong.

Right derivations are checked on many random cases; none may be reported as wrong math.

Each case draws a network (depth 1-5, widths 1-12, every activation, loss pair, bias, reduction),
float64 or float32, in one of five regimes: ``normal`` (weights at gain 0.5-2), ``grid`` (weights
and inputs on the 1/4 grid, with constructed ReLU kinks in every ReLU layer half of the time),
``saturated`` (gain 4-8, inputs scaled by 3: sigmoid, tanh and softmax outputs that round to 0 or 1)
``logits`` (the output layer scaled so that max |I^(L)| is 16 to 60: past torch's bce floor and
float32's saturation) and ``hidden`` (every hidden layer scaled in turn so that its max |I^(l)| is 6
to 45: the tails of every hidden activation).

On each case:

- ``manual.gradients`` and ``manual.deltas`` against the float64 autograd reference under the derived
  bound (:mod:`torch_ref.frontends.crosscheck`): every one must agree;
- four right derivations classified by the oracle (:func:`torch_ref.first_order.verdict.classify`): ``manual``
  (manual.gradients), ``exact`` (exact derivatives evaluated stably, no torch floor anywhere),
  ``perturbed`` (manual's gradients moved by a relative 1e-13 in float64, 1e-6 in float32) and
  ``naive`` (the slides' general formulas evaluated as written). The first three must be agree or
  precision; ``naive`` may also be unstable, never a mismatch.

Exit status 1 if any of that fails; each failure is printed with what rebuilds it.

    python scripts/false_alarm_campaign.py [--cases 100000] [--workers 2] [--seed 0] [--json PATH]
    torchrun --nproc-per-node K [--nnodes M --node-rank R --rdzv-backend c10d --rdzv-endpoint HOST:PORT] \
        scripts/false_alarm_campaign.py --cases C

Under torchrun (or ``python -m torch.distributed.run``) the chunks of case numbers are dealt to the
ranks in turn, so every case is checked exactly once; rank 0 gathers the counts (gloo) and writes the
one report, whose JSON gains ``world_size``; ``cases`` is the total. Each rank runs one process unless
``--workers`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from multiprocessing import Pool
from pathlib import Path

REGIMES = ("normal", "grid", "saturated", "logits", "hidden")
DERIVATIONS = ("manual", "exact", "perturbed", "naive")
ALLOWED = {
    "manual": {"agree", "precision"},
    "exact": {"agree", "precision"},
    "perturbed": {"agree", "precision"},
    "naive": {"agree", "precision", "unstable"},
}


def draw_case(seed: int, k: int):
    """Case ``k`` of the campaign with ``seed``, from its own Generator: a torch_ref Case and its label."""
    import numpy as np

    from torch_ref.strategies import (
        HIDDEN_TARGETS,
        LOGIT_TARGETS,
        Case,
        _place_kinks,
        _scale_layer,
        _scale_logits,
        data_for,
        kink_placeable,
        params_for,
        random_spec,
    )

    rng = np.random.default_rng([seed, k])
    spec = random_spec(rng)
    dtype = np.float64 if k % 2 == 0 else np.float32
    regime = REGIMES[(k // 2) % len(REGIMES)]  # every regime in both dtypes (k % 2)
    N = int(rng.integers(1, 9))
    if regime == "normal":
        gain = float(rng.choice([0.5, 1.0, 2.0]))
    elif regime == "saturated":
        gain = float(rng.choice([4.0, 8.0]))
    else:
        gain = 1.0
    grid = regime == "grid"
    params = params_for(spec, rng, grid=grid, gain=gain, dtype=dtype)
    X, Y = data_for(spec, N, rng, grid=grid, dtype=dtype)
    kink = grid and kink_placeable(spec) and bool(rng.integers(2))
    if kink:
        _place_kinks(spec, params, X)
    if regime == "saturated":
        X = (X * 3).astype(dtype)
    logits = 0.0
    if regime == "logits":  # the output layer scaled to max |I^(L)| in 16..60 (torch_ref.strategies)
        logits = float(rng.choice(LOGIT_TARGETS))
        _scale_logits(spec, params, X, logits, power_of_two=False)
    hidden = 0.0
    if regime == "hidden":  # every hidden layer scaled in turn to max |I^(l)| in 6..45 (torch_ref.strategies)
        hidden = float(rng.choice(HIDDEN_TARGETS))
        for l in range(spec.depth - 1):
            _scale_layer(spec, params, X, l, hidden, power_of_two=False)
    case = Case(spec, params, X, Y, 0.1, k, grid, gain, kink, logits=logits, hidden=hidden)
    return case, f"{np.dtype(dtype).name}/{regime}"


def _derivations():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import derivations as D

    import manual

    return {
        "manual": manual.gradients,
        "exact": D.exact_stable,
        "perturbed": D.perturbed_at_rounding_level,
        "naive": D.slides_general_naive,
    }


def _empty() -> dict:
    return {
        "cases": 0,
        "failures": [],
        "conventions": 0,
        "worst_share": 0.0,
        "by": {},
        "verdicts": {name: {} for name in DERIVATIONS},
    }


def _check_chunk(args: tuple[int, int, int]) -> dict:
    seed, start, count = args
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from torch_ref.first_order.verdict import classify, prepare
    from torch_ref.frontends.crosscheck import crosscheck_deltas, crosscheck_gradients

    fns = _derivations()
    stats = _empty()
    for k in range(start, start + count):
        case, key = draw_case(seed, k)
        stats["by"][key] = stats["by"].get(key, 0) + 1
        stats["cases"] += 1
        rebuild = f"case {k} ({key}); rebuild it with scripts/false_alarm_campaign.py's draw_case({seed}, {k})"
        for check in (
            crosscheck_gradients(case.spec, case.params, case.X, case.Y),
            crosscheck_deltas(case.spec, case.params, case.X, case.Y),
        ):
            stats["worst_share"] = max(stats["worst_share"], check.worst_share)
            stats["conventions"] += bool(check.conventions)
            if not check.ok:
                stats["failures"].append(f"{rebuild}:\n{check}")
        prepared = prepare(case)
        with np.errstate(all="ignore"):
            for name, fn in fns.items():
                verdict = classify(fn, case, prepared=prepared)
                counts = stats["verdicts"][name]
                counts[verdict.kind] = counts.get(verdict.kind, 0) + 1
                if verdict.kind not in ALLOWED[name]:
                    stats["failures"].append(f"{rebuild}: {name} is {verdict.kind}:\n{verdict}")
    return stats


def _merge(total: dict, stats: dict) -> None:
    total["cases"] += stats["cases"]
    total["failures"] += stats["failures"]
    total["conventions"] += stats["conventions"]
    total["worst_share"] = max(total["worst_share"], stats["worst_share"])
    for key, n in stats["by"].items():
        total["by"][key] = total["by"].get(key, 0) + n
    for name, counts in stats["verdicts"].items():
        for kind, n in counts.items():
            total["verdicts"][name][kind] = total["verdicts"][name].get(kind, 0) + n


def _torchrun() -> tuple[int, int]:
    """``(rank, world_size)`` when started by torchrun (its RANK and WORLD_SIZE), else ``(0, 1)``."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _run_jobs(jobs: list[tuple[int, int, int]], workers: int, progress: bool, target: int) -> dict:
    total = _empty()
    if workers == 1:
        results = map(_check_chunk, jobs)
        for stats in results:
            _merge(total, stats)
        return total
    with Pool(workers) as pool:
        for stats in pool.imap_unordered(_check_chunk, jobs):
            _merge(total, stats)
            if progress:
                sys.stderr.write(f"\r{total['cases']}/{target} cases, {len(total['failures'])} failures")
    if progress:
        sys.stderr.write("\n")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000, help="random cases in all (default 100000)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes per rank (default: one per core, or 1 under torchrun, which starts the processes)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the campaign's seed; case k is draw_case(seed, k)")
    parser.add_argument("--json", metavar="PATH", help="also write the counts and failures as JSON")
    args = parser.parse_args(argv)
    rank, world_size = _torchrun()
    workers = args.workers if args.workers is not None else (1 if world_size > 1 else os.cpu_count() or 1)
    if args.cases < 1 or workers < 1:
        parser.error("--cases and --workers must be >= 1")
    chunk = 500 if world_size == 1 else max(1, min(500, -(-args.cases // (4 * world_size))))
    jobs = [(args.seed, s, min(chunk, args.cases - s)) for s in range(0, args.cases, chunk)]
    start = time.perf_counter()
    if world_size > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")  # torchrun's rendezvous: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
        mine = _run_jobs(jobs[rank::world_size], workers, False, args.cases)  # every case on exactly one rank
        gathered: list | None = [None] * world_size if rank == 0 else None
        dist.gather_object(mine, gathered, dst=0)
        status = [0]
        if rank == 0:
            total = _empty()
            for stats in gathered or []:
                _merge(total, stats)
            status = [_report(total, args, time.perf_counter() - start, workers, world_size)]
        dist.broadcast_object_list(status, src=0)  # every rank exits as rank 0 does
        dist.destroy_process_group()
        return int(status[0])
    total = _run_jobs(jobs, workers, sys.stderr.isatty(), args.cases)
    return _report(total, args, time.perf_counter() - start, workers, 1)


def _report(total: dict, args: argparse.Namespace, seconds: float, workers: int, world_size: int) -> int:
    for failure in total["failures"][:10]:
        print(failure)
    print(f"{total['cases']} cases ({', '.join(f'{k} {v}' for k, v in sorted(total['by'].items()))})")
    print(
        f"manual.gradients and manual.deltas under the derived bound: "
        f"{sum('is ' not in f.split(':')[0] for f in total['failures'])} failures; {total['conventions']} checks "
        f"under a named convention; largest share of the tolerance used {total['worst_share']:.16g}"
    )
    print(
        f"{'derivation':<10} "
        + " ".join(f"{kind:>9}" for kind in ("agree", "precision", "unstable", "mismatch", "crash"))
    )
    for name in DERIVATIONS:
        counts = total["verdicts"][name]
        print(
            f"{name:<10} "
            + " ".join(f"{counts.get(kind, 0):>9}" for kind in ("agree", "precision", "unstable", "mismatch", "crash"))
        )
    where = f"{world_size} ranks x {workers} workers" if world_size > 1 else f"{workers} workers"
    print(f"{len(total['failures'])} failures in all; {seconds:.0f} s with {where}")
    if args.json:
        record = {**total, "seconds": seconds, "workers": workers, "world_size": world_size, "seed": args.seed}
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=1)
    return 1 if total["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
