"""Time whole networks' training steps: manual.network's hand-derived δ recursion and AdamW update
against what a torch user writes (the twin's modules, autograd, torch.optim.AdamW), on torch tensors,
on the CPU or a GPU: a GPT-style transformer block and a small CNN, at two sizes each.

    python benchmarks/networks.py [--quick] [--device cpu|cuda] [--dtype float32|float64]
                                  [--networks transformer,cnn] [--sizes small,large] [--rounds R]
                                  [--threads T] [--json PATH]

Four variants of each case, on the same batch and the same starting parameters:

- ``manual_step``: ``NetworkTrainer(net, params, lr=1e-3, optimizer="adamw").step(X, Y)``: the forward,
  every node's hand-derived backward (each recomputes what it needs from its node's input), AdamW;
- ``autograd_step``: ``zero_grad(set_to_none=True)``, the twin module (``torch_ref.networks.twin``),
  ``F.cross_entropy``, ``.backward()``, ``torch.optim.AdamW(lr=1e-3).step()`` (torch's defaults:
  weight decay 0.01; on the CPU its per-parameter loop, on CUDA its ``foreach`` kernels);
- ``manual_backward``: ``net.backward(params, X, Y)``: the forward and the gradients, no update;
- ``autograd_backward``: the twin's forward and ``torch.autograd.grad`` of the loss: the same, by autograd.

Each manual variant's ratio is over its autograd counterpart, per round. Timing as benchmarks/layers.py
(benchmarks/rounds.py): interleaved rounds (A B C D, then D C B A, ...), each block a calibrated run of
back-to-back calls after a warm-up, torch's own thread count (``--threads`` sets another); per case the
median of the per-round times with their interquartile range, and the median per-round ratio with its
interquartile range. Each step variant trains its own copy of the parameters across the calls (the
cost of a step does not depend on the values). On CUDA every block ends with torch.cuda.synchronize()
and TF32 is off.

Before the timing, each case checks that both take the same step: from the same parameters, manual's
gradients against autograd's (``grad_agree_rel``) and the parameters after one manual step against
those after one torch.optim.AdamW step (``step_agree_rel``), each the largest difference over the
largest entry of the worst parameter; in the timed dtype, and again in float64 from the same values
(``*_float64``: in float32 Adam's first step magnifies the gradients' rounding, see :func:`agreement`).

Memory: ``peak_bytes`` of one call of each variant, after the case's rounds (benchmarks/memory.py:
CUDA max_memory_allocated after a reset; CPU torch's profiler memory events): what the call allocates
beyond the parameters, the batch and the optimizer's state; autograd's ``.grad`` tensors from the step
before are released first, so they count.
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
import torch.nn.functional as F
from _cli import at_least, check_outputs, description
from _measure import exact_torch, machine, timed_variants
from layers import _names

from manual.network import (
    Network,
    Residual,
    conv2d,
    embedding,
    layer_norm,
    linear,
    max_pool2d,
    self_attention,
)
from manual.network.trainer import NetworkTrainer
from torch_ref.networks.twin import load, module, params_of, torch_names

VARIANTS = ("manual_step", "autograd_step", "manual_backward", "autograd_backward")
BASELINE = {
    "manual_step": "autograd_step",
    "autograd_step": "autograd_step",
    "manual_backward": "autograd_backward",
    "autograd_backward": "autograd_backward",
}
BLOCK_S = {"quick": 0.02, "full": 0.1}  # seconds per timed block
ROUNDS = {"quick": 7, "full": 15}
SIZES = ("small", "large")
AGREE = ("grad_agree_rel", "step_agree_rel", "grad_agree_rel_float64", "step_agree_rel_float64")
LR = 1e-3  # torch.optim.AdamW's default, and its default weight decay 0.01 on both sides


Batch = Callable[[np.random.Generator, torch.dtype, str], tuple[torch.Tensor, torch.Tensor]]
"""``batch(rng, dtype, device)``: one case's inputs X and integer targets Y."""


