"""The oracle: does a hand derivation agree with autograd on every network it claims to cover?

``check_derivation(grad_fn)`` draws networks, weights and data with Hypothesis, classifies
``grad_fn`` on each (:mod:`torch_ref.verdict`: agree, precision, unstable, mismatch, crash, ...),
shrinks a failure to a minimal network and raises :class:`DerivationMismatch` with a one-screen
report. ``check_update(step_fn)`` does the same for an update rule against ``torch.optim.SGD``.
Precision cases pass with a :class:`PrecisionWarning` unless ``strict=True``.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed

import manual
from manual import Params, Spec

from ._naming import caller_names
from ._oracle_options import Options, parse_options
from ._oracle_report import render_failure, render_precision
from .strategies import Case, case_from, cases, kink_placeable, output_pairs
from .verdict import Verdict, check_callable, classify

_TABLES: dict[type, Any] = {manual.Activation: manual.ACTIVATIONS, manual.Loss: manual.LOSSES}

__all__ = ["DerivationMismatch", "OracleSummary", "PrecisionWarning", "check_derivation", "check_update"]


class DerivationMismatch(AssertionError):
    """A derivation disagrees with autograd (or is unstable, or crashed); the message is the report."""


class PrecisionWarning(UserWarning):
    """A passing check met cases where the derivation agrees with autograd only to rounding level."""


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
    precision: int = 0  # examples that agree only to rounding level (see torch_ref.verdict)
    seconds: float = 0.0
    dtype: str = "float64"
    device: str = "cpu"

    def add(self, verdict: Verdict) -> None:
        case, comparison = verdict.case, verdict.checked
        spec = case.spec
        share = comparison.worst_share
        self.conventions += bool(comparison.conventions)
        self.precision += verdict.kind == "precision"
        self.examples += 1
        self.specs.add(spec)
        self.activations.update(spec.names)
        self.pairs.add((spec.activations[-1].name, spec.loss.name))
        self.bias.add(spec.bias)
        self.reductions.add(spec.reduction)
        self.batch_sizes.add(case.X.shape[0])
        self.square |= any(i == o for i, o in spec.shapes())
        self.kink |= any(
            bool(np.any(np.isin(I, entry.kinks))) for entry, I in zip(spec.activations, verdict.reference.I)
        )
        self.worst_share = max(self.worst_share, share)

    def __str__(self) -> str:
        pairs = ", ".join(f"{a}+{l}" for a, l in sorted(self.pairs))
        return (
            f"{self.examples} examples on {len(self.specs)} networks ({self.dtype}, {self.device}) in "
            f"{self.seconds:.1f} s; activations {sorted(self.activations)}; output/loss pairs {pairs}; "
            f"bias {sorted(self.bias)}; reductions {sorted(self.reductions)}; batch sizes "
            f"{min(self.batch_sizes)}-{max(self.batch_sizes)}; square layers {self.square}; kink hit "
            f"{self.kink}; largest share of the tolerance used {self.worst_share:.3g}"
            + (f"; {self.conventions} examples under a named convention" if self.conventions else "")
            + (f"; {self.precision} agree only to rounding level" if self.precision else "")
        )


# ------------------------------------------------------------------------------------------ cases


def _coverage_cases(opt: Options, dtype: Any) -> list[Case]:
    """Small deterministic cases that make the defaults cover every valid output/loss pair, every
    hidden activation, bias on and off, both reductions, square layers, one example and several,
    and an input of exactly 0 in every layer of each activation with a kink at 0 (ReLU, leaky ReLU)."""
    hidden = [a for a in opt.activations if a.elementwise] or [manual.ACTIVATIONS["identity"]]
    outputs = output_pairs(opt.activations, opt.losses, opt.widths)
    pairs = [(a, loss) for loss in opt.losses for a in outputs[loss]]
    w_lo, w_hi = opt.widths
    depth = min(max(2, opt.depths[0]), opt.depths[1])
    out: list[Case] = []
    for k, (act, loss) in enumerate(pairs * max(1, -(-len(hidden) // len(pairs)))):
        square = k % 2 == 0
        sizes = [min(max(3, w_lo), w_hi) if square else min(max(2 + (n % 3), w_lo), w_hi) for n in range(depth + 1)]
        if not act.elementwise and loss.targets == "unit":
            sizes[-1] = max(sizes[-1], 2)
        acts = (*tuple(hidden[(k + n) % len(hidden)] for n in range(depth - 1)), act)
        bias = opt.bias if opt.bias is not None else k % 2 == 1
        spec = Spec(tuple(sizes), acts, loss, bias=bias, reduction=opt.reductions[k % len(opt.reductions)])
        N = min(max(1 if k % 2 == 0 else 3, opt.batch[0]), opt.batch[1])
        out.append(case_from(spec, N=N, seed=k, gain=1.0, dtype=dtype))
    for kinked in (a for a in hidden if 0.0 in a.kinks):
        if depth < 2:
            break
        loss = opt.losses[0]
        act = outputs[loss][0]
        width = min(max(3, w_lo), w_hi)
        two = not act.elementwise and loss.targets == "unit"
        kink_sizes = (width,) * depth + ((max(2, width),) if two else (width,))
        spec = Spec(
            kink_sizes, (kinked,) * (depth - 1) + (act,), loss, bias=bool(opt.bias), reduction=opt.reductions[0]
        )
        if kink_placeable(spec):
            out.append(
                case_from(spec, N=min(max(2, opt.batch[0]), opt.batch[1]), seed=99, grid=True, dtype=dtype, kink=True)
            )
    return out


# ------------------------------------------------------------------------------------------ running


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside torch_ref (the user's
    call, also through the pytest fixture)."""
    frame: Any = sys._getframe(1)
    level = 1
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith("torch_ref"):
        frame, level = frame.f_back, level + 1
    return level


