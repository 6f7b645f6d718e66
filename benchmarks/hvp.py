"""Time one Hessian-vector product of the objective three ways, and the Gauss-Newton product by
hand beside them, side by side in one run, on the training-step benchmark's cases (tanh hidden
layers; softmax + ce, or sigmoid + bce where the output has one unit; mean), and measure each one's
peak memory:

- ``manual_hvp``: :func:`manual.hvp` on torch tensors (the R-operator by hand, no autograd);
- ``double_backward``: torch autograd, ``grad(<grad E(P), V>, P)`` with ``create_graph=True`` (the
  baseline);
- ``jvp_of_grad``: ``torch.func.jvp(torch.func.grad(E), (P,), (V,))`` (forward over reverse);
- ``manual_gnvp``: :func:`manual.gnvp`, the Gauss-Newton product by hand (a different matrix: for
  comparison of cost only).

    python benchmarks/hvp.py [--quick] [--device cpu|cuda] [--dtype float32|float64] [--rounds R] [--json PATH]

Timing as benchmarks/train_step.py: interleaved rounds (A B C D, then D C B A), each block a
calibrated run of back-to-back products after a warm-up; per round each product's time over
double_backward's, and per case the median ratio with its interquartile range. Every product runs
on torch (NumPy is not timed here), so OpenBLAS threads do not enter. The autograd products use the
same objective as manual (log-softmax ce from the logits, divided by N); the check that the three
agree to rounding runs before the timing.

Memory: ``peak_bytes`` of one product (benchmarks/memory.py: CUDA max_memory_allocated; CPU torch's
profiler memory events).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F
from _cli import at_least, check_outputs, description
from memory import peak_bytes
from rounds import Spread, block, interleaved, ratios
from train_step import _cpu_name, _size

import manual
from torch_ref.strategies import data_for, params_for

BASELINE = "double_backward"
CASES = {
    "quick": [((2, 2, 1), 1), ((784, 128, 10), 64)],
    "full": [((2, 2, 1), 1), ((784, 128, 10), 64), ((784, 512, 512, 10), 256)],
}
BLOCK_S = {"quick": 0.02, "full": 0.05}


def _spec(sizes: tuple[int, ...]) -> manual.Spec:
    output = ("sigmoid", "bce") if sizes[-1] == 1 else ("softmax", "ce")
    return manual.Spec(sizes, ("tanh",) * (len(sizes) - 2) + (output[0],), output[1], bias=True, reduction="mean")


def _objective(spec: manual.Spec, X: torch.Tensor, Y: torch.Tensor):
    """E(W1, b1, ..., WL, bL) as a torch function: tanh hidden layers, ce from the logits or bce
    from them (softplus form), summed over the batch and divided by N, as manual's."""

    def E(*P: torch.Tensor) -> torch.Tensor:
        u = X
        for l in range(spec.depth):
            I = u @ P[2 * l] + P[2 * l + 1]
            if l < spec.depth - 1:
                u = torch.tanh(I)
        if spec.loss == "ce":
            total = -(Y * F.log_softmax(I, dim=-1)).sum()
        else:
            total = (F.softplus(I) - Y * I).sum()
        return total / X.shape[0]

    return E


def _flat(p: manual.Params) -> list[torch.Tensor]:
    out = []
    for l in range(len(p.weights)):
        out += [p.weights[l], p.biases[l]]
    return out


def _impls(spec, params, X, Y, V):
    E = _objective(spec, X, Y)
    P = _flat(params)
    Vt = _flat(V)

    def manual_hvp():
        return manual.hvp(spec, params, X, Y, V)

    def manual_gnvp():
        return manual.gnvp(spec, params, X, Y, V)

    def double_backward():
        leaves = [p.detach().requires_grad_(True) for p in P]
        g = torch.autograd.grad(E(*leaves), leaves, create_graph=True)
        dot = torch.stack([(gi * v).sum() for gi, v in zip(g, Vt)]).sum()
        return torch.autograd.grad(dot, leaves)

    def jvp_of_grad():
        return torch.func.jvp(torch.func.grad(E, argnums=tuple(range(len(P)))), tuple(P), tuple(Vt))[1]

    return {
        "manual_hvp": manual_hvp,
        "double_backward": double_backward,
        "jvp_of_grad": jvp_of_grad,
        "manual_gnvp": manual_gnvp,
    }


