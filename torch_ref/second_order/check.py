r"""The second-order oracle: ``check_hvp(hvp_fn)`` and ``check_gnvp(gnvp_fn)`` draw networks and a
direction V, and compare ``fn(spec, params, X, Y, V)`` with the float64 references of
:mod:`torch_ref.second_order.products` (double backward; ``torch.func`` jvp and vjp), array by array.

**Tolerance model** (documented, not a full rounding analysis). A correct product is a sum of
products of the forward quantities, A', A'', the deltas, the loss's derivatives in y* and V, along
the paths of the R-passes. Each factor x has a size :math:`|x|` and an error magnitude :math:`m_x`
(it is off by at most :math:`u\,m_x`, :math:`u = 2 \varepsilon \kappa_2`):
:math:`m_{\mathcal{A}'} = |\mathcal{A}''| s_I + T_1`, :math:`m_{\mathcal{A}''} = |\mathcal{A}^{(3)}| s_I + T_2`,
:math:`m_{y^*} = |\mathcal{A}'| s_I`, :math:`m_\delta = M_\delta`,
:math:`m_{H_L} = |H_L| + |\partial H_L / \partial y^*| s_{y^*}`, :math:`m_g = |g| + |H_L| s_{y^*}`,
with :math:`s_I = (|u| + m_u)|W| + |b|` the forward pass's magnitudes, :math:`T_1` the entry's
``derivative_terms`` (as in :mod:`torch_ref.numerics.tolerance`), :math:`T_2 = \max(|\mathcal{A}''|, 1)(1 +
|I|)^2` where :math:`\mathcal{A}'' \ne 0` (0 where it is exactly 0: ReLU, identity),
:math:`M_\delta` the first-order model's error magnitude of the exact objective's deltas. With
:math:`P(t)` the R-passes on absolute values (:func:`torch_ref.second_order.products.r_pass` with
``absolute=True``: every difference a sum, the general output formula, not the canonical
shortcut, so that either form is covered) run on the factors :math:`|x| + t\,m_x`, a polynomial in
t with coefficients :math:`a_k \ge 0`, the allowed difference is :math:`u M + \kappa_2\,tiny`, with

.. math::
    M = P(0) + \frac{P(u) - P(0)}{u} = a_0 + a_1 + a_2 u + a_3 u^2 + \dots

the rounding of every operation along the paths (:math:`a_0`), every factor's error carried once
(:math:`a_1`), and each product of k errors with its own :math:`u^{k-1}`
(:mod:`torch_ref.second_order.tolerance`; the passes once ran on :math:`P(1)`, which gave a product
of two errors the weight of one and accepted a wrong sign in saturated rows, issue 21), and
:math:`\kappa_2 = \kappa (2L + 2)`: the first-order :math:`\kappa` (the longest sum plus 5) times
the number of stages a path passes through (forward, forward R-pass, backward, backward R-pass,
about 2L + 2 in all).

Where the loss gives a cancelled form for its output (:attr:`manual.Loss.r_cancelled`,
``gn_cancelled``) or the pair is canonical, the output's magnitude covers that form as well as the
general one, and that form alone where the general one's factors overflow (y* saturated).

Measured: the tests draw networks of every built-in activation and loss in both dtypes and find no
false alarm under this bound, and every catalogued mistake far above it; ``python
scripts/second_order_campaign.py --cases 2000`` (depths 1-5, widths 1-12, normal, grid and
saturated regimes) finds no finite result of ``manual.hvp``, ``manual.gnvp`` or torch's own products
in the case's dtype outside it (largest share used 0.016). Outside the model, counted apart there:
where y* is so saturated that the loss's second derivative in y* is no float64 number, the
Gauss-Newton reference overflows (not judged); ``manual.hvp`` for softmax + bce gives inf or nan
where a softmax output rounds to 1 and all the others underflow to 0. Inputs within their rounding
error of a kink (ReLU, leaky ReLU at 0) are not given an allowance here (the first-order model's
kink allowance is not carried to second order): such a draw is rare off the grid, and on the grid
the input is exact.

A failure names the arrays, the layers whose blocks differ (the backward R-pass runs from the
output down, so a wrong term shows first in the highest layer it touches), a diagnosis named only
where its candidate fits every array within the bound and is told apart from the right product
there, and, for ``check_hvp``, finite differences of autograd's gradient along V as blame.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import seed as hypothesis_seed

import manual
from manual import Params
from manual._entry import MissingDerivativeError

from ..engine.naming import caller_names
from ..engine.options import parse_options
from ..engine.report import _spec_code, fn_import, not_judged_lines
from ..engine.result import normalise
from ..numerics.compare import compare
from ..strategies import Case, cases
from .diagnosis import _blame, _diagnose, _layers, _Outcome
from .products import gnvp_reference, hvp_reference, parts
from .tolerance import bounds

__all__ = ["SecondOrderSummary", "check_gnvp", "check_gnvp_case", "check_hvp", "check_hvp_case", "direction"]

_KIND = {"hvp": "Hessian-vector product HV", "gnvp": "Gauss-Newton product J^T H_L J V"}
_UNJUDGED = {
    "reference": "the float64 reference is not finite (the loss's derivatives in y* overflow float64 at these outputs)",
    "bound": "the bound is not finite (a factor's size or error overflows float64 on this case)",
}


@dataclass
class SecondOrderSummary:
    """What a passing check covered: ``examples`` judged, ``not_judged`` drawn but not judged (the
    float64 reference or its bound not finite), with the reasons counted."""

    kind: str
    examples: int = 0
    not_judged: int = 0
    not_judged_reasons: Counter = field(default_factory=Counter)
    networks: set = field(default_factory=set)
    activations: set = field(default_factory=set)
    losses: set = field(default_factory=set)
    worst_share: float = 0.0
    seconds: float = 0.0

    def __str__(self) -> str:
        return (
            f"{self.kind}: {self.examples} examples on {len(self.networks)} networks in {self.seconds:.1f} s; "
            f"activations {sorted(self.activations)}; losses {sorted(self.losses)}; "
            f"largest share of the tolerance used {self.worst_share:.3g}"
            + (f"; {self.not_judged} more drawn cases not judged" if self.not_judged else "")
        )


def direction(case: Case) -> Params:
    """The direction V of a case: standard normal entries in the case's dtype, from a generator
    seeded by the case's seed (so a case and its V are reproduced together)."""
    rng = np.random.default_rng([case.seed, 2])
    dtype = case.X.dtype
    return case.params.map(lambda a: rng.standard_normal(np.shape(a)).astype(dtype))


