"""Time one full training step (forward, backward, SGD update) of hand-derived deltas against
autograd, on the CPU or a GPU, next to the machine's own GEMM peak measured in the same run.

    python benchmarks/train_step.py [--quick] [--device cpu|cuda] [--dtypes float32,float64]
                                    [--rounds R] [--json PATH] [--plot PATH] [--compile] [--no-oracle]

Timing: every implementation of a case is timed in interleaved rounds (A B C D, then D C B A, ...;
benchmarks/rounds.py), each block a calibrated run of back-to-back steps after a warm-up; a round's
ratio is an implementation's time over autograd_module's in the same round, and each record gives
the median of those ratios with their interquartile range (``lo``, ``hi``) and extremes. The rounds
are spread over three fresh builds of every step, so that where the allocator happened to put one
build's tensors (a GEMM's speed depends on it) does not decide a whole run.

NumPy and torch in one process on few cores disturb each other: OpenBLAS worker threads spin for
about 2**28 cycles after a NumPy call before they sleep, taking the cores from torch's threads in
the next block (manual_torch up to 2x slower), and torch's OpenMP threads spin a while after a torch
call. benchmarks/interference.py measures the ways of keeping them apart. Used here: OpenBLAS starts
with ``OPENBLAS_THREAD_TIMEOUT=22`` (2**22 cycles, about a millisecond; unless the variable is set
already), so its threads stay awake between the BLAS calls of one NumPy step and are asleep soon
after its block, and 10 ms are slept before and after every manual_numpy block, outside the timing.
``OPENBLAS_THREAD_TIMEOUT=4`` kept torch undisturbed as well, but NumPy's threads then slept between
the calls of its own step and its ratio spread more; a 0.2 s pause did as well at nearly three times
the run's time; NumPy in a process of its own left torch's ratio more spread (its threads spin all the
same, from the other process). The README has the measured table.

Memory: ``peak_bytes`` on every record, by benchmarks/memory.py after the case's rounds (CUDA:
max_memory_allocated; CPU: torch's profiler memory events, NumPy's allocations by tracemalloc). On CUDA, TF32 is switched off so float32 means
float32, and every block ends with torch.cuda.synchronize().
"""

from __future__ import annotations

import os

# before NumPy (and its OpenBLAS) is loaded: see the module docstring
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "22")

import argparse
import json
import platform
import sys
from dataclasses import dataclass

import numpy as np
import torch
from _cli import at_least, check_outputs, description, write_outputs
from _plt import pyplot
from impls import BUILDERS, COMPILED, FLOORS, IMPLS
from memory import peak_bytes
from oracle_cost import oracle_cost
from peak import gemm_peak, step_flops
from rounds import Spread, block, interleaved, ratios

from manual import Spec
from torch_ref.strategies import data_for, params_for

BASELINE = "autograd_module"
BLOCK_S = {"quick": 0.02, "full": 0.1}  # seconds per timed block
SETTLE_S = {"manual_numpy": 0.01}  # slept before and after these blocks (module docstring)
PAUSE_S = 0.2  # after each GEMM-peak measurement only


@dataclass(frozen=True)
class Case:
    name: str
    spec: Spec
    N: int


def _case(sizes: tuple[int, ...], hidden: str, out: str, loss: str, N: int) -> Case:
    spec = Spec(sizes, (hidden,) * (len(sizes) - 2) + (out,), loss, bias=True, reduction="mean")
    return Case(f"{'-'.join(map(str, sizes))}/b{N}", spec, N)


CASES = [
    _case((2, 2, 1), "sigmoid", "sigmoid", "bce", 1),  # the slides' network
    _case((784, 128, 10), "relu", "softmax", "ce", 64),
    _case((784, 512, 512, 10), "relu", "softmax", "ce", 256),
    _case((2048,) * 5, "tanh", "tanh", "squared", 512),  # 2048 wide, 4 tanh layers
]


def progress(done: int, total: int, label: str) -> None:
    """A bar redrawn in place on a terminal; plain lines, one per item, when stderr is a file or a
    pipe (a redirected log gets no carriage returns)."""
    if not sys.stderr.isatty():
        sys.stderr.write(f"[{done}/{total}] {label}\n")
        sys.stderr.flush()
        return
    width = 30
    filled = int(width * done / total)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:<60}")
    sys.stderr.flush()
    if done == total:
        sys.stderr.write("\n")


