"""Where hand-derived steps win: manual_torch / autograd_module over width x batch at a fixed depth.

    python benchmarks/scaling.py [--dtype float32] [--device cpu|cuda] [--widths 64,...,4096]
                                 [--batches 1,...,4096] [--max-gflop 40] [--rounds 5]
                                 [--json PATH] [--plot PATH]

Every cell is the network width-width-width (two tanh layers, squared loss, mean, biases) on a batch
of N: manual_torch and autograd_module timed in interleaved rounds (benchmarks/rounds.py), the
median of the per-round ratios and its interquartile range. A cell whose step would exceed
``--max-gflop`` matrix-product GFLOP is not run (blank in the map). The plot has the ratio as a heat
map and each implementation's fraction of the GEMM peak (measured in the same run) against FLOPs.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "22")  # as train_step.py (only torch is timed here)

import argparse
import sys

import numpy as np
import torch
from _cli import at_least, check_outputs, description, positive, positive_ints, write_outputs
from _plt import pyplot
from impls import BUILDERS
from peak import gemm_peak, step_flops
from rounds import Spread, block, interleaved, ratios
from train_step import _cpu_name, progress

from manual import Spec
from torch_ref.strategies import data_for, params_for

IMPLS = ("manual_torch", "autograd_module")


def cell(width: int, N: int, dtype: str, device: str, *, rounds: int, block_s: float) -> dict:
    spec = Spec((width,) * 3, ("tanh", "tanh"), "squared", bias=True, reduction="mean")
    rng = np.random.default_rng(0)
    params = params_for(spec, rng, dtype=np.dtype(dtype))
    X, Y = data_for(spec, N, rng, dtype=np.dtype(dtype))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    blocks = {i: block(BUILDERS[i](spec, params, X, Y, 0.01, device), block_s=block_s, sync=sync) for i in IMPLS}
    times = interleaved(blocks, rounds=rounds)
    flops = step_flops(spec, N)
    return {
        "width": width,
        "N": N,
        "flops": flops,
        "ratio": Spread.of(ratios(times, "autograd_module")["manual_torch"]).as_dict(),
        "median_s": {i: float(np.median(times[i])) for i in IMPLS},
        "gflops": {i: flops / float(np.median(times[i])) / 1e9 for i in IMPLS},
    }


def run(args: argparse.Namespace) -> dict:
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device is available to torch here")
        torch.backends.cuda.matmul.allow_tf32 = False
    peak = gemm_peak(args.dtype, args.device, (1024, 2048), min_run_time=0.2, pause=0.2)
    todo = [(w, n) for w in args.widths for n in args.batches]
    cells, skipped = [], []
    for k, (w, n) in enumerate(todo):
        spec = Spec((w,) * 3, ("tanh", "tanh"), "squared", bias=True)
        if step_flops(spec, n) > args.max_gflop * 1e9:
            skipped.append({"width": w, "N": n})
            continue
        progress(k, len(todo), f"width {w}, batch {n}")
        c = cell(w, n, args.dtype, args.device, rounds=args.rounds, block_s=args.block)
        c["fraction_of_peak"] = {i: g / peak["peak"] for i, g in c["gflops"].items()}
        cells.append(c)
    progress(len(todo), len(todo), "done")
    return {
        "cells": cells,
        "skipped": skipped,
        "gemm_peak_gflops": {args.dtype: peak},
        "machine": {
            "device": torch.cuda.get_device_name() if args.device == "cuda" else _cpu_name(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "settings": {
            "dtype": args.dtype,
            "device": args.device,
            "network": "width-width-width, tanh, tanh, squared, mean, biases",
            "rounds": args.rounds,
            "block_s": args.block,
            "max_gflop": args.max_gflop,
            "ratio": "manual_torch / autograd_module per round; median, lo = 25th, hi = 75th percentile",
        },
    }


def table(result: dict) -> str:
    cells = {(c["width"], c["N"]): c for c in result["cells"]}
    widths = sorted({w for w, _ in cells} | {s["width"] for s in result["skipped"]})
    batches = sorted({n for _, n in cells} | {s["N"] for s in result["skipped"]})
    st = result["settings"]
    lines = [
        f"manual_torch / autograd_module, median of {st['rounds']} interleaved rounds, {st['dtype']} on "
        f"{result['machine']['device']} ({st['network']}); '.' = over {st['max_gflop']} GFLOP, not run",
        "width \\ batch " + "".join(f"{n:>8}" for n in batches),
    ]
    for w in widths:
        row = "".join(f"{cells[w, n]['ratio']['median']:>8.2f}" if (w, n) in cells else f"{'.':>8}" for n in batches)
        lines.append(f"{w:>13} {row}")
    return "\n".join(lines)


def plot(result: dict, path: str) -> None:
    plt = pyplot()
    from matplotlib.colors import TwoSlopeNorm

    cells = {(c["width"], c["N"]): c for c in result["cells"]}
    widths = sorted({w for w, _ in cells} | {s["width"] for s in result["skipped"]})
    batches = sorted({n for _, n in cells} | {s["N"] for s in result["skipped"]})
    grid = np.full((len(widths), len(batches)), np.nan)
    for (w, n), c in cells.items():
        grid[widths.index(w), batches.index(n)] = c["ratio"]["median"]
    fig, (ax_h, ax_f) = plt.subplots(1, 2, figsize=(14, 5.6))
    # blue below 1 (hand-derived faster), red above; the scale reaches 2 at least, so that its red half
    # is a readable range rather than a sliver
    top = max(2.0, float(np.nanmax(grid)) if np.isfinite(grid).any() else 2.0)
    im = ax_h.imshow(grid, origin="lower", cmap="RdBu_r", norm=TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=top))
    for i, w in enumerate(widths):
        for j, n in enumerate(batches):
            if (w, n) in cells:
                q = cells[w, n]["ratio"]
                dark = q["median"] < 0.45 or q["median"] > 1.6  # white text on the deep colours
                ax_h.text(
                    j,
                    i,
                    f"{q['median']:.2f}\n[{q['lo']:.2f}-{q['hi']:.2f}]",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if dark else "black",
                )
    ax_h.set_xticks(range(len(batches)), [str(n) for n in batches])
    ax_h.set_yticks(range(len(widths)), [str(w) for w in widths])
    ax_h.set_xlabel("batch N")
    ax_h.set_ylabel("width (width-width-width, 2 tanh layers)")
    st = result["settings"]
    ax_h.set_title(
        f"manual_torch / autograd_module, {st['dtype']}, {result['machine']['device']}\n"
        f"median [IQR] of {st['rounds']} interleaved rounds; blank: over {st['max_gflop']} GFLOP",
        fontsize=9,
    )
    fig.colorbar(im, ax=ax_h, label="time ratio (< 1: hand-derived faster)")
    markers = {"manual_torch": "o", "autograd_module": "x"}
    for k, w in enumerate(widths):  # one colour per width, one marker per implementation
        for impl, marker in markers.items():
            pts = sorted((c["flops"], 100 * c["fraction_of_peak"][impl]) for c in result["cells"] if c["width"] == w)
            if pts:
                label = f"{impl}, width {w}" if impl == "manual_torch" else None
                ax_f.plot(
                    *zip(*pts),
                    marker=marker,
                    ls="-" if impl == "manual_torch" else ":",
                    ms=5,
                    color=f"C{k}",
                    label=label,
                )
    ax_f.plot([], [], "kx:", label="autograd_module (x, dotted)")
    ax_f.set_xscale("log")
    ax_f.set_xlabel("matrix-product FLOPs per training step (along a line: batch grows)")
    ax_f.set_ylabel("fraction of measured GEMM peak (%)")
    ax_f.set_title(f"GEMM peak {result['gemm_peak_gflops'][st['dtype']]['peak']:.0f} GFLOP/s in this run", fontsize=9)
    ax_f.grid(True, which="both", alpha=0.3)
    ax_f.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--widths", type=positive_ints, default=[64, 128, 256, 512, 1024, 2048, 4096])
    parser.add_argument("--batches", type=positive_ints, default=[1, 4, 16, 64, 256, 1024, 4096])
    parser.add_argument("--max-gflop", type=float, default=40.0, help="skip cells above this many GFLOP per step")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=float, default=0.05, help="seconds per timed block")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--plot", metavar="PATH")
    args = parser.parse_args(argv)
    at_least(parser, "--rounds", args.rounds, 3)
    positive(parser, "--max-gflop", args.max_gflop)
    positive(parser, "--block", args.block)
    check_outputs(parser, args.json, args.plot)
    result = run(args)
    print(table(result))
    write_outputs(result, args.json, args.plot, plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
