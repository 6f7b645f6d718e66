"""A network's data-parallel gradient: ``dp_grad_fn(net, params, X_shard, Y_shard, allreduce)`` on every
rank of a gloo group on this machine, each rank's result against autograd's gradient of the whole batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..data_parallel import check as dp
from ..data_parallel.pool import _RankFailure
from ..engine.kind import Kind
from ..engine.run import run
from ..engine.summary import Summary
from ..networks.data_parallel import judge_data_parallel
from ..networks.per_example import tied
from ..networks.report import add, describe, reproduce
from ..networks.select import strategy

__all__ = ["KIND", "check_network_data_parallel"]

COMMON = ("max_examples", "seed", "dtype", "device", "arrays", "strict")


def _judge(fn: Callable[..., Any], case: Any, opt: Any, extra: dict[str, Any]) -> Any:
    failed = extra.get("rank failed")
    if failed is not None:
        return failed
    try:
        return judge_data_parallel(
            fn, case, extra["world_size"], extra["shards"], extra["timeout_s"], opt.arrays, opt.dtype
        )
    except _RankFailure as failure:
        if failure.kind == "start":
            raise RuntimeError(f"the rank processes did not start: {failure.detail}") from None
        extra["rank failed"] = _Failed(case, failure)
        return extra["rank failed"]


class _Failed:
    """A rank that raised, returned something else, or did not answer."""

    kind = "crash"
    passed = False
    comparison = None
    what = "dp_grad_fn"

    def __init__(self, case: Any, failure: Any) -> None:
        self.case, self.failure = case, failure
        self.detail = f"rank {failure.rank}: {failure.kind}: {failure.detail.strip()}"


def _report(
    v: Any, fn: Any, names: tuple[str, ...], opt: Any, extra: Mapping[str, Any], before: Any = None
) -> tuple[list[str], list[str]]:
    world, mode = extra["world_size"], extra["shards"]
    head = f"dp_grad_fn on {v.case.net} on X{tuple(v.case.X.shape)} ({opt.dtype}), world_size={world}, {mode} shards"
    if isinstance(v, _Failed):
        return [head, *v.detail.splitlines()], []
    lines = [f"{head} of sizes {v.sizes}: rank(s) {v.failing} disagree with autograd's gradient of the whole batch"]
    lines += [str(v.comparisons[r]) for r in v.failing[:1]]
    lines += list(v.findings)
    repro = reproduce(v, fn, names, opt, "grads")
    repro = [line for line in repro if not line.startswith("    grads = ")]
    repro[-1] = (
        f"    torch_ref.check_data_parallel({fn.__name__}, networks=case, world_size={world}, shards={mode!r}, dtype={opt.dtype!r})"
    )
    repro[0] = 'Reproduce (as a script, under if __name__ == "__main__": the ranks import it):'
    return [*lines, *repro], repro


def _prepare(fn: Callable[..., Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    dp._check_callable(fn)
    dp._check_run(extra["world_size"], extra["shards"], extra["timeout_s"], "numpy")
    strategy(extra["networks"], np.dtype("float64"))
    given = extra["networks"]
    net = getattr(
        given, "net", given[0] if isinstance(given, tuple) and given and not isinstance(given[0], str) else given
    )
    if hasattr(net, "nodes"):
        from ..data_parallel.worker import rebuild

        try:
            rebuild(repr(net))
        except Exception:
            raise ValueError(
                f"networks=: the ranks rebuild the network from its code, and {net!r} has a node of your own that "
                "its code cannot rebuild; data-parallel networks use manual.network's built-in nodes"
            ) from None
    return dict(extra)


def _draw(opt: Any, extra: Mapping[str, Any]) -> Any:
    world = extra["world_size"]
    return strategy(extra["networks"], np.dtype(opt.dtype)).filter(lambda c: not tied(c) and c.N >= world)


KIND = Kind(
    name="network-data-parallel",
    check="check_network_data_parallel",
    what="dp_grad_fn",
    call="dp_grad_fn(net, params, X_shard, Y_shard, allreduce[, masks=]) -> {name: gradient}, on world_size processes",
    reference="float64 autograd of the whole batch's objective on the network's torch twin",
    tolerance="the rounding model of the whole batch (torch_ref.layers.rounding)",
    judge=_judge,
    report=_report,
    options={"networks": ("mlp", "cnn", "transformer"), "world_size": 2, "shards": "uneven", "timeout_s": 60.0},
    defaults={"max_examples": 20},
    fixed={"device": ("cpu", "the ranks run on this machine's CPU, summed by gloo")},
    prepare=_prepare,
    coverage_cases=False,
    draw=_draw,
    common=COMMON,
    add=add,
    describe=describe,
)


def check_network_data_parallel(dp_grad_fn: Callable[..., Any], **options: Any) -> Summary:
    """Check ``dp_grad_fn(net, params, X_shard, Y_shard, allreduce)`` (``masks=`` its shard's rows of the
    dropout masks too, where there are any) on ``world_size`` rank processes: every rank must return
    the whole batch's gradients (:func:`manual.network.data_parallel_gradients` is the hand-derived
    one). Networks with batch normalization are not drawn. Options as
    :func:`~torch_ref.check_data_parallel` and ``networks=`` as :func:`~torch_ref.check_network`."""
    __tracebackhide__ = True
    return run(KIND, dp_grad_fn, options)