# ------------------------------------------------------------------------------- the tolerance


# ------------------------------------------------------------------------------- one case


def _judge(fn: Callable, case: Case, kind: str) -> _Outcome:
    V = direction(case)
    spec = case.spec
    p = parts(spec, case.params, case.X, case.Y)
    ref = hvp_reference if kind == "hvp" else gnvp_reference
    want_p = ref(spec, case.params, case.X, case.Y, V)
    names = [n for n, _ in want_p.arrays()]
    want = [a for _, a in want_p.arrays()]
    allowed = bounds(spec, case.params, case.X, case.Y, V, p, kind)
    # y* so saturated that the loss's second derivative in y* is no float64 number: nothing to judge
    # against (scripts/second_order_campaign.py counts such cases); never a pass
    if not all(np.all(np.isfinite(a)) for a in want):
        return _Outcome(case, V, compare([], [], [], []), parts=p, unjudged=_UNJUDGED["reference"])
    if not all(np.all(np.isfinite(a)) for a in allowed):
        return _Outcome(case, V, compare([], [], [], []), parts=p, unjudged=_UNJUDGED["bound"])
    try:
        out = fn(spec, case.params, case.X, case.Y, V)
    except MissingDerivativeError:
        raise  # an entry without what the product needs: a usage error, raised as it is
    except Exception as exc:  # reported as the case's failure
        return _Outcome(
            case, V, compare([], [], [], []), problem=f"{kind}_fn raised {type(exc).__name__}: {exc}", parts=p
        )
    got_p, problem, _ = normalise(spec, out, f"{kind}_fn(...)")
    if got_p is None:
        return _Outcome(case, V, compare([], [], [], []), problem=problem, parts=p)
    got = [a for _, a in got_p.arrays()]
    comparison = compare(names, got, want, allowed, title=f"the {_KIND[kind]} of {kind}_fn against torch")
    return _Outcome(case, V, comparison, got, want, allowed, parts=p)


