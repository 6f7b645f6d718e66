"""The diagnosis of a data-parallel mismatch: the known mistakes as candidate gradients on the case
(each named only where it fits every array of the rank within the derived bound and differs from
the right gradient there, or array by array), and what torch DDP's result on the same shards is.
"""

from __future__ import annotations

import numpy as np

from manual import Params, Spec

from ..strategies import Case
from ..twin.reference import reference


def _ddp_lines(
    case: Case,
    parts: list[slice],
    rank: int,
    got: list[np.ndarray],
    ddp: list[np.ndarray],
    want: list[np.ndarray],
    bounds: list[np.ndarray],
    W: int,
) -> tuple[str, ...]:
    """What torch DDP gives on the same shards, and whether rank ``rank``'s result is that."""
    reduction = case.spec.reduction
    head = (
        f"torch DDP on the same shards (DistributedDataParallel on the torch network, each rank's own "
        f"{reduction} objective; DDP averages the ranks' gradients) gives "
    )
    if _within(ddp, want, bounds):
        first = head + "the whole batch's gradient here."
    else:
        named = _fitting(_candidates(case, parts, rank, want, W, own=False), ddp, want, bounds)
        what = "; and also ".join(named) if named else "a gradient none of the listed conventions fits"
        first = head + f"not the whole batch's gradient here but {what}."
    same = _within(got, ddp, bounds)
    second = (
        f"Rank {rank}'s result equals DDP's within the derived bound."
        if same
        else f"Rank {rank}'s result differs from DDP's beyond the derived bound."
    )
    return (first, second)


def _local(case: Case, part: slice, reduction: str) -> list[np.ndarray] | None:
    """Autograd's gradient of one shard alone, float64, with the given reduction: for an empty
    shard its sum is zero, its mean undefined (None)."""
    if part.stop <= part.start:
        if reduction != "sum":
            return None
        return [np.zeros(np.shape(a)) for _, a in case.params.arrays()]
    spec = Spec(case.spec.sizes, case.spec.activations, case.spec.loss, bias=case.spec.bias, reduction=reduction)
    params64 = case.params.map(lambda a: np.asarray(a, dtype=np.float64))
    g = reference(spec, params64, case.X[part].astype(np.float64), case.Y[part].astype(np.float64)).grads
    return [a for _, a in g.arrays()]


def _candidates(
    case: Case, parts: list[slice], rank: int, want: list[np.ndarray], W: int, own: bool = True
) -> list[tuple[str, list[np.ndarray]]]:
    """The known data-parallel mistakes as (words, the gradient it gives) on this case; ``own``: with
    those that read rank ``rank``'s shard alone."""
    N = case.X.shape[0]
    mean = case.spec.reduction == "mean"
    out: list[tuple[str, list[np.ndarray]]] = [
        (f"the right gradient times the world size ({W})", [W * a for a in want]),
        (f"the right gradient divided by the world size ({W})", [a / W for a in want]),
    ]
    own_sum = _local(case, parts[rank], "sum") if own else None
    if own_sum is not None:
        out.append((f"rank {rank}'s own shard only (no all-reduce), summed", own_sum))
        if mean and parts[rank].stop > parts[rank].start:  # an empty shard has no mean of its own
            out.append(
                (
                    f"rank {rank}'s own shard only (no all-reduce), its own mean",
                    [a / (parts[rank].stop - parts[rank].start) for a in own_sum],
                )
            )
            out.append(
                (
                    f"rank {rank}'s own shard only (no all-reduce), summed and divided by the global N",
                    [a / N for a in own_sum],
                )
            )
    if mean:
        sums = [_local(case, p, "sum") for p in parts]
        means = [[a / (p.stop - p.start) for a in g] for g, p in zip(sums, parts) if g is not None and p.stop > p.start]
        averaged = [sum(m[i] for m in means) / W for i in range(len(want))]
        empty = " (an empty shard counting as a zero gradient)" if len(means) < W else ""
        out.append((f"the mean of the ranks' own means{empty} (right only when the shards are equal)", averaged))
        out.append(("the batch's sum, never divided by N", [a * N for a in want]))
    return out


def _within(got: list[np.ndarray], values: list[np.ndarray], bounds: list[np.ndarray]) -> bool:
    return len(got) == len(values) and all(np.all(np.abs(g - v) <= b) for g, v, b in zip(got, values, bounds))


def _fitting(
    candidates: list[tuple[str, list[np.ndarray]]],
    got: list[np.ndarray],
    want: list[np.ndarray],
    bounds: list[np.ndarray],
) -> list[str]:
    """The candidates ``got`` equals within the bounds and that are told apart from ``want`` there."""
    return [words for words, values in candidates if _within(got, values, bounds) and not _within(values, want, bounds)]


def _diagnose(
    case: Case,
    parts: list[slice],
    rank: int,
    got: list[np.ndarray],
    want: list[np.ndarray],
    bounds: list[np.ndarray],
    W: int,
) -> tuple[str, ...]:
    depth = case.spec.depth
    names = [n for n, _ in Params([0] * depth, [0] * depth if case.spec.bias else None).arrays()]
    nonfinite = [n for n, g in zip(names, got) if not np.all(np.isfinite(g))]
    if nonfinite:
        size = parts[rank].stop - parts[rank].start
        return (
            f"Diagnosis: rank {rank}'s result has NaN or infinite values in {', '.join(nonfinite)}; its shard "
            f"holds {size} example{'s' if size != 1 else ''}.",
        )
    candidates = _candidates(case, parts, rank, want, W)
    fits = _fitting(candidates, got, want, bounds)
    if not fits:
        per_array = []
        for k, name in enumerate(names):
            if np.all(np.abs(got[k] - want[k]) <= bounds[k]):
                continue
            one = [
                words
                for words, values in candidates
                if np.all(np.abs(got[k] - values[k]) <= bounds[k]) and np.any(np.abs(values[k] - want[k]) > bounds[k])
            ]
            per_array.append(f"{name} equals {'; and also '.join(one)}" if one else f"{name}: no known mistake fits")
        if any(" equals " in line for line in per_array):
            return (
                f"Diagnosis: no known mistake fits every array of rank {rank}; array by array, within the derived "
                f"bound (the arrays not named agree): " + "; ".join(per_array) + ".",
            )
        return ("Diagnosis: no known data-parallel mistake fits",)
    return (f"Diagnosis: rank {rank}'s result equals, within the derived bound, " + "; and also ".join(fits) + ".",)
