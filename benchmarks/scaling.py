"""Where hand-derived steps win: a hand-derived training step against autograd's over size x batch.

    python benchmarks/scaling.py [--model mlp|transformer|cnn] [--dtype float32] [--device cpu|cuda]
                                 [--widths 64,...,4096] [--batches 1,...,4096] [--max-gflop G]
                                 [--rounds 5] [--block S] [--threads T] [--json PATH] [--plot PATH]

``--model mlp`` (the default): every cell is the network width-width-width (two tanh layers, squared
loss, mean, biases) on a batch of N, manual_torch against autograd_module (benchmarks/impls.py).
``--model transformer``: benchmarks/networks.py's GPT-style block (vocabulary 64, 4 heads, sequences of
T = 32 tokens) at model width D (``--widths``, default 32,...,256) on N sequences (default 1,...,64).
``--model cnn``: its CNN (conv F, conv 2F, 3x3, each with ReLU and 2x2 max pooling, then 10 classes)
on N 1x28x28 images, F = 8,...,64. For these two, manual_step (``NetworkTrainer``'s AdamW step)
against autograd_step (the torch twin, autograd, ``torch.optim.AdamW``), after the check that both take
the same step from the same start (networks.py's ``agreement``, kept in the cell as ``*_agree_rel*``).

Both implementations of a cell are timed in interleaved rounds (benchmarks/rounds.py): the median of
the per-round ratios and its interquartile range. A cell whose step would exceed ``--max-gflop``
GFLOP is not run (blank in the map; the defaults keep each full CPU map to minutes). FLOPs: the MLP's
matrix products (benchmarks/peak.py); the networks' by torch's flop counter on the twin's forward and
backward (matrix products, convolutions, attention counted in full although causal). The plot has the
ratio as a heat map and each implementation's fraction of the GEMM peak (measured in the same run)
against FLOPs.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "22")  # as train_step.py (only torch is timed here)

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import torch
from _cli import at_least, check_outputs, description, positive, positive_ints, write_outputs
from _plt import pyplot
from impls import BUILDERS
from networks import AGREE, LR, Case, _loss, cnn, setup, transformer
from peak import gemm_peak, step_flops
from rounds import Spread, block, interleaved, ratios
from torch.utils.flop_counter import FlopCounterMode
from train_step import _cpu_name, progress

from manual import Spec
from torch_ref.networks.twin import load, module
from torch_ref.strategies import data_for, params_for

Steps = Callable[[int, int, str, str], tuple[dict[str, Callable[[], Any]], dict[str, float]]]
"""``steps(width, N, dtype, device)``: a cell's two step calls by name, and what was checked about them."""


@dataclass(frozen=True)
class Model:
    """One map: its network at each size, the two steps timed, their FLOPs, and how the map is labelled."""

    network: str  # the settings' one-line description
    axis: str  # the size axis's short name (the table's corner)
    ylabel: str  # the plot's size axis
    hand: str  # the hand-derived step ...
    baseline: str  # ... and autograd's, the denominator of the ratio
    widths: list[int]
    batches: list[int]
    max_gflop: float
    flops: Callable[[int, int], int]
    flops_label: str
    steps: Steps


def _mlp_spec(width: int) -> Spec:
    return Spec((width,) * 3, ("tanh", "tanh"), "squared", bias=True, reduction="mean")


def _mlp_steps(width: int, N: int, dtype: str, device: str) -> tuple[dict[str, Callable[[], Any]], dict[str, float]]:
    spec = _mlp_spec(width)
    rng = np.random.default_rng(0)
    params = params_for(spec, rng, dtype=np.dtype(dtype))
    X, Y = data_for(spec, N, rng, dtype=np.dtype(dtype))
    return {i: BUILDERS[i](spec, params, X, Y, 0.01, device) for i in ("manual_torch", "autograd_module")}, {}


def _network_steps(case_of: Callable[[int, int], Case]) -> Steps:
    def steps(width: int, N: int, dtype: str, device: str) -> tuple[dict[str, Callable[[], Any]], dict[str, float]]:
        s = setup(case_of(width, N), getattr(torch, dtype), device)
        return {i: s.calls[i] for i in ("manual_step", "autograd_step")}, s.agree

    return steps


def _network_flops(case_of: Callable[[int, int], Case]) -> Callable[[int, int], int]:
    """N times the FLOPs of one example's forward and backward through the twin (every counted operation
    is linear in the batch), counted by torch on the CPU, once per width."""

    @cache
    def per_example(width: int) -> int:
        case = case_of(width, 1)
        rng = np.random.default_rng(0)
        twin = module(case.net, torch.float32)
        load(case.net, twin, case.net.init(rng))
        X, Y = case.batch(rng, torch.float32, "cpu")
        with FlopCounterMode(display=False) as counter:
            _loss(twin(X), Y).backward()
        return int(counter.get_total_flops())

    return lambda width, N: N * per_example(width)