def _sync(device: str):
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def time_case(
    case: Case, dtype: str, impls: list[str], device: str, *, rounds: int, block_s: float, instances: int = 3
) -> list[dict]:
    """One case in one dtype: every implementation in interleaved rounds. The rounds are split over
    ``instances`` fresh builds of every step (new tensors, so new addresses): a GEMM's speed depends
    on where its operands and output lie, which stays the same for one build's life, so a single
    build would put one placement's luck into the whole run. A compiled implementation that fails to
    build or run is reported on stderr and left out."""
    rng = np.random.default_rng(0)
    params = params_for(case.spec, rng, dtype=np.dtype(dtype))
    X, Y = data_for(case.spec, case.N, rng, dtype=np.dtype(dtype))
    sync = _sync(device)
    usable = list(impls)
    times: dict[str, list[float]] = {impl: [] for impl in impls}
    steps: dict = {}
    for k in range(instances):
        steps, blocks = {}, {}
        for impl in usable:
            try:
                steps[impl] = BUILDERS[impl](case.spec, params, X, Y, 0.01, device)
                blocks[impl] = block(steps[impl], block_s=block_s, sync=sync)
            except Exception as exc:
                if impl not in COMPILED:
                    raise
                sys.stderr.write(f"{impl} failed on {case.name} {dtype}: {type(exc).__name__}: {exc}\n")
                steps.pop(impl, None)
        usable = list(blocks)
        share = rounds // instances + (1 if k < rounds % instances else 0)
        for impl, ts in interleaved(blocks, rounds=share, settle=SETTLE_S).items():
            times[impl].extend(ts)
    times = {impl: ts for impl, ts in times.items() if impl in usable}
    per_round = ratios(times, BASELINE)
    flops = step_flops(case.spec, case.N)
    records = []
    for impl, step in steps.items():  # the last build's steps are measured for memory
        median_s = float(np.median(times[impl]))
        records.append(
            {
                "case": case.name,
                "dtype": dtype,
                "device": device,
                "impl": impl,
                "median_s": median_s,
                "ratio": Spread.of(per_round[impl]).as_dict(),
                "rounds": rounds,
                "flops": flops,
                "gflops": flops / median_s / 1e9,
                "peak_bytes": None if impl in FLOORS else _peak(step, device, sync),
            }
        )
    return records


def _peak(step, device: str, sync) -> int:
    """The step's peak memory (benchmarks/memory.py), measured after the case's timing."""
    return peak_bytes(
        step, device, library=getattr(step, "library", "torch"), release=getattr(step, "release", None), sync=sync
    )


