"""The oracle: does a hand derivation agree with autograd on every network it claims to cover?

``check_derivation(grad_fn)`` draws networks, weights and data with Hypothesis, classifies
``grad_fn`` on each (:mod:`torch_ref.checks.verdict`: agree, precision, unstable, mismatch, crash, ...),
shrinks a failure to a minimal network and raises :class:`DerivationMismatch` with a one-screen
report. ``check_update(step_fn)`` does the same for an update rule against ``torch.optim.SGD``;
``check_training(make_trainer)`` for several steps of a training loop against a ``torch.optim``
optimizer (:mod:`torch_ref.training.trajectory`); ``check_deltas``, ``check_input_gradient`` and
``check_per_example`` for the other quantities (:mod:`torch_ref.checks.quantities`). Every check takes the same
narrowing options, and every case handed to the callable lies within them (:meth:`Options.admits`).
Precision cases pass with a :class:`PrecisionWarning` unless ``strict=True``.
"""

from __future__ import annotations

import inspect
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Unsatisfiable

import manual
from manual import Params, Spec

from ..checks.quantities import KIND_WHAT, classify_kind
from ..checks.verdict import Verdict, check_callable, classify
from ..strategies import Case, case_from, cases, kink_placeable, output_pairs
from ..training.trajectory import check_trainer_factory, check_training_case
from .naming import caller_names, optimizer_naming
from .options import Options, parse_options
from .record import failure_record, not_judged_record
from .report import failure_lines, not_judged_report, render_precision

_TABLES: dict[type, Any] = {manual.Activation: manual.ACTIVATIONS, manual.Loss: manual.LOSSES}

__all__ = [
    "KINDS",
    "DerivationMismatch",
    "NotJudged",
    "OracleSummary",
    "PrecisionWarning",
    "check_deltas",
    "check_derivation",
    "check_input_gradient",
    "check_per_example",
    "check_training",
    "check_update",
]


class DerivationMismatch(AssertionError):
    """A derivation disagrees with autograd (or is unstable, or crashed); the message is the report,
    :attr:`record` the same as JSON-ready values (:func:`torch_ref.engine.record.failure_record`)."""

    def __init__(self, report: str, record: dict[str, Any] | None = None) -> None:
        super().__init__(report)
        self.record = record if record is not None else {"passed": False, "report": report}


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
    kind: str = "gradients"
    targets: str = "soft"
    not_judged: int = 0  # cases with nothing compared, or an entry with no finite bound: never passes
    not_judged_reasons: dict = field(default_factory=dict)  # reason -> count

    def add_not_judged(self, verdict: Any) -> None:
        self.not_judged += 1
        reason = _reason(verdict)
        self.not_judged_reasons[reason] = self.not_judged_reasons.get(reason, 0) + 1

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

    def to_dict(self) -> dict[str, Any]:
        """What was covered, as JSON-ready values."""
        return {
            "kind": self.kind,
            "examples": self.examples,
            "networks": len(self.specs),
            "dtype": self.dtype,
            "device": self.device,
            "seconds": round(self.seconds, 3),
            "activations": sorted(self.activations),
            "output_loss_pairs": [f"{a}+{l}" for a, l in sorted(self.pairs)],
            "bias": sorted(self.bias),
            "reductions": sorted(self.reductions),
            "batch_sizes": [min(self.batch_sizes), max(self.batch_sizes)] if self.batch_sizes else [],
            "targets": self.targets,
            "square_layers": self.square,
            "kink_hit": self.kink,
            "largest_share_of_tolerance": self.worst_share,
            "conventions": self.conventions,
            "precision": self.precision,
            "not_judged": self.not_judged,
            "not_judged_reasons": dict(self.not_judged_reasons),
        }

    def __str__(self) -> str:
        pairs = ", ".join(f"{a}+{l}" for a, l in sorted(self.pairs))
        return (
            f"{self.kind}: {self.examples} examples on {len(self.specs)} networks ({self.dtype}, {self.device}) in "
            f"{self.seconds:.1f} s; activations {sorted(self.activations)}; output/loss pairs {pairs}; "
            + (f"targets {self.targets}; " if self.targets != "soft" else "")
            + f"bias {sorted(self.bias)}; reductions {sorted(self.reductions)}; batch sizes "
            f"{min(self.batch_sizes)}-{max(self.batch_sizes)}; square layers {self.square}; kink hit "
            f"{self.kink}; largest share of the tolerance used {self.worst_share:.3g}"
            + (f"; {self.conventions} examples under a named convention" if self.conventions else "")
            + (f"; {self.precision} agree only to rounding level" if self.precision else "")
            + (
                f"; {self.not_judged} not judged ("
                + "; ".join(f"{n}: {reason}" for reason, n in self.not_judged_reasons.items())
                + ")"
                if self.not_judged
                else ""
            )
            + (f" ({SHARE_OF_STEP})" if self.kind == "training" else "")
        )