def _transformer(D: int, N: int) -> Case:
    return transformer(64, D, 4, 32, N, f"D={D}")


def _cnn(F: int, N: int) -> Case:
    return cnn(1, 28, F, 2 * F, 10, N, f"F={F}")


_NETWORK_FLOPS = "FLOPs per training step by torch's flop counter (along a line: batch grows)"
MODELS = {
    "mlp": Model(
        "width-width-width, tanh, tanh, squared, mean, biases",
        "width",
        "width (width-width-width, 2 tanh layers)",
        "manual_torch",
        "autograd_module",
        [64, 128, 256, 512, 1024, 2048, 4096],
        [1, 4, 16, 64, 256, 1024, 4096],
        40.0,
        lambda width, N: step_flops(_mlp_spec(width), N),
        "matrix-product FLOPs per training step (along a line: batch grows)",
        _mlp_steps,
    ),
    "transformer": Model(
        "GPT-style block (benchmarks/networks.py): vocabulary 64, width D, 4 heads, T = 32, cross-entropy, AdamW",
        "D",
        "model width D (GPT-style block, 4 heads, T = 32)",
        "manual_step",
        "autograd_step",
        [32, 64, 128, 256],
        [1, 4, 16, 64],
        16.0,
        _network_flops(_transformer),
        _NETWORK_FLOPS,
        _network_steps(_transformer),
    ),
    "cnn": Model(
        "CNN (benchmarks/networks.py): 1x28x28, conv F, conv 2F, 3x3, ReLU, 2x2 max pool, 10 classes, AdamW",
        "F",
        "channels F (conv F, conv 2F, 1x28x28 images)",
        "manual_step",
        "autograd_step",
        [8, 16, 32, 64],
        [1, 8, 32, 128],
        16.0,
        _network_flops(_cnn),
        _NETWORK_FLOPS,
        _network_steps(_cnn),
    ),
}