def _report(fn: Callable, outcome: _Outcome, kind: str, variables: dict[int, str] | None = None) -> str:
    case = outcome.case
    setup, name = fn_import(fn)
    variables = variables or {}
    own = [variables[id(e)] for e in (*case.spec.activations, case.spec.loss) if id(e) in variables]
    defined = list(dict.fromkeys(([] if setup else [name]) + own))
    dtype = np.dtype(case.X.dtype).name
    head = [f"{kind}_fn {name!r} disagrees with torch's {_KIND[kind]}."]
    head.append(f"Minimal case: {case.spec}, N={case.X.shape[0]}, dtype={dtype}, V = torch_ref.direction(case)")
    if outcome.problem:
        head.append(outcome.problem)
    else:
        head += [str(outcome.comparison), _layers(outcome), _diagnose(outcome, kind)]
        head.append(
            _blame(outcome)
            if kind == "hvp"
            else "Blame: none by finite differences (the Gauss-Newton product is not a derivative of the objective)"
        )
    head += [
        "Reproduce:"
        if not defined
        else f"Reproduce (run these where {', '.join(defined)} {'is' if len(defined) == 1 else 'are'} defined):",
        "    import numpy as np",
        "    import manual, torch_ref",
        *[f"    {line}" for line in setup],
        f"    spec = {_spec_code(case.spec, variables)}",
        f"    case = torch_ref.strategies.case_from(spec, N={case.X.shape[0]}, seed={case.seed}, grid={case.grid}, "
        f"gain={case.gain}, lr={case.lr}, dtype=np.{dtype}"
        + (", kink=True" if case.kink else "")
        + (f", logits={case.logits!r}" if case.logits else "")
        + ")",
        f"    print(torch_ref.check_{kind}_case({name}, case))",
    ]
    return "\n".join(line for line in head if line)


# ------------------------------------------------------------------------------- the checks


def _check(fn: Any, kind: str, **options: Any) -> SecondOrderSummary:
    from ..engine.oracle import DerivationMismatch, NotJudged, oracle_settings

    if not callable(fn):
        raise TypeError(f"{kind}_fn must be a callable {kind}_fn(spec, params, X, Y, V), got {fn!r}")
    opt = parse_options(device="cpu", arrays="numpy", **options)
    tables = {manual.Activation: manual.ACTIVATIONS, manual.Loss: manual.LOSSES}
    own = [e for e in (*opt.activations, *opt.losses) if tables[type(e)].get(e.name) is not e]
    variables = {id(e): names[0] for e in own if (names := caller_names(e))}
    summary = SecondOrderSummary(kind)
    found: list[_Outcome] = []
    start = time.perf_counter()
    strategy = cases(dtype=np.dtype(opt.dtype), batch=opt.batch, **opt.spec_options())

    @oracle_settings(opt.max_examples)
    @given(strategy)
    def prop(case: Case) -> None:
        outcome = _judge(fn, case, kind)
        if outcome.unjudged:  # counted, never a pass (issue 21): a run judging too little fails below
            summary.not_judged += 1
            summary.not_judged_reasons[outcome.unjudged] += 1
            return
        if outcome.problem or not outcome.comparison.ok:
            found.append(outcome)
            raise AssertionError("differs")
        summary.examples += 1
        summary.networks.add(case.spec)
        summary.activations.update(a.name for a in case.spec.activations)
        summary.losses.add(case.spec.loss.name)
        summary.worst_share = max(summary.worst_share, outcome.comparison.worst_share)

    if opt.seed is not None:
        prop = hypothesis_seed(opt.seed)(prop)
    try:
        prop()
    except Exception:
        if not found:
            raise
    summary.seconds = time.perf_counter() - start
    if found:
        report = _report(fn, found[-1], kind, variables)
        raise DerivationMismatch(report, {"passed": False, "kind": kind, "report": report}) from None
    if summary.examples == 0 or summary.not_judged > summary.examples:
        report = _not_judged_report(fn, summary, kind)
        record = {
            "passed": False,
            "kind": kind,
            "verdict": "not judged",
            "judged": summary.examples,
            "not_judged": summary.not_judged,
            "reasons": dict(summary.not_judged_reasons),
            "report": report,
        }
        raise NotJudged(report, record)
    return summary


