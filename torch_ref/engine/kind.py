"""One kind of check, as an entry of the engine's table (:mod:`torch_ref.kinds`): what the user's
callable computes, how one case is judged against its reference within its tolerance, how a failing
case is reported (its comparison table, its diagnosis catalogue) and reproduced.

The engine (:func:`torch_ref.engine.run.run`) does the rest for every kind alike: it validates the
options, draws cases with Hypothesis, judges each through the entry, shrinks a failure, and raises or
returns one :class:`~torch_ref.engine.summary.Summary`. An outcome (what ``judge`` returns) offers
``kind`` (the verdict: agree, precision, not judged, mismatch, unstable, crash, type, shape),
``passed``, ``case``, ``what``, ``comparison`` (a :class:`~torch_ref.numerics.compare.Comparison` or
``None``), ``findings`` and ``detail``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Kind"]


def _no_options(fn: Callable, given: Mapping[str, Any]) -> dict[str, Any]:
    return dict(given)


@dataclass(frozen=True)
class Kind:
    """An entry of the table of checks.

    Attributes:
        name: the kind's name (``--kind`` on the command line), e.g. ``"gradients"``.
        check: the public function that runs it, e.g. ``"check_derivation"``.
        what: the callable's role in reports, e.g. ``"grad_fn"``.
        call: how the callable is called, e.g. ``"grad_fn(spec, params, X, Y) -> Params"``.
        reference: what it is compared with (one line, for listings and docs).
        tolerance: the bound it is judged within (one line, with the module that derives it).
        judge: ``judge(fn, case, opt, extra) -> outcome``: the callable run on private copies of the
            case, compared with the reference within the tolerance.
        report: ``report(outcome, fn, names, opt, extra) -> (lines, reproduce)``: a failing outcome's
            head, comparison table and diagnosis lines, and the lines that reproduce its case.
        options: the kind's own options and their defaults (beyond the narrowing options every kind
            takes), e.g. training's ``steps``.
        defaults: the kind's defaults for the common options where they differ (a data-parallel
            check draws fewer cases).
        prepare: ``prepare(fn, extra) -> extra``: validates the callable and the kind's own options
            before anything is drawn (``TypeError``/``ValueError``).
        precision: ``precision(outcome, fn, names, opt, count, total) -> str``: the warning of a
            passing run that met cases agreeing only to rounding level (kinds that have that verdict).
        finish: the reported failure completed (a diagnosis too costly to run on every shrink step).
        cover: adds what an agreeing outcome covered beyond the common coverage to the summary.
        coverage_cases: whether the fixed small coverage cases run after the draw.
        not_judged: the advice of a run that judged too little.
        fixed: the common options the kind fixes (name -> the only value it accepts, and why).
        draw: ``draw(opt, extra) -> SearchStrategy``: the kind's own cases, where they are not networks
            (a layer's arguments); ``None`` draws the networks every other kind judges.
        common: the common options the kind takes where it takes only some (a layer check has no
            activations or depths); ``None`` takes them all.
        add: ``add(summary, outcome)``: an agreeing outcome counted into the summary, for a kind whose
            cases are not networks.
        describe: ``describe(case, opt) -> dict``: the case's fields in the failure record, for a kind
            whose cases are not networks (the keys ``spec`` and ``N`` at least).
    """

    name: str
    check: str
    what: str
    call: str
    reference: str
    tolerance: str
    judge: Callable[..., Any]
    report: Callable[..., tuple[list[str], list[str]]]
    options: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    prepare: Callable[[Callable, Mapping[str, Any]], dict[str, Any]] = _no_options
    finish: Callable[..., Any] | None = None
    precision: Callable[..., str] | None = None
    cover: Callable[[Any, Any], None] | None = None
    coverage_cases: bool = True
    not_judged: str = "Narrow the draw to cases the check can judge (e.g. dtype='float64')."
    fixed: Mapping[str, tuple[Any, str]] = field(default_factory=dict)
    draw: Callable[[Any, Mapping[str, Any]], Any] | None = None
    common: tuple[str, ...] | None = None
    add: Callable[[Any, Any], None] | None = None
    describe: Callable[[Any, Any], dict[str, Any]] | None = None