def run(args: argparse.Namespace) -> dict:
    device = args.device
    if device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device is available to torch here")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    cases = [c for c in CASES if c.name in args.cases] if args.cases else (CASES[:3] if args.quick else CASES)
    impls = [i for i in IMPLS if not (i == "manual_numpy" and device != "cpu")]
    impls += list(COMPILED) if args.compile else []
    impls += list(FLOORS)
    block_s = BLOCK_S["quick" if args.quick else "full"]
    rounds = args.rounds or (30 if args.quick else 21)
    gemm_sizes = (1024, 2048) if args.quick else (1024, 2048, 4096)
    total = len(args.dtypes) * (1 + len(cases)) + (0 if args.no_oracle else 1)
    done = 0
    peaks, records = {}, []
    for dtype in args.dtypes:
        progress(done, total, f"GEMM peak {dtype}")
        peaks[dtype] = gemm_peak(dtype, device, gemm_sizes, min_run_time=0.05 if args.quick else 0.3, pause=PAUSE_S)
        done += 1
        for case in cases:
            progress(done, total, f"{case.name} {dtype}: {rounds} rounds of {len(impls)}")
            for r in time_case(case, dtype, impls, device, rounds=rounds, block_s=block_s):
                r["fraction_of_peak"] = r["gflops"] / peaks[dtype]["peak"]
                records.append(r)
            done += 1
    oracle = None
    if not args.no_oracle:
        progress(done, total, "oracle vs gradcheck")
        oracle = oracle_cost((32, 48, 24, 10), 8) if args.quick else oracle_cost((64, 96, 32, 10), 8)
        done += 1
    progress(total, total, "done")
    return {
        "records": records,
        "gemm_peak_gflops": peaks,
        "oracle_vs_gradcheck": oracle,
        "machine": {
            "device": torch.cuda.get_device_name() if device == "cuda" else _cpu_name(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
        },
        "settings": {
            "quick": args.quick,
            "rounds": rounds,
            "block_s": block_s,
            "order": "interleaved: A B C D, then D C B A, ...",
            "ratio": f"per round, time / {BASELINE} time of the same round; median, lo = 25th, hi = 75th percentile",
            "OPENBLAS_THREAD_TIMEOUT": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
            "settle_s": SETTLE_S,
            "tf32": False if device == "cuda" else None,
            "peak_bytes": "benchmarks/memory.py: CUDA max_memory_allocated; CPU torch profiler memory events, NumPy tracemalloc",
        },
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def _size(b: int | None) -> str:
    """Bytes as B, KiB or MiB, whichever keeps three significant digits readable."""
    if b is None:
        return "-"
    if b < 2**10:
        return f"{b} B"
    if b < 2**20:
        return f"{b / 2**10:.1f} KiB"
    return f"{b / 2**20:.2f} MiB"


def table(result: dict) -> str:
    rows = result["records"]
    lines = [
        f"{result['machine']['device']}, torch {result['machine']['torch']}, {result['machine']['threads']} threads"
    ]
    for dtype, peak in result["gemm_peak_gflops"].items():
        parts = ", ".join(f"{k} {v:.0f}" for k, v in peak.items() if "_" not in k)
        lines.append(f"GEMM GFLOP/s {dtype}: {parts}")
    lines.append(
        f"{'case':<30} {'dtype':<8} {'impl':<30} {'median':>11} {'vs ' + BASELINE:>24} {'of peak':>8} {'peak memory':>11}"
    )
    for r in rows:
        q = r["ratio"]
        spread = f"{q['median']:.2f}x [{q['lo']:.2f}-{q['hi']:.2f}]"
        lines.append(
            f"{r['case']:<30} {r['dtype']:<8} {r['impl']:<30} {r['median_s'] * 1e6:>9.1f}us {spread:>24} "
            f"{100 * r['fraction_of_peak']:>7.1f}% {_size(r['peak_bytes']):>11}"
        )
    o = result["oracle_vs_gradcheck"]
    if o:
        lines.append(
            f"oracle vs gradcheck on {o['network']} ({o['parameters']} parameters, N={o['N']}, float64): "
            f"oracle {o['oracle_s'] * 1e3:.2f} ms; gradcheck {o['gradcheck_s']:.2f} s "
            f"({o['ratio']:.0f}x), fast_mode {o['gradcheck_fast_s']:.3f} s ({o['ratio_fast']:.0f}x)"
        )
    st = result["settings"]
    lines.append(
        f"({st['rounds']} interleaved rounds; [lo-hi] = interquartile range of the per-round ratios; "
        f"OPENBLAS_THREAD_TIMEOUT={st['OPENBLAS_THREAD_TIMEOUT']}; peak memory = what one step allocates beyond its inputs)"
    )
    return "\n".join(lines)


def plot(result: dict, path: str) -> None:
    plt = pyplot()
    rows = result["records"]
    fig, (ax_r, ax_f, ax_m) = plt.subplots(1, 3, figsize=(17, 5.8))
    impls = sorted({r["impl"] for r in rows})
    markers = {"float32": "o", "float64": "s"}
    for k, impl in enumerate(impls):
        color = f"C{k}"
        for dtype, marker in markers.items():
            pts = sorted((r["flops"], r) for r in rows if r["impl"] == impl and r["dtype"] == dtype)
            if not pts:
                continue
            x = [f for f, _ in pts]
            rs = [r for _, r in pts]
            # a small offset per dtype so the error bars of the two dtypes do not sit on each other
            xo = [v * (0.93 if dtype == "float32" else 1.07) for v in x]
            med = [r["ratio"]["median"] for r in rs]
            err = [[m - r["ratio"]["lo"] for m, r in zip(med, rs)], [r["ratio"]["hi"] - m for m, r in zip(med, rs)]]
            label = f"{impl} {dtype}"
            ls = "-" if dtype == "float32" else "--"
            ax_r.errorbar(xo, med, yerr=err, marker=marker, ls=ls, color=color, capsize=3, label=label)
            ax_f.plot(x, [100 * r["fraction_of_peak"] for r in rs], marker=marker, ls=ls, color=color, label=label)
            mem = [(xx, r["peak_bytes"] / 2**20) for xx, r in zip(x, rs) if r["peak_bytes"]]
            if mem:
                ax_m.plot(*zip(*mem), marker=marker, ls=ls, color=color, label=label)
    for name, flops in sorted({(r["case"], r["flops"]) for r in rows}, key=lambda c: c[1]):
        ax_f.annotate(name, (flops, 2), fontsize=7, ha="center", rotation=90, va="bottom")
    device = result["machine"]["device"]
    for ax in (ax_r, ax_f, ax_m):
        ax.set_xscale("log")
        ax.set_xlabel("matrix-product FLOPs per training step")
        ax.grid(True, which="both", alpha=0.3)
    ax_r.axhline(1.0, color="k", lw=0.8)
    ax_r.set_ylabel(f"step time / {BASELINE} (median, IQR bars)")
    ax_r.set_title(f"Time relative to autograd, interleaved rounds\n({device})", fontsize=9)
    ax_f.set_ylabel("fraction of measured GEMM peak (%)")
    ax_f.set_title("Fraction of the GEMM peak measured in the same run", fontsize=9)
    ax_m.set_yscale("log")
    ax_m.set_ylabel("peak memory of one step beyond its inputs (MiB)")
    ax_m.set_title("Peak memory per step", fontsize=9)
    handles, labels = ax_r.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))  # room below the panels for the legend
    fig.savefig(path, dpi=110)


