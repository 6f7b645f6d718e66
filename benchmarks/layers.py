"""Time each layer's hand-derived backward (manual.layers) against autograd of its torch twin (torch's
own functional), on torch tensors, on the CPU or a GPU: layer_norm, batch_norm (training), conv2d and
scaled_dot_product_attention, at three sizes each.

    python benchmarks/layers.py [--quick] [--device cpu|cuda] [--dtype float32|float64] [--layers L,...]
                                [--sizes small,medium,large] [--rounds R] [--threads T] [--json PATH]

Four variants of each case, each given the same ``dout`` (δ from above):

- ``manual_backward``: ``LAYERS[name].backward(dout, x, **params, **constants)``, as written: it gets
  the inputs only and recomputes what it needs of the forward (the statistics, the attention's P);
- ``manual_forward_backward``: manual's forward, then that backward: what a training step runs;
- ``autograd_backward``: ``torch.autograd.grad`` of the twin's output, the graph built once beforehand
  (``retain_graph=True``): the backward alone, from the tensors the forward saved;
- ``autograd_forward_backward``: the twin's forward on leaves that require grad, then the grad call
  (autograd needs the forward's saved tensors, so a step pays for both).

Each manual variant's ratio is over its counterpart (backward alone over backward alone, forward and
backward over forward and backward), per round, both from the same round.

Timing as benchmarks/train_step.py (benchmarks/rounds.py): interleaved rounds (A B C D, then D C B A,
...), each block a calibrated run of back-to-back calls after a warm-up, torch's own thread count
(``--threads`` sets another, by torch.set_num_threads: with other work on few cores, one thread
keeps torch's OpenMP regions from waiting on a descheduled thread, docs/benchmarks.md); per case the
median of the per-round times with their interquartile range, and the median per-round ratio with
its interquartile range. Only
torch runs here (NumPy only draws the values, before any timing), so OpenBLAS threads do not enter.
On CUDA every block ends with torch.cuda.synchronize() and TF32 is off. Before the timing, each
case's manual gradients are compared with autograd's (``agree_rel``, the largest difference over the
largest reference entry, of any array).

Memory: ``peak_bytes`` of one call of each variant, after the case's rounds (benchmarks/memory.py:
CUDA max_memory_allocated after a reset; CPU torch's profiler memory events). What exists before
the call (the inputs; for ``autograd_backward``, the graph and its saved tensors) is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from _cli import at_least, check_outputs, description
from _measure import exact_torch, machine, timed_variants

from manual.layers import LAYERS
from torch_ref.layers.table import info

VARIANTS = ("manual_backward", "autograd_backward", "manual_forward_backward", "autograd_forward_backward")
BASELINE = {
    "manual_backward": "autograd_backward",
    "autograd_backward": "autograd_backward",
    "manual_forward_backward": "autograd_forward_backward",
    "autograd_forward_backward": "autograd_forward_backward",
}
BLOCK_S = {"quick": 0.01, "full": 0.05}  # seconds per timed block
ROUNDS = {"quick": 7, "full": 15}
SIZES = ("small", "medium", "large")


Make = Callable[[np.random.Generator, torch.dtype, str], dict[str, torch.Tensor]]
"""``make(rng, dtype, device)``: one case's arrays, ``x`` and the params by the entry's names."""


@dataclass(frozen=True)
class Case:
    """One layer at one size: ``make`` gives its arrays, ``constants`` the entry's keyword options."""

    layer: str
    size: str
    shape: str
    make: Make
    constants: dict[str, Any]


def _t(a: np.ndarray, dtype: torch.dtype, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=dtype)


def _norm(N: int, D: int, *, stats: bool) -> Make:
    def make(rng: np.random.Generator, dtype: torch.dtype, device: str) -> dict[str, torch.Tensor]:
        arrays = {
            "x": rng.standard_normal((N, D)) * 2.0 + 0.5,
            "weight": 1.0 + 0.1 * rng.standard_normal(D),
            "bias": 0.1 * rng.standard_normal(D),
        }
        if stats:  # not read in training, but part of batch_norm's signature
            arrays |= {"running_mean": np.zeros(D), "running_var": np.ones(D)}
        return {k: _t(v, dtype, device) for k, v in arrays.items()}

    return make


def _conv(N: int, C: int, HW: int, F: int, k: int) -> Make:
    def make(rng: np.random.Generator, dtype: torch.dtype, device: str) -> dict[str, torch.Tensor]:
        arrays = {
            "x": rng.standard_normal((N, C, HW, HW)),
            "weight": rng.standard_normal((F, C, k, k)) / np.sqrt(C * k * k),
            "bias": 0.1 * rng.standard_normal(F),
        }
        return {k_: _t(v, dtype, device) for k_, v in arrays.items()}

    return make


