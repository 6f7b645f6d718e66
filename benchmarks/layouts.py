"""Does the weights' layout change the GEMM rate? Each matrix product of a training step, in each
transposition of its operands, timed in interleaved rounds (benchmarks/rounds.py).

    python benchmarks/layouts.py [--batch 512] [--width 2048] [--dtype float32] [--rounds 9]

For a layer of ``width`` inputs and outputs on a batch of ``batch``: the forward product (weights
stored (in, out) as manual keeps them, or (out, in) as nn.Linear does), the backward product
``delta W^T`` in both storages, and the gradient product (into a fresh tensor or accumulated in place
by ``addmm_``, in both storages). Prints the median time of each, its interquartile range and its
GFLOP/s.
"""

from __future__ import annotations

import argparse
import sys

import torch
from _cli import at_least, description, positive
from rounds import Spread, block, interleaved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--block", type=float, default=0.1)
    args = parser.parse_args(argv)
    at_least(parser, "--batch", args.batch, 1)
    at_least(parser, "--width", args.width, 1)
    at_least(parser, "--rounds", args.rounds, 3)
    positive(parser, "--block", args.block)
    dtype, N, D = getattr(torch, args.dtype), args.batch, args.width
    g = torch.Generator().manual_seed(0)
    u, d = torch.randn(N, D, dtype=dtype, generator=g), torch.randn(N, D, dtype=dtype, generator=g)
    W = torch.randn(D, D, dtype=dtype, generator=g) / D  # (in, out), as manual keeps it
    Wt = W.T.contiguous()  # (out, in), as nn.Linear keeps it
    b = torch.zeros(D, dtype=dtype)
    products = {
        "forward  addmm(b, u, W)        W (in, out)": lambda: torch.addmm(b, u, W),
        "forward  addmm(b, u, Wt.T)     W (out, in)": lambda: torch.addmm(b, u, Wt.T),
        "backward mm(d, W.T)            W (in, out)": lambda: torch.mm(d, W.T),
        "backward mm(d, Wt)             W (out, in)": lambda: torch.mm(d, Wt),
        "gradient W.addmm_(u.T, d)      W (in, out)": lambda: W.addmm_(u.T, d, alpha=-1e-12),
        "gradient Wt.addmm_(d.T, u)     W (out, in)": lambda: Wt.addmm_(d.T, u, alpha=-1e-12),
        "gradient mm(u.T, d), new       W (in, out)": lambda: torch.mm(u.T, d),
        "gradient mm(d.T, u), new       W (out, in)": lambda: torch.mm(d.T, u),
    }
    times = interleaved({k: block(f, block_s=args.block) for k, f in products.items()}, rounds=args.rounds)
    flops = 2 * N * D * D
    print(f"{args.dtype}, batch {N}, width {D}, {args.rounds} interleaved rounds")
    for name, ts in times.items():
        s = Spread.of(ts)
        print(
            f"{name}  {s.median * 1e3:8.2f} ms [{s.lo * 1e3:.2f}-{s.hi * 1e3:.2f}]  {flops / s.median / 1e9:6.1f} GFLOP/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
