r"""The oracle for a data-parallel derivation: ``dp_grad_fn(spec, params, X_shard, Y_shard, allreduce)``
run on ``world_size`` processes of this machine (a gloo group), every rank's result compared with
autograd's gradient of the whole batch.

The parent draws the cases (Hypothesis, with shrinking) and splits each batch into shards
(:func:`torch_ref.data_parallel.distributed.shards`: uneven by default, an empty shard when N < world_size); the
ranks (:mod:`torch_ref.data_parallel.worker`, one pool per world size, kept for later checks) run ``dp_grad_fn``
on their shards; every rank must return the whole batch's gradient, within the tolerance of
:func:`torch_ref.tolerance` (the all-reduce only reorders the sum over examples, which that bound
already covers). A rank that raises, returns something that is not a gradient, or does not answer
within ``timeout_s`` (a collective some rank never joins) is reported, and the ranks are stopped:
the check never hangs.

A diagnosis is named only where it fits every array of the rank within the same tolerance and is
told apart from the right gradient there: the right gradient times the world size or divided by it;
the mean of the ranks' own means (what averaging each worker's mean-reduced gradient gives, right
only for equal shards); the rank's own shard alone (no all-reduce), as its sum, its mean, or its sum
over the global N; the sum over the batch never divided by N. The report of a failing case adds
what torch DDP gives on the same shards (:mod:`torch_ref.data_parallel.ddp`) and whether the rank's result is that.
"""

from __future__ import annotations

import ast
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..engine.report import fn_import, spec_code
from ..numerics.compare import Comparison, compare_either
from ..numerics.tolerance import references, tolerance
from ..strategies import Case
from ..twin.reference import reference
from .ddp import ddp_gradients
from .diagnosis import _ddp_lines, _diagnose, _within
from .distributed import SHARD_MODES, shard_sizes, shards
from .pool import _discard, _pool, _RankFailure

__all__ = ["check_data_parallel_case"]


@dataclass(frozen=True)
class _Outcome:
    case: Case
    sizes: list[int]
    comparisons: list[Comparison]  # per rank
    diagnosis: tuple[str, ...] = ()
    got: list[np.ndarray] = field(default_factory=list)  # the first failing rank's result, float64
    want: list[np.ndarray] = field(default_factory=list)  # the whole batch's gradient, float64
    bounds: list[np.ndarray] = field(default_factory=list)

    @property
    def failing(self) -> list[int]:
        """The ranks with an entry beyond its bound (or a non-finite value, a wrong shape)."""
        return [r for r, c in enumerate(self.comparisons) if not c.ok and not c.not_judged]

    @property
    def unjudged(self) -> bool:
        """Some rank's result was compared with no finite bound at some entry, and none is beyond one."""
        return not self.failing and any(c.not_judged for c in self.comparisons)

    what = "dp_grad_fn"
    findings: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """The verdict: mismatch (some rank beyond its bound), not judged, or agree."""
        return "mismatch" if self.failing else "not judged" if self.unjudged else "agree"

    @property
    def passed(self) -> bool:
        return self.kind == "agree"

    @property
    def detail(self) -> str:
        return _NOT_JUDGED if self.unjudged else ""

    @property
    def comparison(self) -> Comparison:
        """The first failing rank's comparison; where every rank agrees, the one nearest its bound."""
        if self.failing:
            return self.comparisons[self.failing[0]]
        return max(self.comparisons, key=lambda c: c.worst_share)

    @property
    def checked(self) -> Comparison:
        return self.comparison


_NOT_JUDGED = "some entries have no finite bound (the reference's own bound overflowed), and none is beyond one"


@dataclass(frozen=True)
class _RankFailed:
    """A rank that raised, returned something else, or did not answer: the case's outcome (its pool is gone)."""

    case: Case
    failure: _RankFailure
    what = "dp_grad_fn"
    kind = "crash"
    passed = False
    comparison = None
    findings: tuple[str, ...] = ()

    @property
    def detail(self) -> str:
        return self.failure.detail


