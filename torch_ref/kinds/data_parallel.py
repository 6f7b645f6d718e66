"""Data-parallel: ``dp_grad_fn(spec, params, X_shard, Y_shard, allreduce)`` on every rank of a gloo
group on this machine, each rank's result against autograd's gradient of the whole batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from typing_extensions import Unpack

from ..data_parallel import check as dp
from ..data_parallel.pool import _RankFailure
from ..engine.kind import Kind
from ..engine.options import CheckOptions, Options
from ..engine.run import run
from ..engine.summary import Summary
from ..strategies import Case

__all__ = ["KIND", "check_data_parallel"]


def _judge(fn: Callable, case: Case, opt: Options, extra: dict[str, Any]) -> Any:
    failed = extra.get("rank failed")
    if failed is not None:
        # a rank failed and its pool is gone: every later case (Hypothesis' shrinking) gets that outcome
        # at once, never a restart of the ranks or a wait for another hang
        return failed
    try:
        return dp._judge(fn, case, extra["world_size"], extra["shards"], extra["timeout_s"], opt.arrays)
    except _RankFailure as failure:
        if failure.kind == "start":  # nothing of the derivation ran: a usage error, not a verdict
            raise RuntimeError(
                dp._failure_report(fn, failure, case, extra["world_size"], extra["shards"], opt.dtype)
            ) from None
        extra["rank failed"] = dp._RankFailed(case, failure)
        return extra["rank failed"]


def _finish(outcome: Any, fn: Callable, opt: Options, extra: Mapping[str, Any]) -> Any:
    """The reported case with what torch DDP gives on the same shards."""
    if outcome.kind != "mismatch":
        return outcome
    return dp._with_twin(outcome, extra["world_size"], extra["shards"], extra["timeout_s"])


def _report(
    outcome: Any, fn: Callable, names: tuple[str, ...], opt: Options, extra: Mapping[str, Any], before: Any = None
):
    world_size, shards = extra["world_size"], extra["shards"]
    if isinstance(outcome, dp._RankFailed):
        text = dp._failure_report(fn, outcome.failure, outcome.case, world_size, shards, opt.dtype)
        return text.splitlines(), []
    return dp._report(fn, outcome, world_size, shards, opt.dtype, opt.arrays)


def _prepare(fn: Callable, extra: Mapping[str, Any]) -> dict[str, Any]:
    dp._check_callable(fn)
    dp._check_run(extra["world_size"], extra["shards"], extra["timeout_s"], "numpy")
    return dict(extra)


def _cover(summary: Summary, outcome: Any) -> None:
    """The shard splits met, and whether one had an empty shard."""
    summary.extra.setdefault("shard_sizes", set()).add(tuple(outcome.sizes))
    summary.extra["empty_shard"] = summary.extra.get("empty_shard", False) or 0 in outcome.sizes


KIND = Kind(
    name="data-parallel",
    check="check_data_parallel",
    what="dp_grad_fn",
    call="dp_grad_fn(spec, params, X_shard, Y_shard, allreduce) -> Params, on world_size processes",
    reference="float64 autograd of the whole batch's objective (and torch DDP on the same shards, in a report)",
    tolerance="the first-order rounding model of torch_ref.numerics.tolerance for the whole batch",
    judge=_judge,
    report=_report,
    prepare=_prepare,
    finish=_finish,
    cover=_cover,
    options={"world_size": 2, "shards": "uneven", "timeout_s": 60.0},
    defaults={"max_examples": 50, "depths": (1, 3), "widths": (1, 5), "batch": (1, 7)},
    # each case is a round trip through the rank processes; the draw alone is the run
    coverage_cases=False,
    fixed={"device": ("cpu", "the ranks run on this machine's CPU, summed by gloo")},
    not_judged="Narrow the draw (e.g. smaller depths or widths).",
)


def check_data_parallel(
    dp_grad_fn: Callable[..., Any],
    *,
    world_size: int = 2,
    shards: str = "uneven",
    timeout_s: float = 60.0,
    **options: Unpack[CheckOptions],
) -> Summary:
    """Check ``dp_grad_fn(spec, params, X_shard, Y_shard, allreduce)`` on ``world_size`` rank processes
    (:mod:`torch_ref.data_parallel.check`), ``allreduce`` from :mod:`torch_ref.data_parallel.distributed`.
    ``arrays``: what ``dp_grad_fn`` is given, NumPy arrays or CPU torch tensors (``allreduce`` returns
    the same kind). ``shards``: ``"uneven"`` (default: an empty shard when N < world_size) or
    ``"even"``. ``timeout_s``: how long a rank may take before it is reported as not answering. The
    other options as :func:`~torch_ref.check_derivation` (defaults here: 50 examples, depths 1-3,
    widths 1-5, N 1-7). Raises :class:`~torch_ref.DerivationMismatch` with the minimal case, the shard
    sizes, the ranks that differ, a diagnosis and what torch DDP gives on the same shards; returns
    what was covered.

    The rank processes import the calling script (they start from multiprocessing's fork server):
    a script calls this under ``if __name__ == "__main__":``.

    Example:
        >>> import manual
        >>> check_data_parallel(manual.data_parallel_gradients, max_examples=5, seed=0).examples >= 5
        True
    """
    __tracebackhide__ = True
    if "networks" in options:  # networks of layers: dp_grad_fn(net, params, X, Y, allreduce)
        from .network_data_parallel import check_network_data_parallel

        return check_network_data_parallel(
            dp_grad_fn, **{**options, "world_size": world_size, "shards": shards, "timeout_s": timeout_s}
        )
    return run(KIND, dp_grad_fn, {**options, "world_size": world_size, "shards": shards, "timeout_s": timeout_s})