def cell(model: Model, width: int, N: int, dtype: str, device: str, *, rounds: int, block_s: float) -> dict:
    steps, checked = model.steps(width, N, dtype, device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    impls = (model.hand, model.baseline)
    blocks = {i: block(steps[i], block_s=block_s, sync=sync) for i in impls}
    times = interleaved(blocks, rounds=rounds)
    flops = model.flops(width, N)
    return {
        "width": width,
        "N": N,
        "flops": flops,
        "ratio": Spread.of(ratios(times, model.baseline)[model.hand]).as_dict(),
        "median_s": {i: float(np.median(times[i])) for i in impls},
        "gflops": {i: flops / float(np.median(times[i])) / 1e9 for i in impls},
        **checked,
    }


def run(args: argparse.Namespace) -> dict:
    model = MODELS[args.model]
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device is available to torch here")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    peak = gemm_peak(args.dtype, args.device, (1024, 2048), min_run_time=0.2, pause=0.2)
    todo = [(w, n) for w in args.widths for n in args.batches]
    cells, skipped = [], []
    for k, (w, n) in enumerate(todo):
        if model.flops(w, n) > args.max_gflop * 1e9:
            skipped.append({"width": w, "N": n})
            continue
        progress(k, len(todo), f"{model.axis} {w}, batch {n}")
        c = cell(model, w, n, args.dtype, args.device, rounds=args.rounds, block_s=args.block)
        c["fraction_of_peak"] = {i: g / peak["peak"] for i, g in c["gflops"].items()}
        cells.append(c)
    progress(len(todo), len(todo), "done")
    settings = {
        "model": args.model,
        "dtype": args.dtype,
        "device": args.device,
        "network": model.network,
        "rounds": args.rounds,
        "block_s": args.block,
        "max_gflop": args.max_gflop,
        "ratio": f"{model.hand} / {model.baseline} per round; median, lo = 25th, hi = 75th percentile",
    }
    if model.hand == "manual_step":
        settings["optimizer"] = f"AdamW, lr {LR}, torch's defaults otherwise, on both sides"
        settings["agree_rel"] = (
            "per cell, before the timing (benchmarks/networks.py): largest difference over largest entry, worst "
            "parameter, of the gradients and of the parameters after one AdamW step; timed dtype and float64"
        )
    return {
        "cells": cells,
        "skipped": skipped,
        "gemm_peak_gflops": {args.dtype: peak},
        "machine": {
            "device": torch.cuda.get_device_name() if args.device == "cuda" else _cpu_name(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "settings": settings,
    }


def _model_of(result: dict) -> Model:
    return MODELS[result["settings"].get("model", "mlp")]  # maps written before --model are the MLP's


def table(result: dict) -> str:
    model = _model_of(result)
    cells = {(c["width"], c["N"]): c for c in result["cells"]}
    widths = sorted({w for w, _ in cells} | {s["width"] for s in result["skipped"]})
    batches = sorted({n for _, n in cells} | {s["N"] for s in result["skipped"]})
    st = result["settings"]
    corner = model.axis + " \\ batch"
    lines = [
        f"{model.hand} / {model.baseline}, median of {st['rounds']} interleaved rounds, {st['dtype']} on "
        f"{result['machine']['device']} ({st['network']}); '.' = over {st['max_gflop']} GFLOP, not run",
        f"{corner:>13} " + "".join(f"{n:>8}" for n in batches),
    ]
    for w in widths:
        row = "".join(f"{cells[w, n]['ratio']['median']:>8.2f}" if (w, n) in cells else f"{'.':>8}" for n in batches)
        lines.append(f"{w:>13} {row}")
    if result["cells"] and AGREE[0] in result["cells"][0]:
        worst = {k: max(c[k] for c in result["cells"]) for k in AGREE}
        lines.append(
            f"same step, worst cell (largest difference over largest entry): {st['dtype']} gradients "
            f"{worst['grad_agree_rel']:.1e}, parameters after one AdamW step {worst['step_agree_rel']:.1e}; "
            f"float64 gradients {worst['grad_agree_rel_float64']:.1e}, parameters {worst['step_agree_rel_float64']:.1e}"
        )
    return "\n".join(lines)


def plot(result: dict, path: str) -> None:
    plt = pyplot()
    from matplotlib.colors import TwoSlopeNorm

    model = _model_of(result)
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
    ax_h.set_ylabel(model.ylabel)
    st = result["settings"]
    ax_h.set_title(
        f"{model.hand} / {model.baseline}, {st['dtype']}, {result['machine']['device']}\n"
        f"median [IQR] of {st['rounds']} interleaved rounds; blank: over {st['max_gflop']} GFLOP",
        fontsize=9,
    )
    fig.colorbar(im, ax=ax_h, label="time ratio (< 1: hand-derived faster)")
    markers = {model.hand: "o", model.baseline: "x"}
    for k, w in enumerate(widths):  # one colour per width, one marker per implementation
        for impl, marker in markers.items():
            pts = sorted((c["flops"], 100 * c["fraction_of_peak"][impl]) for c in result["cells"] if c["width"] == w)
            if pts:
                label = f"{impl}, {model.axis} {w}" if impl == model.hand else None
                ax_f.plot(
                    *zip(*pts),
                    marker=marker,
                    ls="-" if impl == model.hand else ":",
                    ms=5,
                    color=f"C{k}",
                    label=label,
                )
    ax_f.plot([], [], "kx:", label=f"{model.baseline} (x, dotted)")
    ax_f.set_xscale("log")
    ax_f.set_xlabel(model.flops_label)
    ax_f.set_ylabel("fraction of measured GEMM peak (%)")
    ax_f.set_title(f"GEMM peak {result['gemm_peak_gflops'][st['dtype']]['peak']:.0f} GFLOP/s in this run", fontsize=9)
    ax_f.grid(True, which="both", alpha=0.3)
    ax_f.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--model", default="mlp", choices=tuple(MODELS), help="the network of every cell")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    widths = ", ".join(f"{k}: {m.axis} {','.join(map(str, m.widths))}" for k, m in MODELS.items())
    batches = ", ".join(f"{k}: {','.join(map(str, m.batches))}" for k, m in MODELS.items())
    caps = ", ".join(f"{k}: {m.max_gflop:g}" for k, m in MODELS.items())
    parser.add_argument("--widths", type=positive_ints, help=f"the size axis (default {widths})")
    parser.add_argument("--batches", type=positive_ints, help=f"the batch axis (default {batches})")
    parser.add_argument("--max-gflop", type=float, help=f"skip cells above this many GFLOP per step (default {caps})")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=float, default=0.05, help="seconds per timed block")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads(T) first (default: torch's own)")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--plot", metavar="PATH")
    args = parser.parse_args(argv)
    model = MODELS[args.model]
    args.widths = args.widths or model.widths
    args.batches = args.batches or model.batches
    args.max_gflop = model.max_gflop if args.max_gflop is None else args.max_gflop
    if args.model == "transformer" and any(w % 4 for w in args.widths):
        parser.error(
            f"--widths {','.join(map(str, args.widths))}: the transformer's D must be a multiple of its 4 heads"
        )
    at_least(parser, "--rounds", args.rounds, 3)
    positive(parser, "--max-gflop", args.max_gflop)
    positive(parser, "--block", args.block)
    if args.threads is not None:
        at_least(parser, "--threads", args.threads, 1)
    check_outputs(parser, args.json, args.plot)
    result = run(args)
    print(table(result))
    write_outputs(result, args.json, args.plot, plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