def _saved(parser: argparse.ArgumentParser, path: str) -> dict:
    """A run saved by ``--json``, or a usage error that says what is wrong with the file."""
    try:
        with open(path, encoding="utf-8") as fh:
            result = json.load(fh)
    except OSError as exc:
        parser.error(f"--table {path}: cannot be read ({exc.strerror})")
    except json.JSONDecodeError as exc:
        parser.error(f"--table {path}: not JSON ({exc.msg}, line {exc.lineno})")
    if not isinstance(result, dict) or not {"records", "gemm_peak_gflops", "settings", "machine"} <= set(result):
        parser.error(f"--table {path}: not a run saved by train_step.py --json (no records, settings, ...)")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument(
        "--quick", action="store_true", help="three smaller cases, shorter blocks (about 35 s on 2 cores)"
    )
    parser.add_argument("--table", metavar="JSON", help="print the table (and --plot) of a saved run; measure nothing")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtypes", default="float32,float64", help="comma-separated (default float32,float64)")
    parser.add_argument("--cases", help=f"comma-separated case names (default: all); one of {[c.name for c in CASES]}")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per case (default 30 quick, 21 full)")
    parser.add_argument("--json", metavar="PATH", help="write the records as JSON")
    parser.add_argument(
        "--plot", metavar="PATH", help="write a PNG of ratios, fraction of peak and memory (matplotlib)"
    )
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile'd torch steps (marked *_compiled)"
    )
    parser.add_argument("--no-oracle", action="store_true", help="skip the oracle vs gradcheck comparison")
    args = parser.parse_args(argv)
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    bad = [d for d in args.dtypes if d not in ("float32", "float64")]
    if bad or not args.dtypes:
        parser.error(f"--dtypes takes float32 and/or float64, got {args.dtypes}")
    if args.cases is not None:
        args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
        unknown = [c for c in args.cases if c not in {k.name for k in CASES}]
        if unknown or not args.cases:
            parser.error(f"--cases: unknown {unknown or args.cases}; the cases are {[c.name for c in CASES]}")
    if args.rounds is not None:
        at_least(parser, "--rounds", args.rounds, 3)
    check_outputs(parser, None if args.table else args.json, args.plot)
    if args.table:
        result = _saved(parser, args.table)
    else:
        result = run(args)
    print(table(result))
    write_outputs(result, None if args.table else args.json, args.plot, plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
