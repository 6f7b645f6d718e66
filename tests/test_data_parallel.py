"""Data-parallel gradients by hand: manual.data_parallel_gradients on shards, summed by an all-reduce,
is the whole batch's gradient on every worker: with an in-process all-reduce over threads (drawn
networks, uneven and empty shards), and for real on torch.distributed's gloo ranks through
torch_ref.check_data_parallel, which also catches the known data-parallel mistakes."""

import json
import subprocess
import sys
import threading
from pathlib import Path

import dp_mistakes  # module-level functions: the rank processes import them by name
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import manual
from torch_ref import (
    DerivationMismatch,
    assert_agree,
    check_data_parallel,
    check_data_parallel_case,
    compare,
    ddp_gradients,
    tolerance,
)
from torch_ref.data_parallel.distributed import shard_sizes, shards
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


# --------------------------------------------------------------------- the oracle on gloo ranks


CATALOGUE = [
    # (mistake, reduction, the diagnosis that must be named)
    ("no_allreduce", "sum", "own shard only (no all-reduce), summed"),
    ("mean_of_means", "mean", "the mean of the ranks' own means"),
    ("divided_by_world_twice", "mean", "divided by the world size"),
    ("sum_over_world", "sum", "times the world size"),
    ("mean_never_divided", "mean", "the batch's sum, never divided by N"),
]


@pytest.mark.parametrize("world_size", [2, 3])
def test_data_parallel_mistakes_are_caught_and_diagnosed_and_right_ones_pass(world_size):
    """One pool of gloo ranks per world size serves every check here; manual.data_parallel_gradients
    passes on real ranks (uneven shards, an empty one among them)."""
    for right in (manual.data_parallel_gradients, dp_mistakes.right_by_hand):
        summary = check_data_parallel(right, world_size=world_size, max_examples=25, seed=0)
        assert summary.examples == 25 and summary.extra["empty_shard"] and len(summary.extra["shard_sizes"]) > 1
    for name, reduction, diagnosis in CATALOGUE:
        with pytest.raises(DerivationMismatch) as caught:
            check_data_parallel(
                getattr(dp_mistakes, name),
                world_size=world_size,
                max_examples=25,
                seed=0,
                reductions=(reduction,),
                batch=(world_size + 1, 7),  # no empty shard: every rank has a mean of its own
            )
        report = str(caught.value)
        assert f"world_size={world_size}, uneven shards of sizes" in report, report
        assert diagnosis in report, report
        assert "check_data_parallel_case(" in report and "from dp_mistakes import" in report, report
        # the DDP twin ran on the reported shards: only the mean of means is what DDP does
        ddp_does_it = name == "mean_of_means"
        assert f"result {'equals' if ddp_does_it else 'differs from'} DDP's" in report, report
    _ddp_twin_follows_its_convention(world_size)


def _ddp_twin_follows_its_convention(world_size):
    """torch DDP itself, as a dp_grad_fn: it averages the ranks' gradients, so a summed objective
    comes out divided by the world size and a mean on unequal shards is the mean of the ranks'
    means; a mean on equal shards is the whole batch's."""
    for reduction, diagnosis in (("sum", "divided by the world size"), ("mean", "the mean of the ranks' own means")):
        with pytest.raises(DerivationMismatch) as caught:
            check_data_parallel(
                ddp_gradients, world_size=world_size, max_examples=10, seed=0, reductions=(reduction,), batch=(4, 7)
            )
        report = str(caught.value)
        assert diagnosis in report and "result equals DDP's" in report, report
    equal = 2 * world_size
    summary = check_data_parallel(
        ddp_gradients,
        world_size=world_size,
        max_examples=10,
        seed=0,
        reductions=("mean",),
        shards="even",
        batch=(equal, equal),
    )
    assert summary.extra["shard_sizes"] == {(2,) * world_size}


def test_a_mistake_in_one_array_is_named_array_by_array():
    """The biases left out of the all-reduce: no known mistake fits every array, but b's do."""
    with pytest.raises(DerivationMismatch) as caught:
        check_data_parallel(dp_mistakes.bias_not_allreduced, max_examples=25, seed=0, bias=True, batch=(3, 7))
    report = str(caught.value)
    assert "no known mistake fits every array of rank" in report, report
    assert "b1 equals rank" in report and "own shard only (no all-reduce)" in report, report


def test_non_finite_results_are_named_with_the_shard_size():
    """Dividing by the shard's own size gives 0/0 on an empty shard: the report says which arrays
    are not finite and how many examples each failing rank held."""
    with pytest.raises(DerivationMismatch) as caught:
        check_data_parallel(dp_mistakes.mean_over_own_shard_then_world, max_examples=25, seed=0, reductions=("mean",))
    report = str(caught.value)
    assert "shards of sizes [1, 0]" in report, report
    assert "rank 1's result has NaN or infinite values in W1; its shard holds 0 examples." in report, report


def test_the_reproduce_line_rechecks_the_case():
    case = case_from(manual.Spec((2, 3, 1), ("tanh", "identity"), "squared", reduction="mean"), N=5, seed=0)
    assert check_data_parallel_case(dp_mistakes.right_by_hand, case).startswith("every rank of 2 agrees")
    report = check_data_parallel_case(dp_mistakes.mean_of_means, case)
    assert "shards of sizes [1, 4]" in report and "the mean of the ranks' own means" in report, report


