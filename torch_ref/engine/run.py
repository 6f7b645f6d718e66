"""The engine: one run for every kind of check.

``run(kind, fn, options)`` validates the callable and the options before anything is drawn, draws
cases with Hypothesis within the options, judges each through the kind's entry
(:class:`~torch_ref.engine.kind.Kind`), shrinks a failure to a minimal case and raises
:class:`~torch_ref.DerivationMismatch` with its report and record; a run that judged too little raises
:class:`~torch_ref.NotJudged`; a passing run returns one :class:`~torch_ref.engine.summary.Summary`
(with a :class:`~torch_ref.PrecisionWarning` where cases agree only to rounding level).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Unsatisfiable

import manual

from ..strategies import Case, cases
from .coverage import coverage_cases
from .errors import DerivationMismatch, NotJudged, PrecisionWarning
from .kind import Kind
from .naming import caller_names, label
from .options import DEFAULTS, Options, parse_options
from .record import failure_record, not_judged_record
from .report import before_lines, not_judged_lines
from .summary import Summary

__all__ = ["oracle_settings", "resolve_options", "run"]

_TABLES: dict[type, Any] = {manual.Activation: manual.ACTIVATIONS, manual.Loss: manual.LOSSES}
_CASE_LRS = (0.01, 0.1, 0.5, 1.0)  # the learning rates drawn into cases where the kind takes none


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


def resolve_options(kind: Kind, options: Mapping[str, Any]) -> tuple[Options, dict[str, Any]]:
    """The common options (validated, with the kind's defaults) and the kind's own, split apart.
    A ``TypeError`` names an option no check takes, or one this kind does not."""
    own = {k: options[k] for k in options if k in kind.options}
    common = {k: v for k, v in options.items() if k not in kind.options}
    takes = set(DEFAULTS) if kind.common is None else set(kind.common)
    unknown = sorted(set(common) - takes)
    if unknown:
        raise TypeError(
            f"{kind.check} got unexpected keyword argument(s) {unknown}; accepted: {sorted({*takes, *kind.options})}"
        )
    for name, (value, why) in kind.fixed.items():
        if name in common and common[name] != value:
            raise ValueError(f"{kind.check} takes {name}={value!r} only ({why}), got {name}={common[name]!r}")
    merged = {**DEFAULTS, **kind.defaults, **common}
    opt = parse_options(lr=own.get("lr", kind.options.get("lr", _CASE_LRS)), **merged)
    own_entries = [e for e in (*opt.activations, *opt.losses) if _TABLES[type(e)].get(e.name) is not e]
    found = [(id(e), names[0]) for e in own_entries if (names := caller_names(e))]
    return replace(opt, entry_vars=tuple(found)), {**kind.options, **own}


@dataclass
class _Run:
    """One run's state: the summary so far, the failing outcomes met (the first and the last after
    shrinking), the precision cases, and the errors a ``where`` raised."""

    kind: Kind
    fn: Callable
    opt: Options
    extra: dict[str, Any]
    summary: Summary
    drawn: int = 0  # drawn cases that reached the judge (Hypothesis' draw, after where)
    failures: list[Any] = field(default_factory=list)
    precise: list[Any] = field(default_factory=list)
    where_failed: list[ValueError] = field(default_factory=list)

    def check(self, case: Case) -> bool:
        """Judge one case; False where it fails (kept in :attr:`failures`)."""
        if self.kind.draw is None and not self.opt.admits(case):  # a coverage case outside the options
            return True
        outcome = self.kind.judge(self.fn, case, self.opt, self.extra)
        if outcome.kind == "not judged":  # counted, never a pass, and not a failure of the callable either
            self.summary.add_not_judged(outcome)
            return True
        if not outcome.passed or (self.opt.strict and outcome.kind == "precision"):
            self.failures.append(outcome)
            return False
        if outcome.kind == "precision":
            self.precise.append(outcome)
        if self.kind.cover is not None:
            self.kind.cover(self.summary, outcome)
        if self.kind.add is not None:
            self.kind.add(self.summary, outcome)
        else:
            self.summary.add(outcome)
        return True

    def accepted(self, case: Case) -> bool:
        """The user's ``where``; one that raises is kept and raised after the run (Hypothesis would
        print its whole strategy)."""
        try:
            return self.opt.accepts(case)
        except ValueError as exc:
            self.where_failed.append(exc)
            return False


@contextmanager
def _seed_alone() -> Iterator[None]:
    """While the oracle draws: no constants collected from the source files of the running program.
    Hypothesis (6.131 and later) mixes literal numbers of local modules into what it generates, so
    the same ``seed`` would draw other cases beside another script (or after one more import); the
    oracle's draw depends on its seed and its options alone. Through Hypothesis' internals
    (``providers._get_local_constants`` and its cache, no public setting exists), each guarded: where
    they are absent there is nothing to neutralise."""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:
        yield
        return
    if not hasattr(providers, "_get_local_constants") or not hasattr(providers, "CONSTANTS_CACHE"):
        yield
        return
    collect, cache = providers._get_local_constants, providers.CONSTANTS_CACHE
    providers._get_local_constants = Constants  # an empty pool
    providers.CONSTANTS_CACHE = {}  # type: ignore[assignment]  # the pools allowed per kind of choice, afresh
    try:
        yield
    finally:
        providers._get_local_constants, providers.CONSTANTS_CACHE = collect, cache


class _Found(Exception):
    """A failing case, raised to Hypothesis so that it shrinks."""


def _draw(state: _Run) -> None:
    """Hypothesis' draw and shrink, then (where nothing failed) the coverage cases."""
    opt = state.opt
    dtype = np.dtype(opt.dtype)
    if opt.where is not None:
        # a where= that raises is reported at once, on the first coverage case it raises on, before
        # Hypothesis spends its whole budget of draws on a filter that rejects them all
        for case in coverage_cases(opt, dtype):
            opt.admits(case)
    where = None if opt.where is None else state.accepted
    if state.kind.draw is not None:
        strategy = state.kind.draw(opt, state.extra)
    else:
        strategy = cases(
            dtype=dtype, batch=opt.batch, lrs=opt.lrs, targets=opt.targets, where=where, **opt.spec_options()
        )

    @oracle_settings(opt.max_examples)
    @given(strategy)
    def prop(case: Case) -> None:
        state.drawn += 1
        if not state.check(case):
            raise _Found()

    if opt.seed is not None:
        prop = hypothesis_seed(opt.seed)(prop)
    try:
        with _seed_alone():
            prop()
        if state.where_failed:
            raise state.where_failed[0]
    except Unsatisfiable:
        if state.where_failed:
            raise state.where_failed[0] from None
        raise ValueError(
            f"where={opt.where!r} rejected every drawn case; it must accept some of the cases the other options allow"
        ) from None
    except Exception:
        # _Found after shrinking; anything else Hypothesis raises around a failure (a flaky callable)
        # still leaves the failing case recorded
        if not state.failures:
            raise
    if not state.failures and state.kind.coverage_cases and state.kind.draw is None:
        for case in coverage_cases(opt, dtype):
            if not state.check(case):
                break


