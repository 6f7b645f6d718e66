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

from manual import ACTIVATIONS, LOSSES, REDUCTIONS, VALID_PAIRS, Params, Spec

from . import autograd
from ._convert import as_numpy64
from .compare import Comparison, compare
from .diagnose import blame, diagnose
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


# ------------------------------------------------------------------------------------------ options

@dataclass(frozen=True)
class _Options:
    max_examples: int
    seed: int | None
    dtype: str
    device: str
    arrays: str
    activations: tuple[str, ...]
    losses: tuple[str, ...]
    depths: tuple[int, int]
    widths: tuple[int, int]
    batch: tuple[int, int]
    bias: bool | None
    reductions: tuple[str, ...]

    def spec_options(self) -> dict[str, Any]:
        return dict(depths=self.depths, widths=self.widths, activations=self.activations, losses=self.losses,
                    bias=self.bias, reductions=self.reductions)


def _range(name: str, value: Any, low: int) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or value[0] < low or value[1] < value[0]):
        raise ValueError(f"{name} must be an int >= {low} or a pair (lo, hi) with {low} <= lo <= hi, got {value!r}")
    return int(value[0]), int(value[1])


def _names(name: str, value: Any, allowed: Sequence[str]) -> tuple[str, ...]:
    if value is None:
        return tuple(allowed)
    if isinstance(value, str):
        value = (value,)
    value = tuple(value)
    unknown = [v for v in value if v not in allowed]
    if not value or unknown:
        raise ValueError(f"{name} must be a non-empty selection from {tuple(allowed)}, got {value!r}")
    return value