def _agree(impls) -> float:
    """The largest difference of manual_hvp and jvp_of_grad from double_backward, relative to its
    largest entry: the three compute the same product."""
    ref = [t.detach() for t in impls["double_backward"]()]
    worst = 0.0
    for name in ("manual_hvp", "jvp_of_grad"):
        out = impls[name]()
        got = _flat(out) if isinstance(out, manual.Params) else [t.detach() for t in out]
        for a, b in zip(got, ref):
            worst = max(worst, float((a - b).abs().max() / (b.abs().max() + 1e-30)))
    return worst


def run(mode: str, device: str, dtype: str, rounds: int) -> dict:
    torch.manual_seed(0)
    dt = getattr(torch, dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    records = []
    for sizes, N in CASES[mode]:
        spec = _spec(sizes)
        rng = np.random.default_rng(0)
        p_np = params_for(spec, rng, dtype=np.dtype(dtype))
        X_np, Y_np = data_for(spec, N, rng, dtype=np.dtype(dtype))
        V_np = p_np.map(lambda a, rng=rng: rng.standard_normal(a.shape).astype(dtype))

        def t(a):
            return torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=dt)

        params, V = p_np.map(t), V_np.map(t)
        X, Y = t(X_np), t(Y_np)
        impls = _impls(spec, params, X, Y, V)
        agree = _agree(impls)
        blocks = {name: block(fn, block_s=BLOCK_S[mode], sync=sync) for name, fn in impls.items()}
        times = interleaved(blocks, rounds=rounds)
        per_round = ratios(times, BASELINE)
        case = f"{'-'.join(map(str, sizes))}/b{N}"
        for name in impls:
            records.append(
                {
                    "case": case,
                    "dtype": dtype,
                    "impl": name,
                    "median_s": float(np.median(times[name])),
                    "ratio": Spread.of(per_round[name]).as_dict(),
                    "peak_bytes": peak_bytes(impls[name], device, sync=sync),
                    "agree_rel": agree,
                }
            )
        print(f"{case}: timed", file=sys.stderr, flush=True)
    return {
        "machine": _cpu_name() if device == "cpu" else torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": device,
        "rounds": rounds,
        "baseline": BASELINE,
        "records": records,
    }


def table(result: dict) -> str:
    lines = [
        f"{result['machine']}, torch {result['torch']}, {result['threads']} threads, {result['device']}, "
        f"{result['rounds']} interleaved rounds",
        f"{'case':<22} {'dtype':<8} {'impl':<16} {'median':>12} {'vs ' + BASELINE:>26} {'peak memory':>12}",
    ]
    for r in result["records"]:
        q = r["ratio"]
        lines.append(
            f"{r['case']:<22} {r['dtype']:<8} {r['impl']:<16} {r['median_s'] * 1e6:>10.1f}us "
            f"{q['median']:>9.2f}x [{q['lo']:.2f}-{q['hi']:.2f}]      {_size(r['peak_bytes']):>12}"
        )
    worst = max(r["agree_rel"] for r in result["records"])
    lines.append(f"manual_hvp and jvp_of_grad against double_backward: largest relative difference {worst:.1e}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--quick", action="store_true", help="two small cases, short blocks")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", help="write the records here")
    args = parser.parse_args(argv)
    at_least(parser, "--rounds", args.rounds, 1)
    check_outputs(parser, args.json, None)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA device visible to torch")
    result = run("quick" if args.quick else "full", args.device, args.dtype, args.rounds)
    print(table(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