def _judge(fn: Callable, case: Case, world_size: int, mode: str, timeout_s: float, arrays: str) -> _Outcome:
    N = case.X.shape[0]
    parts = shards(N, world_size, mode)
    try:
        results = _pool(world_size).run(fn, case, parts, timeout_s, arrays)
    except _RankFailure:
        _discard(world_size)  # its ranks may be stuck in a collective: never reused
        raise
    X64, Y64 = case.X.astype(np.float64), case.Y.astype(np.float64)
    params64 = case.params.map(lambda a: np.asarray(a, dtype=np.float64))
    whole = reference(case.spec, params64, X64, Y64)
    tol = tolerance(case.spec, case.params, case.X, case.Y, dtype=case.X.dtype, reference_pass=whole)
    names = [n for n, _ in whole.grads.arrays()]
    # past torch's bce floor both torch's gradient and the exact one are right; a rank follows one
    candidates = [(label, e, a, None) for label, e, a in references(whole, tol, "gradients")]
    comparisons = [
        compare_either(
            names, got, candidates, title=f"rank {r} against autograd, whole batch", conventions=tol.conventions
        )
        for r, got in enumerate(results)
    ]
    outcome = _Outcome(case, [p.stop - p.start for p in parts], comparisons)
    if outcome.failing:
        rank = outcome.failing[0]
        label = comparisons[rank].followed or candidates[0][0]
        want, bounds = next((e, a) for lab, e, a, _ in candidates if lab == label)
        found = _diagnose(case, parts, rank, results[rank], want, bounds, world_size)
        for other in outcome.failing[1:]:  # a rank whose result is not the first one's is diagnosed too
            if not _within(results[other], results[rank], bounds):
                found += _diagnose(case, parts, other, results[other], want, bounds, world_size)
        outcome = _Outcome(case, outcome.sizes, comparisons, found, results[rank], want, bounds)
    return outcome


def _with_twin(outcome: _Outcome, world_size: int, mode: str, timeout_s: float) -> _Outcome:
    """The outcome with the DDP twin's lines (run once, on the case that is reported)."""
    case, rank = outcome.case, outcome.failing[0]
    parts = shards(case.X.shape[0], world_size, mode)
    try:
        ddp = _pool(world_size).run(ddp_gradients, case, parts, timeout_s)[0]
    except _RankFailure as failure:  # the twin itself failed: said so, never hidden
        _discard(world_size)
        twin: tuple[str, ...] = (
            f"torch DDP on the same shards could not be run: {failure.detail.strip().splitlines()[-1]}",
        )
    else:
        twin = _ddp_lines(case, parts, rank, outcome.got, ddp, outcome.want, outcome.bounds, world_size)
    return replace(outcome, diagnosis=outcome.diagnosis + twin)


def _report(
    fn: Callable, outcome: _Outcome, world_size: int, mode: str, dtype: str, arrays: str
) -> tuple[list[str], list[str]]:
    """A failing outcome's lines and, of them, the Reproduce lines."""
    case = outcome.case
    failing = outcome.failing
    setup, name = fn_import(fn)
    lines = [
        f"dp_grad_fn {name!r} disagrees with autograd's gradient of the whole batch on rank(s) {failing} of {world_size}.",
        f"Minimal case: {case.spec}, N={case.X.shape[0]}, dtype={dtype}, world_size={world_size}, "
        f"{mode} shards of sizes {outcome.sizes}",
        *_tables(outcome),
        *outcome.diagnosis,
    ]
    reproduce = [
        "Reproduce (as a script: the ranks import it, so the check runs under the guard):"
        if setup
        else f"Reproduce (in the script that defines {name}, at its top level, in place of the check that failed: the ranks import the script):",
        "    import numpy as np",
        "    import manual, torch_ref",
        *[f"    {line}" for line in setup],
        '    if __name__ == "__main__":',
        f"        spec = {spec_code(case.spec)}",
        f"        case = {case.rebuild(dtype)}",
        f"        print(torch_ref.check_data_parallel_case({name}, case, world_size={world_size}, shards={mode!r}"
        + (f", arrays={arrays!r}" if arrays != "numpy" else "")
        + "))",
    ]
    return lines + reproduce, reproduce


