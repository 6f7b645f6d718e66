"""Time one full training step (forward, backward, SGD update) of hand-derived deltas against
autograd, on the CPU or a GPU, next to the machine's own GEMM peak measured in the same run.

    python benchmarks/train_step.py [--quick] [--device cpu|cuda] [--dtypes float32,float64]
                                    [--json PATH] [--plot PATH] [--compile] [--no-oracle]

Every implementation of a case is timed in the same run (medians of torch.utils.benchmark's
blocked repeats after a warm-up). NumPy's OpenBLAS and torch's threads slow each other for a moment
after a call, so the run pauses 0.2 s between implementations. On CUDA, TF32 is switched off so
float32 means float32.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from impls import BUILDERS, COMPILED, IMPLS
from oracle_cost import oracle_cost
from peak import gemm_peak, step_flops, timer

from manual import Spec
from torch_ref.strategies import data_for, params_for

PAUSE_S = 0.2


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


def run(args: argparse.Namespace) -> dict:
    device = args.device
    if device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device is available to torch here")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    cases = CASES[:3] if args.quick else CASES
    impls = [i for i in IMPLS if not (i == "manual_numpy" and device != "cpu")]
    impls += list(COMPILED) if args.compile else []
    min_run = 0.05 if args.quick else 0.3
    gemm_sizes = (1024, 2048) if args.quick else (1024, 2048, 4096)
    total = len(args.dtypes) * (1 + len(cases) * len(impls)) + (0 if args.no_oracle else 1)
    done = 0
    peaks, records = {}, []
    for dtype in args.dtypes:
        progress(done, total, f"GEMM peak {dtype}")
        peaks[dtype] = gemm_peak(dtype, device, gemm_sizes, min_run_time=min_run, pause=PAUSE_S)
        done += 1
        for case in cases:
            rng = np.random.default_rng(0)
            params = params_for(case.spec, rng, dtype=np.dtype(dtype))
            X, Y = data_for(case.spec, case.N, rng, dtype=np.dtype(dtype))
            flops = step_flops(case.spec, case.N)
            for impl in impls:
                progress(done, total, f"{case.name} {dtype} {impl}")
                step = BUILDERS[impl](case.spec, params, X, Y, 0.01, device)
                try:
                    median = timer(step, min_run_time=min_run)
                except Exception as exc:
                    if impl not in COMPILED:
                        raise
                    sys.stderr.write(f"\n{impl} failed on {case.name} {dtype}: {type(exc).__name__}: {exc}\n")
                    done += 1
                    continue
                records.append(
                    {
                        "case": case.name,
                        "dtype": dtype,
                        "device": device,
                        "impl": impl,
                        "median_s": median,
                        "flops": flops,
                        "fraction_of_peak": flops / median / (peaks[dtype]["peak"] * 1e9),
                    }
                )
                done += 1
                time.sleep(PAUSE_S)
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
            "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
            "torch": torch.__version__,
            "numpy": np.__version__,
            "threads": torch.get_num_threads(),
            "cpu_count": __import__("os").cpu_count(),
        },
        "settings": {
            "quick": args.quick,
            "pause_between_impls_s": PAUSE_S,
            "tf32": False if device == "cuda" else None,
            "timing": "torch.utils.benchmark blocked_autorange median, warm-up first",
        },
    }


def table(result: dict) -> str:
    rows = result["records"]
    lines = []
    for dtype, peak in result["gemm_peak_gflops"].items():
        parts = ", ".join(f"{k} {v:.0f}" for k, v in peak.items() if "_" not in k)
        lines.append(f"GEMM GFLOP/s {dtype}: {parts}")
    lines.append(f"{'case':<28} {'dtype':<8} {'impl':<30} {'median':>10} {'vs module':>10} {'of peak':>8}")
    for r in rows:
        base = next(
            x for x in rows if x["case"] == r["case"] and x["dtype"] == r["dtype"] and x["impl"] == "autograd_module"
        )
        lines.append(
            f"{r['case']:<28} {r['dtype']:<8} {r['impl']:<30} {r['median_s'] * 1e6:>8.1f}us "
            f"{r['median_s'] / base['median_s']:>9.2f}x {100 * r['fraction_of_peak']:>7.1f}%"
        )
    o = result["oracle_vs_gradcheck"]
    if o:
        lines.append(
            f"oracle vs gradcheck on {o['network']} ({o['parameters']} parameters, N={o['N']}, float64): "
            f"oracle {o['oracle_s'] * 1e3:.2f} ms, gradcheck {o['gradcheck_s']:.2f} s, "
            f"gradcheck/oracle = {o['ratio']:.0f}x"
        )
    lines.append(f"(threads: torch {result['machine']['threads']}; {PAUSE_S} s pause between implementations)")
    return "\n".join(lines)


def plot(result: dict, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SystemExit("--plot needs matplotlib: pip install -e '.[plot]'") from exc
    rows = result["records"]
    fig, (ax_t, ax_f) = plt.subplots(1, 2, figsize=(12, 4.8))
    impls = sorted({r["impl"] for r in rows})
    markers = {"float32": "o", "float64": "s"}
    for impl in impls:
        for dtype, marker in markers.items():
            pts = sorted(
                (r["flops"], r["median_s"], r["fraction_of_peak"])
                for r in rows
                if r["impl"] == impl and r["dtype"] == dtype
            )
            if not pts:
                continue
            x, t, f = zip(*pts)
            ax_t.plot(x, [v * 1e3 for v in t], marker=marker, label=f"{impl} {dtype}")
            ax_f.plot(x, [100 * v for v in f], marker=marker, label=f"{impl} {dtype}")
    for name, flops in sorted({(r["case"], r["flops"]) for r in rows}, key=lambda c: c[1]):
        fastest = min(r["median_s"] for r in rows if r["case"] == name) * 1e3
        ax_t.annotate(name, (flops, fastest), textcoords="offset points", xytext=(0, -14), fontsize=7, ha="center")
    device = rows[0]["device"] if rows else "?"
    for ax in (ax_t, ax_f):
        ax.set_xscale("log")
        ax.set_xlabel("matrix-product FLOPs per training step (network size x batch)")
        ax.grid(True, which="both", alpha=0.3)
    ax_t.set_yscale("log")
    ax_t.set_ylabel("median step time (ms)")
    ax_t.set_title(f"Training step time ({device})")
    ax_f.set_ylabel("fraction of measured GEMM peak (%)")
    ax_f.set_title("Fraction of the GEMM peak measured in the same run")
    ax_f.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="three smaller cases, shorter timing (about 15 s on 2 cores)"
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtypes", default="float32,float64", help="comma-separated (default float32,float64)")
    parser.add_argument("--json", metavar="PATH", help="write the records as JSON")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG of step time and fraction of peak (matplotlib)")
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile'd torch steps (marked *_compiled)"
    )
    parser.add_argument("--no-oracle", action="store_true", help="skip the oracle vs gradcheck comparison")
    args = parser.parse_args(argv)
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    bad = [d for d in args.dtypes if d not in ("float32", "float64")]
    if bad or not args.dtypes:
        parser.error(f"--dtypes takes float32 and/or float64, got {args.dtypes}")
    result = run(args)
    print(table(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        plot(result, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