def test_a_crashing_or_hanging_rank_is_reported_and_the_check_ends():
    with pytest.raises(DerivationMismatch, match=r"raised an exception on rank 1 of 2(.|\n)*this rank has no examples"):
        check_data_parallel(dp_mistakes.crashes_on_rank_1, max_examples=25, seed=0, timeout_s=10)
    with pytest.raises(DerivationMismatch, match=r"did not answer(.|\n)*within timeout_s=1"):
        check_data_parallel(dp_mistakes.stuck_on_small_shards, max_examples=25, seed=0, timeout_s=1)
    # an extra collective on one rank: a hang, or gloo's size check aborting the rank, by the shapes;
    # either way it is reported and the check ends
    with pytest.raises(DerivationMismatch, match=r"did not answer|raised an exception on rank"):
        check_data_parallel(dp_mistakes.extra_collective_on_small_shards, max_examples=25, seed=0, timeout_s=1)
    # the ranks were replaced: the next check runs
    assert check_data_parallel(manual.data_parallel_gradients, max_examples=5, seed=0).examples == 5


def test_torch_tensors_are_handed_over_with_arrays_torch():
    summary = check_data_parallel(dp_mistakes.right_on_tensors_only, arrays="torch", max_examples=10, seed=0)
    assert summary.examples == 10
    with pytest.raises(DerivationMismatch, match="expected torch tensors, got ndarray"):
        check_data_parallel(dp_mistakes.right_on_tensors_only, max_examples=10, seed=0)


def test_a_script_without_a_main_guard_is_told_why_its_ranks_died(tmp_path):
    """The ranks import the calling script; one that starts the check at its top level has every
    rank die on start, and the report says so instead of a broken pipe."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import manual, torch_ref\n"
        "torch_ref.check_data_parallel(manual.data_parallel_gradients, max_examples=2, seed=0, timeout_s=20)\n"
    )
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()
    report = "\n".join(last[-8:])
    assert (
        "RuntimeError: dp_grad_fn 'data_parallel_gradients' could not be run: the rank processes did not start"
        in run.stderr
    ), report
    assert "before it ran dp_grad_fn" in report and 'if __name__ == "__main__":' in report, report


def test_a_function_inside_the_main_guard_is_refused_before_any_rank_starts(tmp_path, monkeypatch):
    """The ranks import the running script without running its guard block, so a dp_grad_fn defined
    there does not exist for them: refused up front (here with a stand-in for the script's module)."""
    import types

    script = tmp_path / "inside.py"
    script.write_text(
        "import torch_ref\n"
        'if __name__ == "__main__":\n'
        "    def mine(spec, params, X, Y, allreduce):\n"
        "        return None\n"
    )
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)

    def mine(spec, params, X, Y, allreduce):
        return None

    mine.__module__, mine.__qualname__ = "__main__", "mine"
    with pytest.raises(TypeError, match=r"dp_grad_fn 'mine' is not defined at the top level of inside\.py"):
        check_data_parallel(mine, max_examples=2)


def test_bad_data_parallel_calls_are_refused():
    with pytest.raises(TypeError, match=r"dp_grad_fn must take \(spec, params, X, Y, allreduce\) positionally"):
        check_data_parallel(dp_mistakes.four_arguments)
    with pytest.raises(TypeError, match="module-level function"):
        check_data_parallel(lambda spec, params, X, Y, allreduce: None)
    with pytest.raises(ValueError, match="world_size must be an int >= 1, got 0"):
        check_data_parallel(manual.data_parallel_gradients, world_size=0)
    with pytest.raises(ValueError, match="shards must be one of"):
        check_data_parallel(manual.data_parallel_gradients, shards="random")
    with pytest.raises(ValueError, match="timeout_s must be a number of seconds > 0"):
        check_data_parallel(manual.data_parallel_gradients, timeout_s=0)
    with pytest.raises(ValueError, match=r"arrays must be 'numpy' or 'torch', got 'cupy'"):
        check_data_parallel(manual.data_parallel_gradients, arrays="cupy")


def test_the_false_alarm_campaign_under_torchrun_checks_each_case_once_and_totals_as_one_process(tmp_path):
    """``python -m torch.distributed.run --standalone --nproc-per-node 2`` against the same cases run
    here, in one process: the same totals, ``world_size`` in the JSON, ``cases`` the total."""
    scripts = Path(__file__).resolve().parents[1] / "scripts"
    sys.path.insert(0, str(scripts))
    import false_alarm_campaign as campaign

    plain = campaign._run_jobs([(0, 0, 30), (0, 30, 30)], 1, False, 60)
    ranked = tmp_path / "ranked.json"
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    script = str(scripts / "false_alarm_campaign.py")
    subprocess.run([*run, script, "--cases", "60", "--json", str(ranked)], check=True, capture_output=True, timeout=120)
    b = json.loads(ranked.read_text())
    assert (b["world_size"], b["cases"]) == (2, 60)
    for key in ("cases", "by", "verdicts", "conventions", "worst_share", "failures"):
        assert plain[key] == b[key], key


def test_the_all_reduce_left_out_is_named_on_an_empty_shard():
    # N = 1 on 2 ranks: rank 0 holds the whole batch (its own sum is right), rank 1 none; its own
    # shard's sum is zero, which is what a rank without the all-reduce returns
    spec = manual.Spec((2, 2), ("identity",), "squared", bias=True, reduction="sum")
    case = case_from(spec, N=1, seed=0)
    report = check_data_parallel_case(dp_mistakes.no_allreduce, case, world_size=2)
    assert "rank(s) [1] of 2" in report and "shards of sizes [1, 0]" in report, report
    assert "rank 1's own shard only (no all-reduce), summed" in report, report