@dataclass(frozen=True)
class Case:
    """One network at one size: its layers and loss, and how to draw a batch for it."""

    network: str
    size: str
    shape: str
    net: Network
    batch: Batch


def transformer(V: int, D: int, H: int, T: int, N: int, size: str) -> Case:
    """A GPT-style block: embedding, pre-norm causal self-attention and MLP (4D, GELU) each in a residual,
    a final layer norm and the projection to V logits; every position's next token is a target."""
    net = Network(
        [
            embedding(V, D),
            Residual([layer_norm(D), self_attention(D, H)]),
            Residual([layer_norm(D), linear(D, 4 * D), "gelu", linear(4 * D, D)]),
            layer_norm(D),
            linear(D, V),
        ],
        "cross_entropy",
    )

    def batch(rng: np.random.Generator, dtype: torch.dtype, device: str) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.from_numpy(rng.integers(0, V, (N, T + 1))).to(device)
        return tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    return Case("transformer", size, f"V={V} D={D} H={H} T={T} N={N}", net, batch)


def cnn(C: int, HW: int, F1: int, F2: int, K: int, N: int, size: str) -> Case:
    """Two 3x3 convolutions (padding 1) each with ReLU and 2x2 max pooling, then a linear layer to K classes."""
    net = Network(
        [
            conv2d(C, F1, 3, padding=1),
            "relu",
            max_pool2d(2),
            conv2d(F1, F2, 3, padding=1),
            "relu",
            max_pool2d(2),
            "flatten",
            linear(F2 * (HW // 4) ** 2, K),
        ],
        "cross_entropy",
    )

    def batch(rng: np.random.Generator, dtype: torch.dtype, device: str) -> tuple[torch.Tensor, torch.Tensor]:
        X = torch.from_numpy(rng.standard_normal((N, C, HW, HW))).to(device=device, dtype=dtype)
        return X, torch.from_numpy(rng.integers(0, K, N)).to(device)

    return Case("cnn", size, f"{C}x{HW}x{HW} F={F1}/{F2} K={K} N={N}", net, batch)


CASES = [
    transformer(64, 64, 4, 32, 8, "small"),
    transformer(256, 256, 4, 128, 8, "large"),
    cnn(1, 28, 8, 16, 10, 32, "small"),
    cnn(3, 32, 32, 64, 10, 64, "large"),
]
NETWORK_NAMES = tuple(dict.fromkeys(c.network for c in CASES))


@dataclass
class Setup:
    """One case's four timed calls (module docstring), from the same starting values, and the checks
    that they compute the same thing."""

    calls: dict[str, Callable[[], Any]]
    release: dict[str, Callable[[], None]]
    agree: dict[str, float]
    parameters: int


def _loss(out: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), Y.reshape(-1))


def _worst(ours: dict[str, Any], ref: dict[str, torch.Tensor]) -> float:
    """The largest, over the arrays, of the largest difference over the largest reference entry."""
    return max(float((ours[k] - r).abs().max() / (r.abs().max() + 1e-30)) for k, r in ref.items())


def _by_name(net: Network, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A twin's tensors by its state_dict names -> by manual's names, in manual's (in, out) layout."""
    return {k: (tensors[t].T if tr else tensors[t]).detach() for k, (t, tr) in torch_names(net).items()}


def _one_step(net: Network, start: dict[str, torch.Tensor], X: torch.Tensor, Y: torch.Tensor) -> tuple[float, float]:
    """(gradients, parameters after one AdamW step): manual's against autograd's and torch.optim.AdamW's,
    each the largest difference over the largest entry, of the worst parameter."""
    ref = module(net, next(iter(start.values())).dtype).to(X.device)
    load(net, ref, start)
    _loss(ref(X), Y).backward()
    ref_grads = _by_name(net, {k: torch.zeros_like(p) if p.grad is None else p.grad for k, p in ref.named_parameters()})
    torch.optim.AdamW(ref.parameters(), lr=LR).step()
    trainer = NetworkTrainer(net, start, lr=LR, optimizer="adamw")
    trainer.step(X, Y)
    stepped = {k: v.detach() for k, v in params_of(net, ref).items()}
    return _worst(net.backward(start, X, Y)[1], ref_grads), _worst(trainer.params, stepped)


def agreement(case: Case, start: dict[str, torch.Tensor], X: torch.Tensor, Y: torch.Tensor) -> dict[str, float]:
    """Both sides take the same step, checked before the timing: in the timed dtype, and in float64 from
    the same values. Adam's first step moves each entry by about ``lr * g / (|g| + eps)``: where a
    gradient is near ``eps`` = 1e-8, far below float32's rounding of the largest gradient, a rounding
    difference in g moves the entry by up to ``lr``, so in float32 the parameters agree to the gradients'
    rounding times ``lr / eps``, not to the gradients' own agreement; float64 shows the step itself."""
    grads, step = _one_step(case.net, start, X, Y)
    if next(iter(start.values())).dtype == torch.float64:
        grads64, step64 = grads, step
    else:
        wide = {k: v.to(torch.float64) for k, v in start.items()}
        X64 = X.to(torch.float64) if X.is_floating_point() else X
        grads64, step64 = _one_step(case.net, wide, X64, Y)
    return dict(zip(AGREE, (grads, step, grads64, step64)))


def setup(case: Case, dtype: torch.dtype, device: str) -> Setup:
    rng = np.random.default_rng(0)
    net = case.net
    start = {k: torch.from_numpy(v).to(device=device, dtype=dtype) for k, v in net.init(rng).items()}
    X, Y = case.batch(rng, dtype, device)

    def twin() -> torch.nn.Module:
        mod = module(net, dtype).to(device)
        load(net, mod, start)
        return mod

    # fresh copies for the timing: each step variant trains its own
    trainer = NetworkTrainer(net, start, lr=LR, optimizer="adamw")
    mod = twin()
    opt = torch.optim.AdamW(mod.parameters(), lr=LR)
    fixed = twin()
    leaves = list(fixed.parameters())

    def manual_step() -> Any:
        return trainer.step(X, Y)

    def autograd_step() -> Any:
        opt.zero_grad(set_to_none=True)
        loss = _loss(mod(X), Y)
        loss.backward()
        opt.step()
        return loss.detach()

    def manual_backward() -> Any:
        return net.backward(start, X, Y)

    def autograd_backward() -> Any:
        loss = _loss(fixed(X), Y)
        return loss.detach(), torch.autograd.grad(loss, leaves)

    return Setup(
        calls={
            "manual_step": manual_step,
            "autograd_step": autograd_step,
            "manual_backward": manual_backward,
            "autograd_backward": autograd_backward,
        },
        release={"autograd_step": lambda: opt.zero_grad(set_to_none=True)},
        agree=agreement(case, start, X, Y),
        parameters=sum(int(v.numel()) for v in start.values()),
    )


def time_case(case: Case, dtype: torch.dtype, device: str, *, rounds: int, block_s: float) -> list[dict[str, Any]]:
    """One case: the agreement checks, the four variants in interleaved rounds, then each one's peak memory."""
    s = setup(case, dtype, device)
    a = s.agree
    print(
        f"    same step (largest difference over largest entry, worst parameter): {str(dtype)[6:]} gradients "
        f"{a['grad_agree_rel']:.1e}, parameters after one AdamW step {a['step_agree_rel']:.1e}; float64 gradients "
        f"{a['grad_agree_rel_float64']:.1e}, parameters {a['step_agree_rel_float64']:.1e}",
        file=sys.stderr,
        flush=True,
    )
    timed = timed_variants(
        s.calls, VARIANTS, BASELINE, device=device, rounds=rounds, block_s=block_s, release=s.release
    )
    case_fields = {
        "network": case.network,
        "size": case.size,
        "shape": case.shape,
        "parameters": s.parameters,
        "dtype": str(dtype).removeprefix("torch."),
        "device": device,
    }
    return [{**case_fields, **timed[name], **s.agree} for name in VARIANTS]


def run(args: argparse.Namespace) -> dict[str, Any]:
    exact_torch(args.threads, args.device)
    mode = "quick" if args.quick else "full"
    rounds = args.rounds or ROUNDS[mode]
    cases = [c for c in CASES if c.network in args.networks and c.size in args.sizes]
    load_before = os.getloadavg()
    records = []
    for k, case in enumerate(cases, 1):
        print(f"[{k}/{len(cases)}] {case.network} {case.size} ({case.shape})", file=sys.stderr, flush=True)
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
            "lr": LR,
            "optimizer": "AdamW, torch's defaults (betas 0.9/0.999, eps 1e-8, weight_decay 0.01)",
            "order": "interleaved: A B C D, then D C B A, ...",
            "variants": list(VARIANTS),
            "ratio": "per round, a variant's time / its baseline's time of the same round; median, lo = 25th, "
            "hi = 75th percentile",
            "agree_rel": "largest difference over largest entry, worst parameter: the gradients (grad_agree_rel) "
            "and the parameters after one AdamW step from the same start (step_agree_rel); in the timed dtype "
            "and in float64 (*_float64)",
            "tf32": False if args.device == "cuda" else None,
            "peak_bytes": "benchmarks/memory.py: CUDA max_memory_allocated; CPU torch profiler memory events; "
            "beyond the parameters, the batch and the optimizer's state; autograd's .grad released first",
        },
    }