def _run(fn: Callable, opt: Options, update: bool, names: tuple[str, ...]) -> OracleSummary:
    __tracebackhide__ = True
    dtype = np.dtype(opt.dtype)
    summary = OracleSummary(dtype=opt.dtype, device=opt.device)
    failures: list[Verdict] = []
    precise: list[Verdict] = []
    start = time.perf_counter()

    class _Found(Exception):
        pass

    def check(case: Case) -> bool:
        v = classify(fn, case, update=update, arrays=opt.arrays, device=opt.device)
        if not v.passed or (opt.strict and v.kind == "precision"):
            failures.append(v)
            return False
        if v.kind == "precision":
            precise.append(v)
        summary.add(v)
        return True

    strategy = cases(dtype=dtype, batch=opt.batch, lrs=(0.01, 0.1, 0.5, 1.0), **opt.spec_options())

    # no "explain" phase: the report says what matters, and that phase re-runs the derivation many times
    @settings(
        max_examples=opt.max_examples,
        deadline=None,
        database=None,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )
    @given(strategy)
    def prop(case: Case) -> None:
        if not check(case):
            raise _Found()

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
            if not check(case):
                break
    summary.seconds = time.perf_counter() - start
    if failures:
        report = render_failure(failures[-1], fn, names, opt)
        raise DerivationMismatch(report) from None
    if precise:
        worst = max(precise, key=lambda v: v.checked.worst_share)
        warnings.warn(
            PrecisionWarning(render_precision(worst, fn, names, opt, len(precise), summary.examples)),
            stacklevel=_user_stacklevel(),
        )
    return summary


# ------------------------------------------------------------------------------------------ public


def check_derivation(
    grad_fn: Callable[[Spec, Params, Any, Any], Any],
    *,
    max_examples: int = 100,
    seed: int | None = None,
    dtype: Any = "float64",
    device: str = "cpu",
    arrays: str | None = None,
    activations: Sequence[str] | None = None,
    losses: Sequence[str] | None = None,
    depths: int | tuple[int, int] = (1, 4),
    widths: int | tuple[int, int] = (1, 6),
    batch: int | tuple[int, int] = (1, 5),
    bias: bool | None = None,
    reductions: Sequence[str] | None = None,
    strict: bool = False,
) -> OracleSummary:
    """Check ``grad_fn(spec, params, X, Y) -> Params`` (or a ``(weights, biases)`` pair, or a list of
    weight gradients when the spec has no biases) against autograd on random networks; raise
    :class:`DerivationMismatch` on the smallest network where it fails.

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
        strict: fail on *precision* too (agreement to rounding level but beyond the derived
            bound); by default such cases pass with a :class:`PrecisionWarning`.

    Returns:
        An :class:`OracleSummary` of what was covered.

    Raises:
        TypeError: ``grad_fn`` is not callable with four positional arguments (before anything is drawn).
        ValueError: an option is invalid or leaves nothing to draw.
        DerivationMismatch: a mismatch, an unstable evaluation, a crash or a wrong return (and a
            precision case with ``strict=True``), on the minimal case found.

    Example:
        >>> import manual
        >>> check_derivation(manual.gradients, max_examples=10, seed=0).examples > 10
        True
    """
    options = {k: v for k, v in locals().items() if k != "grad_fn"}  # the keyword options, as given
    __tracebackhide__ = True
    return _check(grad_fn, False, options)


def check_update(
    step_fn: Callable[[Spec, Params, Any, Any, float], Any],
    *,
    max_examples: int = 100,
    seed: int | None = None,
    dtype: Any = "float64",
    device: str = "cpu",
    arrays: str | None = None,
    activations: Sequence[str] | None = None,
    losses: Sequence[str] | None = None,
    depths: int | tuple[int, int] = (1, 4),
    widths: int | tuple[int, int] = (1, 6),
    batch: int | tuple[int, int] = (1, 5),
    bias: bool | None = None,
    reductions: Sequence[str] | None = None,
    strict: bool = False,
) -> OracleSummary:
    """Check an update rule ``step_fn(spec, params, X, Y, lr) -> Params`` against one step of
    ``torch.optim.SGD`` (learning rates 0.01-1); options as :func:`check_derivation`. The rule gets
    private copies: one that updates its arrays in place and returns them is checked like any other."""
    options = {k: v for k, v in locals().items() if k != "step_fn"}  # the keyword options, as given
    __tracebackhide__ = True
    return _check(step_fn, True, options)


def _check(fn: Callable, update: bool, options: dict[str, Any]) -> OracleSummary:
    """Validate the callable (before anything is drawn) and the options, then run."""
    __tracebackhide__ = True
    check_callable(fn, "step_fn" if update else "grad_fn", 5 if update else 4)
    opt = parse_options(**options)
    own = [e for e in (*opt.activations, *opt.losses) if _TABLES[type(e)].get(e.name) is not e]
    found = [(id(e), names[0]) for e in own if (names := caller_names(e))]
    return _run(fn, replace(opt, entry_vars=tuple(found)), update, caller_names(fn))
