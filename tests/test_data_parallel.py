"""Data-parallel gradients by hand: manual.data_parallel_gradients on shards, summed by an all-reduce,
is the whole batch's gradient on every worker: with an in-process all-reduce over threads (drawn
networks, uneven and empty shards), and for real on torch.distributed with gloo ranks."""

import json
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import manual
from torch_ref import assert_agree, compare, tolerance
from torch_ref.distributed import free_port, shard_sizes, shards
from torch_ref.strategies import case_from, cases


def on_threads(world_size, work):
    """Run ``work(rank, allreduce)`` on ``world_size`` threads whose ``allreduce`` sums an array over
    all of them (every thread must call it in the same order, as with a real collective); returns
    the results in rank order."""
    slots: list = [None] * world_size
    total: list = [None]
    barrier = threading.Barrier(world_size)

    def allreduce_for(rank):
        def allreduce(a):
            slots[rank] = np.array(a, copy=True)
            if barrier.wait() == 0:
                total[0] = sum(slots)
            barrier.wait()
            out = total[0].copy()
            barrier.wait()  # nobody starts the next sum before everyone has this one
            return out

        return allreduce

    results: list = [None] * world_size
    errors: list = []

    def run(rank):
        try:
            results[rank] = work(rank, allreduce_for(rank))
        except BaseException as exc:  # reported below; a thread's exception would be lost
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(world_size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def _agrees_with_the_whole_batch(case, results):
    whole = manual.gradients(case.spec, case.params, case.X, case.Y)
    tol = tolerance(case.spec, case.params, case.X, case.Y).grads
    names = [n for n, _ in whole.arrays()]
    for got in results:
        assert_agree(
            compare(names, [a for _, a in got.arrays()], [a for _, a in whole.arrays()], [t for _, t in tol.arrays()])
        )


@settings(max_examples=60)
@given(case=cases(batch=(1, 7)), world_size=st.integers(2, 3), mode=st.sampled_from(["uneven", "even"]))
def test_shards_summed_by_allreduce_give_the_whole_batch_gradient(case, world_size, mode):
    parts = shards(case.X.shape[0], world_size, mode)

    def work(rank, allreduce):
        part = parts[rank]
        return manual.data_parallel_gradients(case.spec, case.params, case.X[part], case.Y[part], allreduce)

    _agrees_with_the_whole_batch(case, on_threads(world_size, work))


def test_averaging_the_workers_own_means_is_not_the_batch_mean_on_uneven_shards():
    """The convention the derivation avoids: each worker's own mean gradient, averaged over the
    workers, is the whole batch's mean gradient only when the shards are equal."""
    case = case_from(manual.Spec((3, 4, 2), ("tanh", "sigmoid"), "bce", reduction="mean"), N=5, seed=1)
    parts = shards(5, 2, "uneven")
    own_means = [manual.gradients(case.spec, case.params, case.X[p], case.Y[p]) for p in parts]
    averaged = [(a + b) / 2 for (_, a), (_, b) in zip(own_means[0].arrays(), own_means[1].arrays())]
    whole = manual.gradients(case.spec, case.params, case.X, case.Y)
    assert [p.stop - p.start for p in parts] == [1, 4]
    assert not all(np.allclose(a, w) for a, (_, w) in zip(averaged, whole.arrays()))


def test_an_empty_shard_contributes_nothing_and_all_empty_is_refused():
    case = case_from(manual.Spec((2, 3, 1), ("relu", "identity"), "squared", reduction="mean"), N=1, seed=0)
    parts = shards(1, 3)
    assert [p.stop - p.start for p in parts] == [1, 0, 0]

    def work(rank, allreduce):
        return manual.data_parallel_gradients(
            case.spec, case.params, case.X[parts[rank]], case.Y[parts[rank]], allreduce
        )

    _agrees_with_the_whole_batch(case, on_threads(3, work))

    def nobody(rank, allreduce):
        return manual.data_parallel_gradients(case.spec, case.params, case.X[:0], case.Y[:0], allreduce)

    with pytest.raises(ValueError, match="every shard is empty"):
        on_threads(2, nobody)


def test_an_allreduce_that_returns_the_wrong_thing_is_named():
    case = case_from(manual.Spec((2, 2), ("identity",), "squared"), N=2, seed=0)
    with pytest.raises(ValueError, match="allreduce must return the sum over workers as an array of the shape"):
        manual.data_parallel_gradients(case.spec, case.params, case.X, case.Y, lambda a: float(a.sum()))


@given(N=st.integers(0, 40), world_size=st.integers(1, 6), mode=st.sampled_from(["uneven", "even"]))
def test_shard_sizes_cover_the_batch(N, world_size, mode):
    sizes = shard_sizes(N, world_size, mode)
    assert len(sizes) == world_size and sum(sizes) == N and min(sizes) >= 0
    if mode == "even":
        assert max(sizes) - min(sizes) <= 1
    elif N > world_size > 1:
        assert len(set(sizes)) > 1  # uneven means uneven
    if N < world_size:
        assert sizes.count(0) == world_size - N  # an empty shard for every missing example


_GLOO_RANK = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch.distributed as dist
    import manual
    import torch_ref.distributed as tdist
    from torch_ref.strategies import case_from

    rank, world, port, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    tdist.init(rank, world, port=port, backend="gloo", timeout_s=30)
    spec = manual.Spec((3, 5, 4, 2), ("tanh", "relu", "softmax"), "ce", bias=True, reduction="mean")
    case = case_from(spec, N=7, seed=3)
    result = {}
    pair = dist.new_group([0, 1])  # every rank takes part in creating a group, as gloo requires
    for size, group in ((world, None), (2, pair)):
        if rank >= size:
            continue
        part = tdist.shards(7, size)[rank]
        allreduce = lambda a: tdist.allreduce(a, group=group)
        g = manual.data_parallel_gradients(spec, case.params, case.X[part], case.Y[part], allreduce)
        result[size] = [a.tolist() for _, a in g.arrays()]
    dist.barrier()
    dist.destroy_process_group()
    with open(f"{out}/{rank}.json", "w") as fh:
        json.dump(result, fh)
    """
)


def test_on_gloo_ranks_every_rank_has_the_whole_batch_gradient(tmp_path):
    """For real: 3 gloo processes on this machine (and a group of 2 of them), uneven shards of 7."""
    world, port = 3, free_port()
    procs = [
        subprocess.Popen([sys.executable, "-c", _GLOO_RANK, str(r), str(world), str(port), str(tmp_path)])
        for r in range(world)
    ]
    try:
        codes = [p.wait(timeout=90) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert codes == [0] * world
    spec = manual.Spec((3, 5, 4, 2), ("tanh", "relu", "softmax"), "ce", bias=True, reduction="mean")
    case = case_from(spec, N=7, seed=3)
    for size in (world, 2):
        got = [json.loads((tmp_path / f"{r}.json").read_text())[str(size)] for r in range(size)]
        as_params = [manual.Params([np.array(a) for a in g[0::2]], [np.array(b) for b in g[1::2]]) for g in got]
        _agrees_with_the_whole_batch(case, as_params)
