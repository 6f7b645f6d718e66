"""Data-parallel derivations people write, right and wrong, as module-level functions (the oracle's
rank processes import them by name). Each wrong one is a mistake the data-parallel literature and
issue trackers describe: DDP averages gradients over ranks, so a mean-reduced loss on unequal shards
is not the whole batch's gradient; dividing by the world size twice or not at all; the all-reduce
left out."""

import numpy as np

import manual


def _sum_of_shard(spec, params, X, Y):
    if X.shape[0] == 0:
        return params.map(np.zeros_like)
    summed = manual.Spec(spec.sizes, spec.activations, spec.loss, bias=spec.bias, reduction="sum")
    return manual.gradients(summed, params, X, Y)


def _mean_of_shard(spec, params, X, Y):
    g = _sum_of_shard(spec, params, X, Y)
    return g if spec.reduction == "sum" else g.map(lambda a: a / max(X.shape[0], 1))


def right_by_hand(spec, params, X, Y, allreduce):
    """Right, written out: shard sums all-reduced, a mean divided by the all-reduced N."""
    g = _sum_of_shard(spec, params, X, Y).map(allreduce)
    if spec.reduction == "mean":
        g = g.map(lambda a: a / allreduce(np.array([float(X.shape[0])]))[0])
    return g


def no_allreduce(spec, params, X, Y, allreduce):
    """The all-reduce left out: each rank returns its own shard's gradient."""
    return _mean_of_shard(spec, params, X, Y)


def mean_of_means(spec, params, X, Y, allreduce):
    """DDP's convention with a mean loss: each rank's own mean gradient, averaged over the ranks."""
    world = allreduce(np.ones(1))[0]
    return _mean_of_shard(spec, params, X, Y).map(lambda a: allreduce(a) / world)


def divided_by_world_twice(spec, params, X, Y, allreduce):
    """The right gradient, then divided by the world size once more (as if DDP had not already)."""
    world = allreduce(np.ones(1))[0]
    return right_by_hand(spec, params, X, Y, allreduce).map(lambda a: a / world)


def sum_over_world(spec, params, X, Y, allreduce):
    """The shards' sums all-reduced and then multiplied by the world size (an average undone twice)."""
    world = allreduce(np.ones(1))[0]
    return right_by_hand(spec, params, X, Y, allreduce).map(lambda a: a * world)


def mean_never_divided(spec, params, X, Y, allreduce):
    """A mean objective, but the all-reduced sums are returned as they are."""
    return _sum_of_shard(spec, params, X, Y).map(allreduce)


def crashes_on_rank_1(spec, params, X, Y, allreduce):
    """Right on rank 0; rank 1 (the second shard) raises before its first collective."""
    world = allreduce(np.ones(1))[0]
    rank = allreduce(np.array([0.0]))  # every rank joins, no rank learns anything
    del rank
    if X.shape[0] == 0 and world > 1:
        raise RuntimeError("this rank has no examples")
    return right_by_hand(spec, params, X, Y, allreduce)


def extra_collective_on_small_shards(spec, params, X, Y, allreduce):
    """A rank with fewer than 2 examples calls the all-reduce once more than the others: a hang."""
    if X.shape[0] < 2:
        allreduce(np.zeros(1))
    return right_by_hand(spec, params, X, Y, allreduce)


def stuck_on_small_shards(spec, params, X, Y, allreduce):
    """A rank with fewer than 2 examples never answers (waiting on something that never comes, as a
    rank stuck in a collective the others never call): a hang, whatever the shapes."""
    if X.shape[0] < 2:
        import time

        time.sleep(3600)
    return right_by_hand(spec, params, X, Y, allreduce)


def right_on_tensors_only(spec, params, X, Y, allreduce):
    """Right, and refuses anything but torch tensors (what arrays="torch" hands over)."""
    import torch

    if not isinstance(X, torch.Tensor) or not isinstance(params.weights[0], torch.Tensor):
        raise TypeError(f"expected torch tensors, got {type(X).__name__}")
    return manual.data_parallel_gradients(spec, params, X, Y, allreduce)


def bias_not_allreduced(spec, params, X, Y, allreduce):
    """The weights' gradients all-reduced, the biases' forgotten (each rank keeps its own shard's)."""
    g = _sum_of_shard(spec, params, X, Y)
    n = allreduce(np.array([float(X.shape[0])]))[0] if spec.reduction == "mean" else 1.0
    weights = [allreduce(w) / n for w in g.weights]
    biases = None if g.biases is None else [b / n for b in g.biases]
    return manual.Params(weights, biases)


def four_arguments(spec, params, X, Y):
    """A gradient function without the allreduce argument."""
    return manual.gradients(spec, params, X, Y)


def mean_over_own_shard_then_world(spec, params, X, Y, allreduce):
    """Each rank divides its sum by its own shard's size and then by the world size: 0/0 on an
    empty shard."""
    world = allreduce(np.ones(1))[0]
    g = _sum_of_shard(spec, params, X, Y)
    with np.errstate(invalid="ignore", divide="ignore"):
        return g.map(lambda a: allreduce(a / X.shape[0]) / world)