def _not_judged_report(fn: Callable, summary: SecondOrderSummary, kind: str) -> str:
    """Why a run that met no mismatch still fails: no case judged, or more not judged than judged."""
    advice = "Narrow the draw to cases whose float64 reference and bound are finite (e.g. other losses or outputs)."
    return not_judged_lines(f"{kind}_fn {fn_import(fn)[1]!r}", summary, advice)


def check_hvp(
    hvp_fn: Callable[..., Any],
    *,
    max_examples: int = 50,
    seed: int | None = None,
    dtype: Any = "float64",
    activations: Any = None,
    losses: Any = None,
    depths: tuple[int, int] = (1, 3),
    widths: tuple[int, int] = (1, 5),
    batch: tuple[int, int] = (1, 6),
    bias: bool | None = None,
    reductions: Any = ("sum", "mean"),
) -> SecondOrderSummary:
    """Check ``hvp_fn(spec, params, X, Y, V) -> HV`` (a ``Params``) against torch's double backward
    of the exact objective, on drawn networks and directions (see the module docstring). Raises
    :class:`torch_ref.DerivationMismatch` with the minimal case, the arrays and layers that differ, a
    diagnosis and finite-difference blame; raises :class:`torch_ref.engine.oracle.NotJudged` (a
    ``DerivationMismatch``) when no drawn case, or fewer than half of them, could be judged (the
    float64 reference or its bound not finite), saying how many and why; returns what was
    covered. The options are those of
    :func:`torch_ref.check_derivation`; every activation drawn needs ``second_derivative`` and every
    loss ``hessian`` (the built-ins have both).

    Example:
        >>> import manual
        >>> check_hvp(manual.hvp, max_examples=5, seed=0).examples
        5
    """
    return _check(
        hvp_fn,
        "hvp",
        max_examples=max_examples,
        seed=seed,
        dtype=dtype,
        activations=activations,
        losses=losses,
        depths=depths,
        widths=widths,
        batch=batch,
        bias=bias,
        reductions=reductions,
    )


def check_gnvp(
    gnvp_fn: Callable[..., Any],
    *,
    max_examples: int = 50,
    seed: int | None = None,
    dtype: Any = "float64",
    activations: Any = None,
    losses: Any = None,
    depths: tuple[int, int] = (1, 3),
    widths: tuple[int, int] = (1, 5),
    batch: tuple[int, int] = (1, 6),
    bias: bool | None = None,
    reductions: Any = ("sum", "mean"),
) -> SecondOrderSummary:
    """Check ``gnvp_fn(spec, params, X, Y, V) -> J^T H_L J V`` against torch's jvp and vjp of the
    network's output (see the module docstring); the options and the report as :func:`check_hvp`
    (no finite-difference blame: the product is not a derivative of the objective)."""
    return _check(
        gnvp_fn,
        "gnvp",
        max_examples=max_examples,
        seed=seed,
        dtype=dtype,
        activations=activations,
        losses=losses,
        depths=depths,
        widths=widths,
        batch=batch,
        bias=bias,
        reductions=reductions,
    )


def check_hvp_case(hvp_fn: Callable[..., Any], case: Case) -> str:
    """The check of :func:`check_hvp` on one case (the Reproduce lines call it): the report, or a
    line saying it agrees."""
    return _case(hvp_fn, case, "hvp")


def check_gnvp_case(gnvp_fn: Callable[..., Any], case: Case) -> str:
    """The check of :func:`check_gnvp` on one case."""
    return _case(gnvp_fn, case, "gnvp")


def _case(fn: Callable, case: Case, kind: str) -> str:
    outcome = _judge(fn, case, kind)
    if outcome.unjudged:
        return f"not judged: {outcome.unjudged} ({_KIND[kind]})"
    if outcome.problem or not outcome.comparison.ok:
        return _report(fn, outcome, kind)
    return f"{kind}_fn agrees with torch's {_KIND[kind]} on this case (largest share of the tolerance used {outcome.comparison.worst_share:.3g})"