def run(kind: Kind, fn: Callable, options: Mapping[str, Any]) -> Summary:
    """Check ``fn`` as ``kind`` on drawn cases within ``options``; raise on the minimal failing case,
    or when too little was judged; return what was covered."""
    __tracebackhide__ = True
    opt, extra = resolve_options(kind, options)
    extra = kind.prepare(fn, extra)
    names = caller_names(fn)
    summary = Summary(kind=kind.name, dtype=opt.dtype, device=opt.device, targets=opt.targets)
    state = _Run(kind, fn, opt, extra, summary)
    start = time.perf_counter()
    try:
        _draw(state)
    finally:
        summary.seconds = time.perf_counter() - start
    if state.failures:
        _raise_failure(state, names)
    judged = summary.examples
    if judged == 0 or summary.not_judged > judged:
        who = f"{kind.what} {label(fn, names)}"
        report = not_judged_lines(who, summary, kind.not_judged.format(dtype=opt.dtype))
        raise NotJudged(report, not_judged_record(summary, report)) from None
    if state.precise:
        _warn_precision(state, names)
    if opt.where is not None and state.drawn < opt.max_examples // 2:
        warnings.warn(
            UserWarning(
                f"where={opt.where!r} let only {state.drawn} of the {opt.max_examples} drawn cases asked for through "
                f"(Hypothesis gives up on a filter that rejects most of what it draws); the run judged "
                f"{summary.examples} in all. Widen where, or narrow the other options to what where accepts."
            ),
            stacklevel=_user_stacklevel(),
        )
    return summary


def _raise_failure(state: _Run, names: tuple[str, ...]) -> None:
    """The report of the last failing case (the minimal one), with the first one found before shrinking."""
    __tracebackhide__ = True
    kind, fn, opt = state.kind, state.fn, state.opt
    found = state.failures[-1]
    if kind.finish is not None:
        found = kind.finish(found, fn, opt, state.extra)
    lines, reproduce = kind.report(found, fn, names, opt, state.extra, state.failures[0])
    body = lines[: len(lines) - len(reproduce)]
    report = "\n".join([*body, *before_lines(found, state.failures[0], dict(opt.entry_vars)), *reproduce])
    record = failure_record(kind.name, found, report, reproduce, opt, before=state.failures[0], describe=kind.describe)
    record["page"] = _page(kind, found, opt, state.extra, record)
    raise DerivationMismatch(report, record) from None


# the HTML page's fields of a failing outcome, :func:`torch_ref.figures.fields.page_fields`: it reads
# every kind's outcome type, all above the engine, so torch_ref.kinds sets it here when it loads
PAGE_FIELDS: Callable[..., dict[str, Any]] | None = None


def _page(kind: Kind, found: Any, opt: Options, extra: Any, record: dict[str, Any]) -> dict[str, Any]:
    """The HTML page's fields of the failing outcome. The report is what the run owes; should the
    page's extras fail on some outcome, the record says so in their place (and the page shows the
    report without them), never hiding the failure it reports."""
    if PAGE_FIELDS is None:
        return {"error": "torch_ref.kinds was not loaded, so no page fields were taken"}
    try:
        return PAGE_FIELDS(kind, found, opt, extra, record)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _warn_precision(state: _Run, names: tuple[str, ...]) -> None:
    worst = max(state.precise, key=lambda v: v.checked.worst_share)
    assert state.kind.precision is not None, f"{state.kind.name} gave a precision verdict but has no warning for it"
    text = state.kind.precision(worst, state.fn, names, state.opt, len(state.precise), state.summary.examples)
    warnings.warn(PrecisionWarning(text), stacklevel=_user_stacklevel())


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside torch_ref (the user's
    call, also through the pytest fixture)."""
    frame: Any = sys._getframe(1)
    level = 1
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith("torch_ref"):
        frame, level = frame.f_back, level + 1
    return level