def _options(max_examples: int, seed: int | None, dtype: str, device: str, arrays: str | None,
             activations: Any, losses: Any, depths: Any, widths: Any, batch: Any, bias: Any,
             reductions: Any) -> _Options:
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples must be an int >= 1, got {max_examples!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an int or None, got {seed!r}")
    dtype = str(dtype).removeprefix("torch.")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if not isinstance(device, str) or not device:
        raise ValueError(f"device must be a torch device string such as 'cpu' or 'cuda', got {device!r}")
    if arrays is None:
        arrays = "numpy" if device == "cpu" else "torch"
    if arrays not in ("numpy", "torch"):
        raise ValueError(f"arrays must be 'numpy' or 'torch', got {arrays!r}")
    if arrays == "numpy" and device != "cpu":
        raise ValueError(f"arrays='numpy' lives on the CPU; with device={device!r} pass arrays='torch'")
    if device != "cpu":
        import torch

        try:
            torch.empty(0, device=device)
        except (RuntimeError, AssertionError) as exc:
            raise ValueError(f"device {device!r} is not available here: {exc}") from exc
    acts = _names("activations", activations, ACTIVATIONS)
    loss_names = _names("losses", losses, LOSSES)
    if bias is not None and not isinstance(bias, bool):
        raise ValueError(f"bias must be True, False or None (both), got {bias!r}")
    reds = _names("reductions", reductions, ("sum", "mean"))
    d = _range("depths", depths, 1)
    outputs = [a for loss in loss_names for a in VALID_PAIRS[loss] if a in acts]
    if not outputs:
        raise ValueError(f"no valid output activation among {acts} for losses {loss_names}; "
                         f"valid pairs: { {k: v for k, v in VALID_PAIRS.items()} }")
    if d[1] > 1 and not any(a in HIDDEN_ACTIVATIONS for a in acts):
        raise ValueError(f"depths {d} need a hidden activation from {HIDDEN_ACTIVATIONS}, got {acts}")
    return _Options(max_examples, seed, dtype, device, arrays, acts, loss_names, d, _range("widths", widths, 1),
                    _range("batch", batch, 1), bias, reds)


# ------------------------------------------------------------------------------------------ cases

def _coverage_cases(opt: _Options, dtype: Any) -> list[Case]:
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


def _convert_case(case: Case, opt: _Options) -> tuple[Params, Any, Any]:
    if opt.arrays == "numpy":
        return case.params, case.X, case.Y
    import torch

    def move(a: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(a)).to(opt.device)

    return case.params.map(move), move(case.X), move(case.Y)


# ------------------------------------------------------------------------------------------ checking

@dataclass
class _Failure:
    case: Case
    kind: str  # "mismatch", "crash", "shape", "type"
    comparison: Comparison | None = None
    detail: str = ""
    actual: Params | None = None  # float64, the derivation's gradients (or implied gradients)
    expected: Params | None = None


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


def _check_case(case: Case, fn: Callable, opt: _Options, update: bool) -> tuple[_Failure | None, Comparison | None]:
    spec = case.spec
    params, X, Y = _convert_case(case, opt)
    what = "step_fn" if update else "grad_fn"
    try:
        result = fn(spec, params, X, Y, case.lr) if update else fn(spec, params, X, Y)
    except Exception as exc:  # noqa: BLE001 - any crash inside the user's function is the finding
        return _Failure(case, "crash", detail=_crash(exc, what)), None
    actual, problem = _normalise(spec, result, what)
    p64 = case.params.map(as_numpy64)
    X64, Y64 = as_numpy64(case.X), as_numpy64(case.Y)
    ref_grads = autograd.gradients(spec, p64, X64, Y64)
    if actual is None:
        return _Failure(case, "type", detail=problem), None
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
    implied = _implied_gradients(p64, actual, case.lr, spec) if update and kind == "mismatch" else actual
    return _Failure(case, kind, comparison, actual=implied, expected=ref_grads), comparison


def _implied_gradients(p: Params, updated: Params, lr: float, spec: Spec) -> Params:
    """(W - W_new) / lr: the gradient an update rule used."""
    if lr == 0:
        return updated
    W = [(w - u) / lr for w, u in zip(p.weights, updated.weights)]
    b = None if p.biases is None else [(w - u) / lr for w, u in zip(p.biases, updated.biases)]
    return Params(W, b)


def _run(fn: Callable, opt: _Options, update: bool) -> OracleSummary:
    dtype = np.dtype(opt.dtype)
    summary = OracleSummary(dtype=opt.dtype, device=opt.device)
    failures: list[_Failure] = []
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
        raise DerivationMismatch(_report(failures[-1], opt, update, getattr(fn, "__name__", "")))
    return summary


# ------------------------------------------------------------------------------------------ report

def _spec_code(spec: Spec) -> str:
    return (f"manual.Spec({spec.sizes}, {spec.activations}, {spec.loss!r}, bias={spec.bias}, "
            f"reduction={spec.reduction!r})")


def _report(f: _Failure, opt: _Options, update: bool, fn_name: str) -> str:
    case, spec = f.case, f.case.spec
    N = case.X.shape[0]
    what = "step_fn" if update else "grad_fn"
    name = fn_name if fn_name.isidentifier() else what
    lines = [f"{what} {name!r} disagrees with autograd"
             + (" (torch.optim.SGD)" if update else "") + ".",
             f"Minimal case: {spec}, N={N}, dtype={opt.dtype}, device={opt.device}"
             + (f", lr={case.lr}" if update else "")]
    if f.kind in ("crash", "type"):
        lines.append(f"  {f.detail}")
    else:
        lines.append(str(f.comparison))
        bad_layers = sorted({int(r.name[1:]) for r in f.comparison.rows if not r.ok}, reverse=True)
        if bad_layers:
            l = bad_layers[0]
            k = spec.depth - l + 1
            nth = f"{k}{'st' if k == 1 else 'nd' if k == 2 else 'rd' if k == 3 else 'th'}"
            lines.append(f"Parts from autograd at layer {l} of {spec.depth} "
                         f"({'the output layer' if k == 1 else f'the {nth} counting from the output'})")
        p64 = case.params.map(as_numpy64)
        X64, Y64 = as_numpy64(case.X), as_numpy64(case.Y)
        patterns = diagnose(spec, p64, X64, Y64, f.actual, f.expected) if f.actual is not None else []
        lines.append("Diagnosis: " + ("; ".join(patterns) if patterns else "no known pattern fits"))
        row = f.comparison.first_mismatch()
        if f.kind == "mismatch" and row is not None and row.worst:
            derived = dict(f.actual.arrays())[row.name][row.worst]
            reference = dict(f.expected.arrays())[row.name][row.worst]
            lines.append("Blame: " + blame(spec, p64, X64, Y64, row.name, row.worst, float(derived), float(reference)))
    call = (f"{name}(case.spec, case.params, case.X, case.Y, case.lr)" if update
            else f"{name}(case.spec, case.params, case.X, case.Y)")
    check = "crosscheck_update" if update else "crosscheck_gradients"
    lines += ["Reproduce:",
              "    import manual, numpy as np",
              f"    from torch_ref.crosscheck import {check}",
              "    from torch_ref.strategies import case_from",
              f"    case = case_from({_spec_code(spec)}, N={N}, seed={case.seed}, grid={case.grid}, "
              f"gain={case.gain}, lr={case.lr}, dtype=np.{opt.dtype}"
              + (", kink=True)" if case.kink else ")"),
              f"    print({check}(case.spec, case.params, case.X, case.Y{', case.lr' if update else ''}, {call}))"
              if f.kind not in ("crash", "type") else f"    {call}"]
    return "\n".join(lines)


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
    opt = _options(max_examples, seed, dtype, device, arrays, activations, losses, depths, widths, batch, bias,
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
    opt = _options(max_examples, seed, dtype, device, arrays, activations, losses, depths, widths, batch, bias,
                   reductions)
    return _run(step_fn, opt, update=True)