def _attention(N: int, H: int, T: int, E: int) -> Make:
    def make(rng: np.random.Generator, dtype: torch.dtype, device: str) -> dict[str, torch.Tensor]:
        arrays = {k: _t(rng.standard_normal((N, H, T, E)), dtype, device) for k in ("x", "key", "value")}
        # every key takes part: the entry's mask is always an array (all True = nothing masked)
        return arrays | {"attn_mask": torch.ones((N, 1, 1, T), dtype=torch.bool, device=device)}

    return make


CASES = [
    # (N, D) rows; the statistics of each row (layer norm) or column (batch norm)
    *(
        Case(layer, size, f"N={N} D={D}", _norm(N, D, stats=layer == "batch_norm"), constants)
        for layer, constants in (("layer_norm", {}), ("batch_norm", {"training": True}))
        for size, N, D in (("small", 32, 64), ("medium", 256, 512), ("large", 2048, 1024))
    ),
    # 3x3 kernel, padding 1 (the output keeps the input's H x W), stride 1
    *(
        Case("conv2d", size, f"N={N} C={C} {HW}x{HW} F={F} k=3", _conv(N, C, HW, F, 3), {"padding": 1})
        for size, N, C, HW, F in (("small", 2, 4, 8, 4), ("medium", 8, 16, 32, 16), ("large", 32, 64, 32, 64))
    ),
    # self-attention shapes, T = S queries and keys, no mask, scale 1/sqrt(E)
    *(
        Case("scaled_dot_product_attention", size, f"N={N} H={H} T={T} E={E}", _attention(N, H, T, E), {})
        for size, N, H, T, E in (("small", 1, 2, 16, 16), ("medium", 4, 4, 128, 32), ("large", 4, 8, 512, 64))
    ),
]
LAYER_NAMES = tuple(dict.fromkeys(c.layer for c in CASES))


def variants(case: Case, arrays: dict[str, torch.Tensor], dout: torch.Tensor) -> dict[str, Callable[[], Any]]:
    """The four timed calls of one case (module docstring), on the same values."""
    entry, twin = LAYERS[case.layer], info(case.layer).twin
    diff = entry.differentiated
    x, params = arrays["x"], {k: v for k, v in arrays.items() if k != "x"}

    def manual_backward() -> Any:
        return entry.backward(dout, x, **params, **case.constants)

    def manual_forward_backward() -> Any:
        out = entry.forward(x, **params, **case.constants)
        return out, entry.backward(dout, x, **params, **case.constants)

    def leaves() -> dict[str, torch.Tensor]:
        return {k: v.detach().requires_grad_(k in diff) for k, v in arrays.items()}

    def grad(out: torch.Tensor, inputs: dict[str, torch.Tensor], retain: bool) -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(out, [inputs[k] for k in diff], dout, retain_graph=retain)

    def autograd_forward_backward() -> Any:
        inputs = leaves()
        out = twin(**inputs, **case.constants)
        return out.detach(), grad(out, inputs, retain=False)

    built = leaves()
    built_out = twin(**built, **case.constants)

    def autograd_backward() -> Any:
        return grad(built_out, built, retain=True)

    return {
        "manual_backward": manual_backward,
        "autograd_backward": autograd_backward,
        "manual_forward_backward": manual_forward_backward,
        "autograd_forward_backward": autograd_forward_backward,
    }


def agreement(case: Case, calls: dict[str, Callable[[], Any]]) -> float:
    """The largest difference of manual's gradients from autograd's, over the largest entry of
    autograd's, of any differentiated array: the timed variants compute the same thing."""
    ours = calls["manual_backward"]()
    ref = calls["autograd_backward"]()
    worst = 0.0
    for name, r in zip(LAYERS[case.layer].differentiated, ref):
        d = (ours[name].detach() - r).abs().max() / (r.abs().max() + 1e-30)
        worst = max(worst, float(d))
    return worst


def time_case(case: Case, dtype: torch.dtype, device: str, *, rounds: int, block_s: float) -> list[dict[str, Any]]:
    """One case: the four variants in interleaved rounds, then each one's peak memory."""
    rng = np.random.default_rng(0)
    arrays = case.make(rng, dtype, device)
    out = LAYERS[case.layer].forward(**arrays, **case.constants)
    dout = _t(rng.standard_normal(tuple(out.shape)), dtype, device)
    del out
    calls = variants(case, arrays, dout)
    agree = agreement(case, calls)
    timed = timed_variants(calls, VARIANTS, BASELINE, device=device, rounds=rounds, block_s=block_s)
    case_fields = {
        "layer": case.layer,
        "size": case.size,
        "shape": case.shape,
        "constants": case.constants,
        "dtype": str(dtype).removeprefix("torch."),
        "device": device,
    }
    return [{**case_fields, **timed[name], "agree_rel": agree} for name in VARIANTS]


