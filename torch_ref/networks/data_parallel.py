r"""A network's data-parallel gradient: ``dp_grad_fn(net, params, X_shard, Y_shard, allreduce)`` on the
ranks of a gloo group on this machine (:mod:`torch_ref.data_parallel`'s pool), every rank's result
against autograd's gradient of the whole batch on the network's torch twin, within the rounding model
of the whole batch (the all-reduce only regroups the sum over examples, which the model's sum bounds
γ_n cover in any order; dividing after the sum instead of before is another right algorithm, within
``ALGORITHMS``).

The ranks rebuild the network from its code (``repr(net)``, built-in nodes only) and import
``dp_grad_fn`` by name. Networks with batch normalization are not drawn (each rank's statistics
would be its shard's), nor batches smaller than the world size.

Diagnosis, each verified on the failing rank's arrays within the bound: the rank's own shard alone
(no all-reduce) as a sum or divided by its own count or by the whole count; the all-reduced sum not
divided by the whole count; divided by the world size too; the mean of the ranks' own means.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from manual.network import CROSS_ENTROPY, Network

from ..data_parallel.distributed import shards as shard_parts
from ..data_parallel.pool import _discard, _pool
from ..numerics.compare import Comparison, compare
from .case import NetworkCase
from .judge import reference_of, unjudgeable

__all__ = ["DataParallelOutcome", "judge_data_parallel", "message"]


def message(case: NetworkCase, fn: Callable[..., Any], part: slice, arrays: str) -> tuple:
    """What the pool sends one rank."""
    return ("network", fn, repr(case.net), dict(case.params), case.X, case.Y, dict(case.masks), part, arrays)


@dataclass(frozen=True)
class DataParallelOutcome:
    """Every rank's comparison with the whole batch's gradient, on one case."""

    case: Any
    sizes: list[int]
    comparisons: list[Comparison]
    findings: tuple[str, ...] = ()
    results: list[list[np.ndarray]] = field(default_factory=list)
    dtype: str = "float64"
    what: str = "dp_grad_fn"
    detail: str = ""  # why the case is not judged, where it is not

    @property
    def failing(self) -> list[int]:
        return [] if self.detail else [r for r, c in enumerate(self.comparisons) if not c.ok]

    @property
    def kind(self) -> str:
        return "not judged" if self.detail else "mismatch" if self.failing else "agree"

    @property
    def passed(self) -> bool:
        return self.kind == "agree"

    @property
    def comparison(self) -> Comparison:
        return self.comparisons[self.failing[0]] if self.failing else self.comparisons[0]

    @property
    def checked(self) -> Comparison:
        return self.comparison


class _Shipped(NetworkCase):
    """A case the pool sends as a network message."""

    def message(self, fn: Callable[..., Any], part: slice, arrays: str) -> tuple:
        return message(self, fn, part, arrays)


def judge_data_parallel(
    fn: Callable[..., Any], case: NetworkCase, world_size: int, mode: str, timeout_s: float, arrays: str, dtype: str
) -> DataParallelOutcome:
    parts = shard_parts(case.N, world_size, mode)
    shipped = _Shipped(**{f: getattr(case, f) for f in case.__dataclass_fields__})
    try:
        results = _pool(world_size).run(fn, shipped, parts, timeout_s, arrays)  # type: ignore[arg-type]
    except Exception:
        _discard(world_size)
        raise
    traced = reference_of(case)
    names = list(case.net.parameters())
    want = [traced.grads[k].numpy() for k in names]
    bounds = [traced.bound(k, np.dtype(dtype)).numpy() for k in names]
    comparisons = [
        compare(names, got, want, bounds, title=f"rank {r} against autograd's gradient of the whole batch ({dtype})")
        for r, got in enumerate(results)
    ]
    reason = unjudgeable(case, traced, dtype)
    outcome = DataParallelOutcome(
        case, [p.stop - p.start for p in parts], comparisons, results=results, dtype=dtype, detail=reason
    )
    if outcome.failing:
        r = outcome.failing[0]
        found = _diagnose(case, parts, r, results[r], want, bounds, world_size)
        return DataParallelOutcome(case, outcome.sizes, comparisons, tuple(found), results, dtype)
    return outcome


def _diagnose(
    case: NetworkCase,
    parts: list[slice],
    rank: int,
    got: list[np.ndarray],
    want: list[np.ndarray],
    bounds: list[np.ndarray],
    world: int,
) -> list[str]:
    net = case.net
    names = list(net.parameters())
    summed = Network(net.layers, net.loss, reduction="sum")
    params = case.params_as(np.float64)

    def count(Y: np.ndarray) -> int:
        return int(Y.size if net.loss == CROSS_ENTROPY else Y.shape[0])

    def shard_sum(p: slice) -> list[np.ndarray]:
        if p.stop <= p.start:
            return [np.zeros(s) for s in net.parameters().values()]
        X = case.X[p] if case.X.dtype.kind == "i" else case.X[p].astype(np.float64)
        Y = case.Y[p] if case.Y.dtype.kind == "i" else case.Y[p].astype(np.float64)
        masks = {k: m[p] for k, m in case.masks.items()} or None
        g = summed.gradients(params, X, Y, masks=masks)
        return [np.asarray(g[k]) for k in names]

    total = count(case.Y)
    own = shard_sum(parts[rank])
    n_own = count(case.Y[parts[rank]])
    everything = [np.sum(np.stack(arrays), axis=0) for arrays in zip(*(shard_sum(p) for p in parts))]
    mean = net.reduction == "mean"
    candidates: list[tuple[str, list[np.ndarray]]] = [
        ("the rank's own shard only (no all-reduce), summed", own),
        ("the all-reduced sum not divided by the whole batch's count", everything),
    ]
    if mean:
        if n_own:
            candidates.append(
                ("the rank's own shard only (no all-reduce), divided by its own count", [g / n_own for g in own])
            )
        candidates.append(
            ("the rank's own shard only (no all-reduce), divided by the whole batch's count", [g / total for g in own])
        )
        candidates.append(
            ("divided by the world size as well as by the count", [g / total / world for g in everything])
        )
        counts = [count(case.Y[p]) for p in parts]
        if all(counts):
            means = [[g / c for g in shard_sum(p)] for p, c in zip(parts, counts)]
            candidates.append(
                (
                    "the mean of the ranks' own means (right only for equal shards)",
                    [np.sum(np.stack(x), axis=0) / world for x in zip(*means)],
                )
            )
    found: list[str] = []
    named: list[list[np.ndarray]] = []
    for name, values in candidates:
        if compare(names, values, want, bounds).ok:
            continue
        if any(compare(names, values, other, bounds).ok for other in named):
            continue  # the same arrays as a mistake named already (a one-example shard's sum and mean)
        if compare(names, got, values, bounds).ok:
            named.append(values)
            found.append(
                f"Diagnosis: rank {rank} returns {name}. Verified: it reproduces every array of that rank within its bound."
            )
    return found or [
        f"Diagnosis: no known data-parallel mistake reproduces rank {rank}'s result (own shard, missing division, world size, mean of means)."
    ]