def table(result: dict[str, Any]) -> str:
    m, st = result["machine"], result["settings"]
    lines = [
        f"{m['device']}, torch {m['torch']}, {m['threads']} threads, {st['device']}, {st['dtype']}, "
        f"{st['rounds']} interleaved rounds; load average {m['load_average']['start'][0]:.1f} at the start, "
        f"{m['load_average']['end'][0]:.1f} at the end",
        f"{'network':<12} {'size':<40} {'variant':<18} {'median ms':>10} {'spread ms':>19} {'peak MiB':>9} "
        f"{'manual/autograd':>20}",
    ]
    for r in result["records"]:
        t, q = r["time_s"], r["ratio"]
        spread = f"[{t['lo'] * 1e3:.3f}-{t['hi'] * 1e3:.3f}]"
        ratio = f"{q['median']:.2f}x [{q['lo']:.2f}-{q['hi']:.2f}]" if r["variant"].startswith("manual") else ""
        lines.append(
            f"{r['network']:<12} {r['size'] + ' ' + r['shape']:<40} {r['variant']:<18} {r['median_s'] * 1e3:>10.3f} "
            f"{spread:>19} {r['peak_bytes'] / 2**20:>9.3f} {ratio:>20}"
        )
    worst = {k: max((r[k] for r in result["records"]), default=0.0) for k in AGREE}
    lines.append(
        "(spread = interquartile range of the per-round times; manual/autograd = per-round ratio to autograd_step "
        f"or autograd_backward, median [IQR]; manual against autograd from the same start, largest relative "
        f"difference: {st['dtype']} gradients {worst['grad_agree_rel']:.1e}, parameters after one AdamW step "
        f"{worst['step_agree_rel']:.1e}; float64 gradients {worst['grad_agree_rel_float64']:.1e}, parameters "
        f"{worst['step_agree_rel_float64']:.1e})"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--quick", action="store_true", help="shorter blocks, fewer rounds (default 7)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument(
        "--networks",
        type=lambda s: _names(s, NETWORK_NAMES),
        default=list(NETWORK_NAMES),
        help=f"comma-separated (default all): {', '.join(NETWORK_NAMES)}",
    )
    parser.add_argument(
        "--sizes", type=lambda s: _names(s, SIZES), default=list(SIZES), help="comma-separated (default small,large)"
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