def _tables(outcome: _Outcome) -> list[str]:
    """The comparison of every failing rank, a rank whose rows repeat an earlier one's named only."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for r in outcome.failing:
        text = str(outcome.comparisons[r])
        body = text.split("\n", 1)[-1]
        if body in seen:
            out.append(f"rank {r}: the same rows as rank {seen[body]}")
        else:
            seen[body] = r
            out.append(text)
    return out


def _failure_report(fn: Callable, failure: _RankFailure, case: Case, world_size: int, mode: str, dtype: str) -> str:
    """A rank that raised, returned something else or did not answer, on the case it did so on."""
    _, name = fn_import(fn)
    head = {
        "start": "could not be run: the rank processes did not start",
        "crash": "raised an exception",
        "type": "returned something that is not a gradient",
        "hang": "did not answer",
    }[failure.kind]
    sizes = shard_sizes(case.X.shape[0], world_size, mode)
    return "\n".join(
        [
            f"dp_grad_fn {name!r} {head} on rank {failure.rank} of {world_size}.",
            f"Case: {case.spec}, N={case.X.shape[0]}, dtype={dtype}, {mode} shards of sizes {sizes}",
            *[f"  {line}" for line in failure.detail.rstrip().splitlines()],
        ]
    )


def _check_args(fn: Any, world_size: Any, mode: Any, timeout_s: Any, arrays: Any) -> None:
    """The callable (importable by the ranks, the right signature) and the run's own options."""
    _check_callable(fn)
    _check_run(world_size, mode, timeout_s, arrays)


def _check_callable(fn: Any) -> None:
    if not callable(fn):
        raise TypeError(f"dp_grad_fn must be a callable dp_grad_fn(spec, params, X, Y, allreduce), got {fn!r}")
    if "<lambda>" in getattr(fn, "__qualname__", "") or "<locals>" in getattr(fn, "__qualname__", ""):
        raise TypeError(
            f"dp_grad_fn must be a module-level function (the rank processes import it by name), got {fn!r}"
        )
    _check_importable(fn)
    try:
        inspect.signature(fn).bind("spec", "params", "X", "Y", "allreduce")
    except TypeError:
        raise TypeError(
            f"dp_grad_fn must take (spec, params, X, Y, allreduce) positionally; got {getattr(fn, '__qualname__', fn)!r} "
            f"with signature {inspect.signature(fn)}"
        ) from None
    except ValueError:
        pass  # a signature Python cannot read: taken on trust


def _check_run(world_size: Any, mode: Any, timeout_s: Any, arrays: Any) -> None:
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be an int >= 1, got {world_size!r}")
    if mode not in SHARD_MODES:
        raise ValueError(f"shards must be one of {SHARD_MODES}, got {mode!r}")
    if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
        raise ValueError(f"timeout_s must be a number of seconds > 0, got {timeout_s!r}")
    if arrays not in ("numpy", "torch"):
        raise ValueError(
            f"arrays must be 'numpy' (NumPy arrays) or 'torch' (CPU tensors, summed by gloo), got {arrays!r}"
        )


def _check_importable(fn: Any) -> None:
    """A function of the running script must be defined at its top level: the ranks import the
    script as ``__mp_main__``, where the ``if __name__ == "__main__":`` block does not run."""
    if getattr(fn, "__module__", None) != "__main__":
        return
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path or not os.path.exists(path):
        return
    try:
        tree = ast.parse(open(path, encoding="utf-8").read())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return
    top = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    name = getattr(fn, "__name__", "")
    if name not in top:
        raise TypeError(
            f"dp_grad_fn {name!r} is not defined at the top level of {os.path.basename(path)} (inside the "
            f'if __name__ == "__main__": block, or made at run time); the rank processes import the script '
            f"without running that block: define it at the top level"
        )


def check_data_parallel_case(
    dp_grad_fn: Callable[..., Any],
    case: Case,
    *,
    world_size: int = 2,
    shards: str = "uneven",
    timeout_s: float = 60.0,
    arrays: str = "numpy",
) -> str:
    """The check of :func:`check_data_parallel` on one case (the Reproduce lines call it): the report,
    or a line saying every rank agrees."""
    _check_args(dp_grad_fn, world_size, shards, timeout_s, arrays)
    dtype = np.dtype(case.X.dtype).name
    try:
        outcome = _judge(dp_grad_fn, case, world_size, shards, timeout_s, arrays)
    except _RankFailure as failure:
        return _failure_report(dp_grad_fn, failure, case, world_size, shards, dtype)
    if outcome.failing:
        twin = _with_twin(outcome, world_size, shards, timeout_s)
        return "\n".join(_report(dp_grad_fn, twin, world_size, shards, dtype, arrays)[0])
    if outcome.unjudged:
        return (
            f"not judged: some entries have no finite bound on this case (the reference's own bound overflowed), "
            f"and every other entry of every rank is within its own ({shards} shards of sizes {outcome.sizes})"
        )
    return f"every rank of {world_size} agrees with autograd's gradient of the whole batch ({shards} shards of sizes {outcome.sizes})"