SHARE_OF_STEP = (
    "a training step's share is of what that step adds to the trajectory bound, beyond the difference carried "
    "from the step before"
)


def _reason(verdict: Any) -> str:
    """A not-judged verdict's reason, without its case's numbers (so that like reasons count together)."""
    text = verdict.detail or "no reason given"
    if "leaves the range" in text:
        return "torch's float64 trajectory leaves the dtype's range at step 1, so no step could be compared"
    if "no finite trajectory bound" in text:
        return "some entries have no finite trajectory bound"
    return text


class NotJudged(DerivationMismatch):
    """An oracle run that judged too little to pass: no case judged, or most drawn cases not judged.
    Not a fault found in the callable; the message says how many and why."""


# ------------------------------------------------------------------------------------------ cases


def _coverage_cases(opt: Options, dtype: Any) -> list[Case]:
    """Small deterministic cases that make the defaults cover every valid output/loss pair, every
    hidden activation, bias on and off, both reductions, square layers, one example and several,
    and an input of exactly 0 in every layer of each activation with a kink at 0 (ReLU, leaky ReLU).
    Built within the ranges; the run hands on only those within every option (:meth:`Options.admits`)."""
    hidden = list(opt.hidden) or [manual.ACTIVATIONS["identity"]]
    out_lo, out_hi = opt.out_range
    outputs = output_pairs(opt.outputs, opt.losses, opt.out_range)
    pairs = [(a, loss) for loss in opt.losses for a in outputs[loss]]
    w_lo, w_hi = opt.widths
    depth = min(max(2, opt.depths[0]), opt.depths[1])
    if not opt.hidden:
        depth = 1
    out: list[Case] = []

    def width(w: int, last: bool, two: bool = False) -> int:
        lo, hi = (max(out_lo, 2 if two else 1), out_hi) if last else (w_lo, w_hi)
        return min(max(w, lo), hi)

    def make(spec: Spec, **kw: Any) -> None:
        out.append(case_from(spec, dtype=dtype, targets=opt.targets, lr=opt.lrs[len(out) % len(opt.lrs)], **kw))

    for k, (act, loss) in enumerate(pairs * max(1, -(-len(hidden) // len(pairs)))):
        square = k % 2 == 0
        two = not act.elementwise and loss.targets == "unit"
        sizes = [width(3 if square else 2 + (n % 3), n == depth, two) for n in range(depth + 1)]
        acts = (*tuple(hidden[(k + n) % len(hidden)] for n in range(depth - 1)), act)
        bias = opt.bias if opt.bias is not None else k % 2 == 1
        spec = Spec(tuple(sizes), acts, loss, bias=bias, reduction=opt.reductions[k % len(opt.reductions)])
        N = min(max(1 if k % 2 == 0 else 3, opt.batch[0]), opt.batch[1])
        make(spec, N=N, seed=k, gain=1.0)
    for kinked in (a for a in hidden if 0.0 in a.kinks):
        if depth < 2:
            break
        loss = opt.losses[0]
        act = outputs[loss][0]
        two = not act.elementwise and loss.targets == "unit"
        kink_sizes = (width(3, False),) * depth + (width(3, True, two),)
        spec = Spec(
            kink_sizes, (kinked,) * (depth - 1) + (act,), loss, bias=bool(opt.bias), reduction=opt.reductions[0]
        )
        if kink_placeable(spec):
            make(spec, N=min(max(2, opt.batch[0]), opt.batch[1]), seed=99, grid=True, kink=True)
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


@dataclass(frozen=True)
class _Task:
    """One kind of check: the callable, how one case is judged, and what the report needs."""

    kind: str  # gradients, update, deltas, input, per-example, training
    fn: Callable
    judge: Callable[[Case], Any]
    extra: Any = None  # a training check's (steps, optimizer naming)
    finish: Callable[[Any], Any] | None = None  # the reported verdict, completed (a training diagnosis)


def oracle_settings(max_examples: int) -> settings:
    """Hypothesis' settings for an oracle's draw: quiet, no deadline or database, every health check
    off (a narrow draw is the user's choice), and no "explain" phase: the report says what matters,
    and that phase re-runs the derivation many times."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )


def _run(task: _Task, opt: Options, names: tuple[str, ...]) -> OracleSummary:
    __tracebackhide__ = True
    dtype = np.dtype(opt.dtype)
    summary = OracleSummary(dtype=opt.dtype, device=opt.device, kind=task.kind, targets=opt.targets)
    failures: list[Any] = []
    precise: list[Verdict] = []
    start = time.perf_counter()

    class _Found(Exception):
        pass

    def check(case: Case) -> bool:
        if not opt.admits(case):  # a coverage case outside the options (a drawn case never is)
            return True
        v = task.judge(case)
        if v.kind == "not judged":  # counted, never a pass, and not a failure of the callable either
            summary.add_not_judged(v)
            return True
        if not v.passed or (opt.strict and v.kind == "precision"):
            failures.append(v)
            return False
        if v.kind == "precision":
            precise.append(v)
        summary.add(v)
        return True

    where_failed: list[ValueError] = []
    if opt.where is not None:
        # a where= that raises is reported at once, on the first coverage case it raises on, before
        # Hypothesis spends its whole budget of draws on a filter that rejects them all
        for case in _coverage_cases(opt, dtype):
            opt.admits(case)

    def accepted(case: Case) -> bool:
        try:
            return opt.accepts(case)
        except ValueError as exc:  # kept, and raised after the run: Hypothesis would print its whole strategy
            where_failed.append(exc)
            return False

    strategy = cases(
        dtype=dtype,
        batch=opt.batch,
        lrs=opt.lrs,
        targets=opt.targets,
        where=None if opt.where is None else accepted,
        **opt.spec_options(),
    )

    @oracle_settings(opt.max_examples)
    @given(strategy)
    def prop(case: Case) -> None:
        if not check(case):
            raise _Found()

    if opt.seed is not None:
        prop = hypothesis_seed(opt.seed)(prop)
    try:
        prop()
        if where_failed:
            raise where_failed[0]
    except Unsatisfiable:
        if where_failed:
            raise where_failed[0] from None
        raise ValueError(
            f"where={opt.where!r} rejected every drawn case; it must accept some of the cases the other options allow"
        ) from None
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
        found = failures[-1] if task.finish is None else task.finish(failures[-1])
        # the first failing case Hypothesis met, before shrinking took it somewhere the mistake may be small
        lines, reproduce = failure_lines(found, task.fn, names, opt, task.extra, before=failures[0])
        report = "\n".join(lines)
        raise DerivationMismatch(report, failure_record(found, report, reproduce, opt, before=failures[0])) from None
    judged = summary.examples
    if judged == 0 or summary.not_judged > judged:
        report = not_judged_report(task.fn, names, summary)
        raise NotJudged(report, not_judged_record(summary, report)) from None
    if precise:
        worst = max(precise, key=lambda v: v.checked.worst_share)
        warnings.warn(
            PrecisionWarning(render_precision(worst, task.fn, names, opt, len(precise), summary.examples)),
            stacklevel=_user_stacklevel(),
        )
    return summary


# ------------------------------------------------------------------------------------------ public

_OPTIONS_DOC = """
        max_examples: random networks drawn by Hypothesis (then a fixed set of small coverage cases).
        seed: makes the draw reproducible; ``None`` draws afresh.
        dtype: ``"float64"`` or ``"float32"``; the reference is always float64 autograd on the same
            values, the tolerance that of the derivation's dtype.
        device, arrays: what the callable receives: NumPy arrays (default on ``"cpu"``) or torch
            tensors on ``device``.
        activations: what every layer draws from (names or :class:`manual.Activation` objects;
            default every registered one).
        hidden_activations, output_activations: narrow the hidden layers and the output layer
            further (each within ``activations`` when that is given).
        losses, depths, widths, batch, bias, reductions: narrow what is drawn to what the derivation
            claims to cover (defaults: everything, depth 1-4, widths 1-6, N 1-5).
        output_width: the output width J, an int or ``(lo, hi)`` (default: from ``widths``).
        targets: ``"soft"`` (default: as the loss declares, e.g. ce rows on the simplex) or
            ``"onehot"`` (class labels: ce one 1 per row, bce entries in {0, 1}).
        where: ``where(case) -> bool``, your own predicate on the drawn
            :class:`~torch_ref.strategies.Case`; only cases it accepts are checked.
        strict: fail on *precision* too (agreement to rounding level but beyond the derived
            bound); by default such cases pass with a :class:`PrecisionWarning`.
"""


def check_derivation(
    grad_fn: Callable[[Spec, Params, Any, Any], Any],
    *,
    max_examples: int = 100,
    seed: int | None = None,
    dtype: Any = "float64",
    device: str = "cpu",
    arrays: str | None = None,
    activations: Sequence[str | manual.Activation] | None = None,
    losses: Sequence[str | manual.Loss] | None = None,
    depths: int | tuple[int, int] = (1, 4),
    widths: int | tuple[int, int] = (1, 6),
    batch: int | tuple[int, int] = (1, 5),
    bias: bool | None = None,
    reductions: Sequence[str] | None = None,
    strict: bool = False,
    hidden_activations: Sequence[str | manual.Activation] | None = None,
    output_activations: Sequence[str | manual.Activation] | None = None,
    output_width: int | tuple[int, int] | None = None,
    targets: str = "soft",
    where: Callable[[Case], bool] | None = None,
) -> OracleSummary:
    """Check ``grad_fn(spec, params, X, Y) -> Params`` (or a ``(weights, biases)`` pair, or a list of
    weight gradients when the spec has no biases) against autograd on random networks; raise
    :class:`DerivationMismatch` on the smallest network where it fails.

    ``grad_fn`` gives the gradients of the objective (sum, or mean over N, of the per-example loss)
    in the slides' layout, ``W`` of shape ``(in, out)``.

    Args:{options}
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
    return _check("gradients", grad_fn, options)


def check_update(
    step_fn: Callable[[Spec, Params, Any, Any, float], Any],
    *,
    lr: float | Sequence[float] = (0.01, 0.1, 0.5, 1.0),
    **options: Any,
) -> OracleSummary:
    """Check an update rule ``step_fn(spec, params, X, Y, lr) -> Params`` against one step of
    ``torch.optim.SGD`` (plain: no momentum, no weight decay) at the learning rate(s) ``lr``; the
    other options as :func:`check_derivation`. The rule gets private copies: one that updates its
    arrays in place and returns them is checked like any other. A rule with state (momentum) or
    weight decay is checked over several steps by :func:`check_training`."""
    __tracebackhide__ = True
    return _check("update", step_fn, {**options, "lr": lr})


def check_deltas(delta_fn: Callable[[Spec, Params, Any, Any], Any], **options: Any) -> OracleSummary:
    """Check ``delta_fn(spec, params, X, Y) -> [delta1, ..., deltaL]``, each ``(N, sizes[l])``: the
    derivative of the objective (the spec's reduction) in every layer's pre-activation ``I``,
    against autograd; options as :func:`check_derivation`."""
    __tracebackhide__ = True
    return _check("deltas", delta_fn, options)


def check_input_gradient(fn: Callable[[Spec, Params, Any, Any], Any], **options: Any) -> OracleSummary:
    """Check ``fn(spec, params, X, Y) -> dObjective/dX`` of shape ``(N, D)`` against autograd;
    options as :func:`check_derivation`."""
    __tracebackhide__ = True
    return _check("input", fn, options)


def check_per_example(fn: Callable[[Spec, Params, Any, Any], Any], **options: Any) -> OracleSummary:
    """Check ``fn(spec, params, X, Y)``: the gradient of each example's own loss L_n (no reduction
    over the batch), weights ``(N, in, out)`` and biases ``(N, out)`` as ``manual.Params``, a
    ``(weights, biases)`` pair or a list, against ``torch.func.vmap(torch.func.grad(...))``
    (:func:`manual.per_example_gradients` is the hand-derived twin); options as
    :func:`check_derivation`."""
    __tracebackhide__ = True
    return _check("per-example", fn, options)


def check_training(
    make_trainer: Callable[..., Any],
    *,
    optimizer: Callable[..., Any] | None = None,
    steps: int = 3,
    lr: float | Sequence[float] | None = None,
    **options: Any,
) -> OracleSummary:
    """Check a training loop: ``make_trainer(spec, params, lr=lr)`` gives an object with
    ``.step(X, Y)`` and ``.params`` (:class:`manual.Trainer` and :class:`manual.AdamTrainer` fit);
    per case it takes ``steps`` steps on batches drawn per step and is compared after every step with
    the same steps of ``optimizer(torch_parameters, lr)`` (default ``torch.optim.SGD``; SGD, Adam and
    AdamW are modelled) on the torch network. A failure names the first step and parameter where the
    trajectories part and the optimizer mistakes that fit (:mod:`torch_ref.training.trajectory`).

    Args:
        lr: the learning rate(s) drawn (default 0.01, 0.1, 0.5).
        options: as :func:`check_derivation`.
    """
    __tracebackhide__ = True
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if optimizer is not None and not callable(optimizer):
        raise ValueError(f"optimizer must be None or a callable optimizer(params, lr), got {optimizer!r}")
    extra = {"steps": steps, "optimizer": optimizer}
    return _check("training", make_trainer, {**options, "lr": (0.01, 0.1, 0.5) if lr is None else lr}, extra)


check_derivation.__doc__ = (check_derivation.__doc__ or "").format(options=_OPTIONS_DOC)

# every check's keyword options and their defaults, read from check_derivation's signature (one place)
_DEFAULTS: dict[str, Any] = {
    name: p.default
    for name, p in inspect.signature(check_derivation).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
}
_DEFAULTS["lr"] = inspect.signature(check_update).parameters["lr"].default

KINDS = ("gradients", "update", "training", "deltas", "input", "per-example")


def _judge(kind: str, fn: Callable, opt: Options, extra: dict[str, Any] | None) -> Callable[[Case], Any]:
    if kind in ("gradients", "update"):
        return partial(classify, fn, update=kind == "update", arrays=opt.arrays, device=opt.device)
    if kind == "training":
        assert extra is not None
        return partial(
            check_training_case,
            fn,
            optimizer=extra["optimizer"],
            steps=extra["steps"],
            arrays=opt.arrays,
            device=opt.device,
            diagnose=False,
        )
    return lambda case: classify_kind(kind, fn, case, arrays=opt.arrays, device=opt.device)


def _check(kind: str, fn: Callable, options: dict[str, Any], extra: dict[str, Any] | None = None) -> OracleSummary:
    """Validate the callable (before anything is drawn) and the options, then run."""
    __tracebackhide__ = True
    what = {"gradients": "grad_fn", "update": "step_fn", "training": "make_trainer", **KIND_WHAT}[kind]
    if kind == "training":
        check_trainer_factory(fn)
    else:
        check_callable(fn, what, 5 if kind == "update" else 4)
    unknown = sorted(set(options) - set(_DEFAULTS))
    if unknown or (kind != "gradients" and kind != "update" and kind != "training" and "lr" in options):
        bad = unknown or ["lr"]
        raise TypeError(
            f"check for {kind} got unexpected keyword argument(s) {bad}; accepted: "
            f"{sorted(k for k in _DEFAULTS if k != 'lr' or kind in ('update', 'training'))}"
        )
    opt = parse_options(**{**_DEFAULTS, **options})
    own = [e for e in (*opt.activations, *opt.losses) if _TABLES[type(e)].get(e.name) is not e]
    found = [(id(e), names[0]) for e in own if (names := caller_names(e))]
    opt = replace(opt, entry_vars=tuple(found))
    report_extra = None
    if extra is not None:
        optimizer = extra["optimizer"]
        naming_of = None if optimizer is None else optimizer_naming(optimizer, caller_names(optimizer))
        report_extra = (extra["steps"], naming_of)
    finish = None
    if extra is not None:
        optimizer, steps = extra["optimizer"], extra["steps"]

        def finish(v: Any) -> Any:
            if v.kind != "mismatch":
                return v
            return check_training_case(
                fn, v.case, optimizer=optimizer, steps=steps, arrays=opt.arrays, device=opt.device
            )

    task = _Task(kind, fn, _judge(kind, fn, opt, extra), report_extra, finish)
    return _run(task, opt, caller_names(fn))