def run(args: argparse.Namespace) -> dict[str, Any]:
    exact_torch(args.threads, args.device)
    mode = "quick" if args.quick else "full"
    rounds = args.rounds or ROUNDS[mode]
    cases = [c for c in CASES if c.layer in args.layers and c.size in args.sizes]
    load_before = os.getloadavg()
    records = []
    for k, case in enumerate(cases, 1):
        print(f"[{k}/{len(cases)}] {case.layer} {case.size} ({case.shape})", file=sys.stderr, flush=True)
        records += time_case(case, getattr(torch, args.dtype), args.device, rounds=rounds, block_s=BLOCK_S[mode])
    return {
        "records": records,
        "machine": machine(args.device, load_before),
        "settings": {
            "quick": args.quick,
            "dtype": args.dtype,
            "device": args.device,
            "rounds": rounds,
            "block_s": BLOCK_S[mode],
            "order": "interleaved: A B C D, then D C B A, ...",
            "variants": list(VARIANTS),
            "ratio": "per round, a variant's time / its baseline's time of the same round; median, lo = 25th, "
            "hi = 75th percentile",
            "tf32": False if args.device == "cuda" else None,
            "peak_bytes": "benchmarks/memory.py: CUDA max_memory_allocated; CPU torch profiler memory events; "
            "what exists before the call (inputs, autograd_backward's graph) is not counted",
        },
    }


def table(result: dict[str, Any]) -> str:
    m, st = result["machine"], result["settings"]
    lines = [
        f"{m['device']}, torch {m['torch']}, {m['threads']} threads, {st['device']}, {st['dtype']}, "
        f"{st['rounds']} interleaved rounds; load average {m['load_average']['start'][0]:.1f} at the start, "
        f"{m['load_average']['end'][0]:.1f} at the end",
        f"{'layer':<29} {'size':<31} {'variant':<26} {'median ms':>10} {'spread ms':>19} {'peak MiB':>9} "
        f"{'manual/autograd':>20}",
    ]
    for r in result["records"]:
        t, q = r["time_s"], r["ratio"]
        spread = f"[{t['lo'] * 1e3:.3f}-{t['hi'] * 1e3:.3f}]"
        ratio = f"{q['median']:.2f}x [{q['lo']:.2f}-{q['hi']:.2f}]" if r["variant"].startswith("manual") else ""
        lines.append(
            f"{r['layer']:<29} {r['size'] + ' ' + r['shape']:<31} {r['variant']:<26} {r['median_s'] * 1e3:>10.3f} "
            f"{spread:>19} {r['peak_bytes'] / 2**20:>9.3f} {ratio:>20}"
        )
    worst = max((r["agree_rel"] for r in result["records"]), default=0.0)
    lines.append(
        f"(spread = interquartile range of the per-round times; manual/autograd = per-round ratio to "
        "autograd_backward or autograd_forward_backward, median [IQR]; manual's gradients against "
        f"autograd's: largest relative difference {worst:.1e})"
    )
    return "\n".join(lines)


def _names(text: str, known: tuple[str, ...]) -> list[str]:
    """``"a,b"`` as ``["a", "b"]``, each one of ``known`` (argparse names the flag)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {unknown or names!r}; choose from {list(known)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--quick", action="store_true", help="shorter blocks, fewer rounds (default 7)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument(
        "--layers",
        type=lambda s: _names(s, LAYER_NAMES),
        default=list(LAYER_NAMES),
        help=f"comma-separated (default all): {', '.join(LAYER_NAMES)}",
    )
    parser.add_argument(
        "--sizes",
        type=lambda s: _names(s, SIZES),
        default=list(SIZES),
        help="comma-separated (default small,medium,large)",
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds per case (default 15; 7 with --quick)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads(T) first (default: torch's own)")
    parser.add_argument("--json", metavar="PATH", help="write the records as JSON")
    args = parser.parse_args(argv)
    if args.rounds is not None:
        at_least(parser, "--rounds", args.rounds, 1)
    if args.threads is not None:
        at_least(parser, "--threads", args.threads, 1)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available to torch here")
    check_outputs(parser, args.json, None)
    result = run(args)
    print(table(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
