"""The fixed small cases every check runs after its draw, so that the defaults cover every valid
output/loss pair, every hidden activation, bias on and off, both reductions, square layers, one
example and several, and an input of exactly 0 in every layer of each activation with a kink at 0."""

from __future__ import annotations

from typing import Any

import manual
from manual import Spec

from ..strategies import Case, case_from, kink_placeable, output_pairs
from .options import Options

__all__ = ["coverage_cases"]


def coverage_cases(opt: Options, dtype: Any) -> list[Case]:
    """Small deterministic cases that make the defaults cover every valid output/loss pair, every
    hidden activation, bias on and off, both reductions, square layers, one example and several,
    and an input of exactly 0 in every layer of each activation with a kink at 0 (ReLU, leaky ReLU).
    Built within the ranges; the run hands on only those within every option (:meth:`Options.admits`)."""
    hidden = list(opt.hidden) or [manual.ACTIVATIONS["identity"]]
    out_lo, out_hi = opt.out_range
    outputs = output_pairs(opt.outputs, opt.losses, opt.out_range)
    pairs = [(a, loss) for loss in opt.losses for a in outputs[loss]]
    w_lo, w_hi = opt.widths
    depth = min(max(2, opt.depths[0]), opt.depths[1])
    if not opt.hidden:
        depth = 1
    out: list[Case] = []

    def width(w: int, last: bool, two: bool = False) -> int:
        lo, hi = (max(out_lo, 2 if two else 1), out_hi) if last else (w_lo, w_hi)
        return min(max(w, lo), hi)

    def make(spec: Spec, **kw: Any) -> None:
        out.append(case_from(spec, dtype=dtype, targets=opt.targets, lr=opt.lrs[len(out) % len(opt.lrs)], **kw))

    for k, (act, loss) in enumerate(pairs * max(1, -(-len(hidden) // len(pairs)))):
        square = k % 2 == 0
        two = not act.elementwise and loss.targets == "unit"
        sizes = [width(3 if square else 2 + (n % 3), n == depth, two) for n in range(depth + 1)]
        acts = (*tuple(hidden[(k + n) % len(hidden)] for n in range(depth - 1)), act)
        bias = opt.bias if opt.bias is not None else k % 2 == 1
        spec = Spec(tuple(sizes), acts, loss, bias=bias, reduction=opt.reductions[k % len(opt.reductions)])
        N = min(max(1 if k % 2 == 0 else 3, opt.batch[0]), opt.batch[1])
        make(spec, N=N, seed=k, gain=1.0)
    for kinked in (a for a in hidden if 0.0 in a.kinks):
        if depth < 2:
            break
        loss = opt.losses[0]
        act = outputs[loss][0]
        two = not act.elementwise and loss.targets == "unit"
        kink_sizes = (width(3, False),) * depth + (width(3, True, two),)
        spec = Spec(
            kink_sizes, (kinked,) * (depth - 1) + (act,), loss, bias=bool(opt.bias), reduction=opt.reductions[0]
        )
        if kink_placeable(spec):
            make(spec, N=min(max(2, opt.batch[0]), opt.batch[1]), seed=99, grid=True, kink=True)
    return out
