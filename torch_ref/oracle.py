"""The oracle: does a hand derivation agree with autograd on every network it claims to cover?

``check_derivation(grad_fn)`` draws networks, weights and data with Hypothesis, compares
``grad_fn``'s gradients with :func:`torch_ref.gradients` under the derived tolerances of
:mod:`torch_ref.tolerance`, shrinks a failure to a minimal network and raises
:class:`DerivationMismatch` with a one-screen report. ``check_update(step_fn)`` does the same for an
update rule against ``torch.optim.SGD``.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from hypothesis import HealthCheck, Verbosity, given, seed as hypothesis_seed, settings

from manual import VALID_PAIRS, Params, Spec

from . import autograd
from ._convert import as_numpy64
from ._oracle_options import Options, parse_options
from ._oracle_report import Failure, render_failure
from .compare import Comparison, compare
from .strategies import HIDDEN_ACTIVATIONS, Case, case_from, cases
from .tolerance import tolerance

__all__ = ["DerivationMismatch", "OracleSummary", "check_derivation", "check_update"]


class DerivationMismatch(AssertionError):
    """A derivation disagrees with autograd; the message is the report."""


@dataclass
class OracleSummary:
    """What a passing check covered."""

    examples: int = 0
    specs: set = field(default_factory=set)
    activations: set = field(default_factory=set)
    pairs: set = field(default_factory=set)
    bias: set = field(default_factory=set)
    reductions: set = field(default_factory=set)
    batch_sizes: set = field(default_factory=set)
    square: bool = False
    kink: bool = False
    worst_share: float = 0.0
    conventions: int = 0  # examples where a named numerical convention applied (see torch_ref.tolerance)
    seconds: float = 0.0
    dtype: str = "float64"
    device: str = "cpu"

    def add(self, case: Case, comparison: Comparison) -> None:
        spec = case.spec
        share = comparison.worst_share
        self.conventions += bool(comparison.conventions)
        self.examples += 1
        self.specs.add(spec)
        self.activations.update(spec.activations)
        self.pairs.add((spec.activations[-1], spec.loss))
        self.bias.add(spec.bias)
        self.reductions.add(spec.reduction)
        self.batch_sizes.add(case.X.shape[0])
        self.square |= any(i == o for i, o in spec.shapes())
        self.kink |= _hits_kink(case)
        self.worst_share = max(self.worst_share, share)

    def __str__(self) -> str:
        pairs = ", ".join(f"{a}+{l}" for a, l in sorted(self.pairs))
        return (f"{self.examples} examples on {len(self.specs)} networks ({self.dtype}, {self.device}) in "
                f"{self.seconds:.1f} s; activations {sorted(self.activations)}; output/loss pairs {pairs}; "
                f"bias {sorted(self.bias)}; reductions {sorted(self.reductions)}; batch sizes "
                f"{min(self.batch_sizes)}-{max(self.batch_sizes)}; square layers {self.square}; ReLU kink hit "
                f"{self.kink}; largest share of the tolerance used {self.worst_share:.3g}"
                + (f"; {self.conventions} examples under a named convention" if self.conventions else ""))


def _hits_kink(case: Case) -> bool:
    from manual.forward import _forward

    p = case.params.map(as_numpy64)
    fwd = _forward(case.spec, p, as_numpy64(case.X))
    return any(name == "relu" and bool(np.any(I == 0)) for name, I in zip(case.spec.activations, fwd.I))


# ------------------------------------------------------------------------------------------ cases

def _coverage_cases(opt: Options, dtype: Any) -> list[Case]:
    """Small deterministic cases that make the defaults cover every valid output/loss pair, every
    hidden activation, bias on and off, both reductions, square layers, one example and several,
    and a ReLU input of exactly 0 (an example row of zeros, no bias)."""
    hidden = [a for a in HIDDEN_ACTIVATIONS if a in opt.activations] or ["identity"]
    pairs = [(a, loss) for loss in opt.losses for a in VALID_PAIRS[loss] if a in opt.activations]
    w_lo, w_hi = opt.widths
    depth = min(max(2, opt.depths[0]), opt.depths[1])
    out: list[Case] = []
    for k, (act, loss) in enumerate(pairs * max(1, -(-len(hidden) // len(pairs)))):
        square = k % 2 == 0
        sizes = tuple(min(max(3, w_lo), w_hi) if square else min(max(2 + (n % 3), w_lo), w_hi)
                      for n in range(depth + 1))
        acts = tuple(hidden[(k + n) % len(hidden)] for n in range(depth - 1)) + (act,)
        bias = opt.bias if opt.bias is not None else k % 2 == 1
        spec = Spec(sizes, acts, loss, bias=bias, reduction=opt.reductions[k % len(opt.reductions)])
        N = min(max(1 if k % 2 == 0 else 3, opt.batch[0]), opt.batch[1])
        out.append(case_from(spec, N=N, seed=k, gain=1.0, dtype=dtype))
    if "relu" in hidden and depth >= 2 and opt.bias is not True:
        loss = opt.losses[0]
        act = next(a for a in VALID_PAIRS[loss] if a in opt.activations)
        sizes = (min(max(3, w_lo), w_hi),) * (depth + 1)
        if sizes[0] >= 2:
            spec = Spec(sizes, ("relu",) * (depth - 1) + (act,), loss, bias=False, reduction=opt.reductions[0])
            out.append(case_from(spec, N=min(max(2, opt.batch[0]), opt.batch[1]), seed=99, grid=True,
                                 dtype=dtype, kink=True))
    return out


def _convert_case(case: Case, opt: Options) -> tuple[Params, Any, Any]:
    if opt.arrays == "numpy":
        return case.params, case.X, case.Y
    import torch

    def move(a: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(a)).to(opt.device)

    return case.params.map(move), move(case.X), move(case.Y)


# ------------------------------------------------------------------------------------------ checking

def _normalise(spec: Spec, result: Any, what: str) -> tuple[Params | None, str]:
    if isinstance(result, Params):
        p = result
    elif isinstance(result, (list, tuple)) and not spec.bias:
        p = Params(result)
    elif isinstance(result, (list, tuple)):
        return None, (f"{what} returned a plain list, but the spec has biases: return "
                      f"manual.Params(weights, biases)")
    else:
        return None, f"{what} returned {type(result).__name__}; expected manual.Params or a list of arrays"
    if len(p.weights) != spec.depth:
        return None, f"{what} returned {len(p.weights)} weight arrays for a network of {spec.depth} layers"
    if spec.bias and p.biases is None:
        return None, f"{what} returned no biases, but the spec has bias=True"
    try:
        return p.map(as_numpy64), ""
    except (TypeError, ValueError) as exc:
        return None, f"{what} returned something that is not an array: {exc}"


def _crash(exc: BaseException, what: str) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno} ({frames[-1].name})" if frames else ""
    return f"{what} raised {type(exc).__name__}: {exc}{where}"


def _check_case(case: Case, fn: Callable, opt: Options, update: bool) -> tuple[Failure | None, Comparison | None]:
    spec = case.spec
    params, X, Y = _convert_case(case, opt)
    what = "step_fn" if update else "grad_fn"
    try:
        result = fn(spec, params, X, Y, case.lr) if update else fn(spec, params, X, Y)
    except Exception as exc:  # noqa: BLE001 - any crash inside the user's function is the finding
        return Failure(case, "crash", detail=_crash(exc, what)), None
    actual, problem = _normalise(spec, result, what)
    p64 = case.params.map(as_numpy64)
    X64, Y64 = as_numpy64(case.X), as_numpy64(case.Y)
    ref_grads = autograd.gradients(spec, p64, X64, Y64)
    if actual is None:
        return Failure(case, "type", detail=problem), None
    names = [n for n, _ in p64.arrays()]
    tol = tolerance(spec, p64, X64, Y64, dtype=opt.dtype, lr=case.lr if update else None)
    expected = autograd.sgd_step(spec, p64, X64, Y64, case.lr) if update else ref_grads
    allowed = tol.update if update else tol.grads
    comparison = compare(names, [a for _, a in actual.arrays()], [a for _, a in expected.arrays()],
                         [a for _, a in allowed.arrays()],
                         title=("updated weights" if update else "gradients") + f" of {what} against autograd",
                         conventions=tol.conventions)
    if comparison.ok:
        return None, comparison
    if any(r.note.startswith("shape") for r in comparison.rows):
        kind = "shape"
    else:
        kind = "mismatch"
    implied = _implied_gradients(p64, actual, case.lr) if update and kind == "mismatch" else actual
    return Failure(case, kind, comparison, actual=implied, expected=ref_grads), comparison


def _implied_gradients(p: Params, updated: Params, lr: float) -> Params:
    """(W - W_new) / lr: the gradient an update rule used."""
    if lr == 0:
        return updated
    W = [(w - u) / lr for w, u in zip(p.weights, updated.weights)]
    b = None if p.biases is None else [(w - u) / lr for w, u in zip(p.biases, updated.biases)]
    return Params(W, b)


def _run(fn: Callable, opt: Options, update: bool) -> OracleSummary:
    dtype = np.dtype(opt.dtype)
    summary = OracleSummary(dtype=opt.dtype, device=opt.device)
    failures: list[Failure] = []
    start = time.perf_counter()

    class _Found(Exception):
        pass

    strategy = cases(dtype=dtype, batch=opt.batch, lrs=(0.01, 0.1, 0.5, 1.0), **opt.spec_options())

    @settings(max_examples=opt.max_examples, deadline=None, database=None, verbosity=Verbosity.quiet,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(strategy)
    def prop(case: Case) -> None:
        failure, comparison = _check_case(case, fn, opt, update)
        if failure is not None:
            failures.append(failure)
            raise _Found()
        summary.add(case, comparison)

    if opt.seed is not None:
        prop = hypothesis_seed(opt.seed)(prop)
    try:
        prop()
    except Exception:
        # _Found after shrinking; anything else Hypothesis raises around a failure (a flaky
        # grad_fn) still leaves the failing case recorded
        if not failures:
            raise
    if not failures:
        for case in _coverage_cases(opt, dtype):
            failure, comparison = _check_case(case, fn, opt, update)
            if failure is not None:
                failures.append(failure)
                break
            summary.add(case, comparison)
    summary.seconds = time.perf_counter() - start
    if failures:
        raise DerivationMismatch(render_failure(failures[-1], opt, update, getattr(fn, "__name__", "")))
    return summary


# ------------------------------------------------------------------------------------------ public

def check_derivation(
    grad_fn: Callable[[Spec, Params, Any, Any], Any],
    *,
    max_examples: int = 100,
    seed: int | None = None,
    dtype: str = "float64",
    device: str = "cpu",
    arrays: str | None = None,
    activations: Sequence[str] | None = None,
    losses: Sequence[str] | None = None,
    depths: int | tuple[int, int] = (1, 4),
    widths: int | tuple[int, int] = (1, 6),
    batch: int | tuple[int, int] = (1, 5),
    bias: bool | None = None,
    reductions: Sequence[str] | None = None,
) -> OracleSummary:
    """Check ``grad_fn(spec, params, X, Y) -> Params`` (or a list of weight gradients when the spec
    has no biases) against autograd on random networks; raise :class:`DerivationMismatch` on the
    smallest network where it fails.

    Args:
        grad_fn: the derivation: gradients of the objective (sum, or mean over N, of the per-example
            loss) in the slides' layout, ``W`` of shape ``(in, out)``.
        max_examples: random networks drawn by Hypothesis (then a fixed set of small coverage cases).
        seed: makes the draw reproducible; ``None`` draws afresh.
        dtype: ``"float64"`` or ``"float32"``; the reference is always float64 autograd on the same
            values, the tolerance that of the derivation's dtype.
        device, arrays: what ``grad_fn`` receives: NumPy arrays (default on ``"cpu"``) or torch
            tensors on ``device``.
        activations, losses, depths, widths, batch, bias, reductions: narrow what is drawn to what
            the derivation claims to cover (defaults: everything, depth 1-4, widths 1-6, N 1-5).

    Returns:
        An :class:`OracleSummary` of what was covered.

    Example:
        >>> import manual
        >>> check_derivation(manual.gradients, max_examples=10, seed=0).examples > 10
        True
    """
    opt = parse_options(max_examples, seed, dtype, device, arrays, activations, losses, depths, widths, batch, bias,
                   reductions)
    return _run(grad_fn, opt, update=False)


def check_update(
    step_fn: Callable[[Spec, Params, Any, Any, float], Any],
    *,
    max_examples: int = 100,
    seed: int | None = None,
    dtype: str = "float64",
    device: str = "cpu",
    arrays: str | None = None,
    activations: Sequence[str] | None = None,
    losses: Sequence[str] | None = None,
    depths: int | tuple[int, int] = (1, 4),
    widths: int | tuple[int, int] = (1, 6),
    batch: int | tuple[int, int] = (1, 5),
    bias: bool | None = None,
    reductions: Sequence[str] | None = None,
) -> OracleSummary:
    """Check an update rule ``step_fn(spec, params, X, Y, lr) -> Params`` against one step of
    ``torch.optim.SGD`` (learning rates 0.01-1); options as :func:`check_derivation`."""
    opt = parse_options(max_examples, seed, dtype, device, arrays, activations, losses, depths, widths, batch, bias,
                   reductions)
    return _run(step_fn, opt, update=True)
