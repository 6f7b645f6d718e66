r"""The second-order checks' judge and report (the entries :mod:`torch_ref.kinds.hvp` and
:mod:`torch_ref.kinds.gnvp`): ``check_hvp(hvp_fn)`` and ``check_gnvp(gnvp_fn)`` draw networks and a
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
:math:`P(t)` the R-passes on absolute values (:func:`torch_ref.second_order.r_pass.r_pass` with
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

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from manual import Params
from manual._entry import MissingDerivativeError

from ..engine.kind import Kind
from ..engine.naming import label
from ..engine.options import Options
from ..engine.report import fn_import, spec_code
from ..engine.result import normalise
from ..first_order.verdict import _crash, check_callable, hand_out, hand_out_params
from ..numerics.compare import compare
from ..strategies import Case
from .diagnosis import _blame, _diagnose, _layers, _Outcome
from .products import gnvp_reference, hvp_reference, parts
from .tolerance import bounds

__all__ = ["PRODUCT", "check_gnvp_case", "check_hvp_case", "direction", "judge", "product_kind", "report"]

PRODUCT = {"hvp": "Hessian-vector product HV", "gnvp": "Gauss-Newton product J^T H_L J V"}
_UNJUDGED = {
    "reference": "the float64 reference is not finite (the loss's derivatives in y* overflow float64 at these outputs)",
    "bound": "the bound is not finite (a factor's size or error overflows float64 on this case)",
}


def direction(case: Case) -> Params:
    """The direction V of a case: standard normal entries in the case's dtype, from a generator
    seeded by the case's seed (so a case and its V are reproduced together)."""
    rng = np.random.default_rng([case.seed, 2])
    dtype = case.X.dtype
    return case.params.map(lambda a: rng.standard_normal(np.shape(a)).astype(dtype))


def judge(product: str, fn: Callable, case: Case, arrays: str = "numpy", device: str = "cpu") -> _Outcome:
    """``fn(spec, params, X, Y, V)`` on private copies of the case, against the float64 ``product``
    (``"hvp"`` or ``"gnvp"``) within its bound."""
    V = direction(case)
    spec, what = case.spec, f"{product}_fn"
    p = parts(spec, case.params, case.X, case.Y)
    ref = hvp_reference if product == "hvp" else gnvp_reference
    want_p = ref(spec, case.params, case.X, case.Y, V)
    names = [n for n, _ in want_p.arrays()]
    want = [a for _, a in want_p.arrays()]
    allowed = bounds(spec, case.params, case.X, case.Y, V, p, product)
    nothing = compare([], [], [], [])
    # y* so saturated that the loss's second derivative in y* is no float64 number: nothing to judge
    # against (scripts/second_order_campaign.py counts such cases); never a pass
    if not all(np.all(np.isfinite(a)) for a in want):
        return _Outcome(case, V, nothing, parts=p, unjudged=_UNJUDGED["reference"], what=what)
    if not all(np.all(np.isfinite(a)) for a in allowed):
        return _Outcome(case, V, nothing, parts=p, unjudged=_UNJUDGED["bound"], what=what)
    params, X, Y = hand_out(case, arrays, device)
    try:
        out = fn(spec, params, X, Y, hand_out_params(V, arrays, device))
    except MissingDerivativeError:
        raise  # an entry without what the product needs: a usage error, raised as it is
    except (Exception, SystemExit) as exc:  # reported as the case's failure
        return _Outcome(case, V, nothing, problem=_crash(exc, what, arrays, device), parts=p, what=what, crashed=True)
    got_p, problem, _ = normalise(spec, out, f"{what}(...)")
    if got_p is None:
        return _Outcome(case, V, nothing, problem=problem, parts=p, what=what)
    got = [a for _, a in got_p.arrays()]
    comparison = compare(names, got, want, allowed, title=f"the {PRODUCT[product]} of {what} against torch")
    return _Outcome(case, V, comparison, got, want, allowed, parts=p, what=what)


def report(
    product: str, outcome: _Outcome, fn: Callable, names: tuple[str, ...], opt: Options | None = None
) -> tuple[list[str], list[str]]:
    """A failing outcome's lines (the head, the minimal case, the comparison, the layers, the
    diagnosis, the blame) and, of them, the Reproduce lines."""
    case = outcome.case
    setup, name = fn_import(fn)
    variables = dict(opt.entry_vars) if opt is not None else {}
    own = [variables[id(e)] for e in (*case.spec.activations, case.spec.loss) if id(e) in variables]
    defined = list(dict.fromkeys(([] if setup else [name]) + own))
    dtype = np.dtype(case.X.dtype).name
    arrays = "" if opt is None or opt.arrays == "numpy" else f", arrays='torch', device={opt.device!r}"
    verb = "returned arrays of the wrong shape for" if outcome.kind == "shape" else "disagrees with"
    lines = [f"{product}_fn {label(fn, names)} {verb} torch's {PRODUCT[product]}."]
    lines.append(f"Minimal case: {case.spec}, N={case.X.shape[0]}, dtype={dtype}, V = torch_ref.direction(case)")
    if outcome.problem:
        lines.append(outcome.problem)
    elif outcome.kind == "shape":  # the rows say which arrays and what shape; no entry to diagnose or blame
        lines.append(str(outcome.comparison))
    else:
        lines += [str(outcome.comparison), _layers(outcome), _diagnose(outcome, product)]
        lines.append(
            _blame(outcome)
            if product == "hvp"
            else "Blame: none by finite differences (the Gauss-Newton product is not a derivative of the objective)"
        )
    reproduce = [
        "Reproduce:"
        if not defined
        else f"Reproduce (run these where {', '.join(defined)} {'is' if len(defined) == 1 else 'are'} defined):",
        "    import numpy as np",
        "    import manual, torch_ref",
        *[f"    {line}" for line in setup],
        f"    spec = {spec_code(case.spec, variables)}",
        f"    case = {case.rebuild(dtype)}",
        f"    print(torch_ref.check_{product}_case({name}, case{arrays}))",
    ]
    lines = [line for line in lines if line]
    return lines + reproduce, reproduce


def check_hvp_case(hvp_fn: Callable[..., Any], case: Case, *, arrays: str = "numpy", device: str = "cpu") -> str:
    """The check of :func:`~torch_ref.check_hvp` on one case (the Reproduce lines call it): the
    report, or a line saying it agrees."""
    return _case(hvp_fn, case, "hvp", arrays, device)


def check_gnvp_case(gnvp_fn: Callable[..., Any], case: Case, *, arrays: str = "numpy", device: str = "cpu") -> str:
    """The check of :func:`~torch_ref.check_gnvp` on one case."""
    return _case(gnvp_fn, case, "gnvp", arrays, device)


def _case(fn: Callable, case: Case, product: str, arrays: str, device: str) -> str:
    if not callable(fn):
        raise TypeError(f"{product}_fn must be a callable {product}_fn(spec, params, X, Y, V), got {fn!r}")
    outcome = judge(product, fn, case, arrays, device)
    if outcome.unjudged:
        return f"not judged: {outcome.unjudged} ({PRODUCT[product]})"
    if not outcome.passed:
        return "\n".join(report(product, outcome, fn, ())[0])
    return (
        f"{product}_fn agrees with torch's {PRODUCT[product]} on this case "
        f"(largest share of the tolerance used {outcome.comparison.worst_share:.3g})"
    )


def product_kind(product: str, *, call: str, reference: str) -> Kind:
    """The table entry of the ``product`` check (``"hvp"`` or ``"gnvp"``): judged and reported here."""

    def judge_case(fn: Callable, case: Case, opt: Options, extra: Mapping[str, Any]) -> _Outcome:
        return judge(product, fn, case, opt.arrays, opt.device)

    def report_case(
        outcome: _Outcome,
        fn: Callable,
        names: tuple[str, ...],
        opt: Options,
        extra: Mapping[str, Any],
        before: Any = None,
    ) -> tuple[list[str], list[str]]:
        return report(product, outcome, fn, names, opt)

    def prepare(fn: Callable, extra: Mapping[str, Any]) -> dict[str, Any]:
        check_callable(fn, f"{product}_fn", 5, "(spec, params, X, Y, V)")
        return dict(extra)

    return Kind(
        name=product,
        check=f"check_{product}",
        what=f"{product}_fn",
        call=call,
        reference=reference,
        tolerance="the second-order rounding model of torch_ref.second_order.tolerance (R-passes on magnitudes and errors)",
        judge=judge_case,
        report=report_case,
        prepare=prepare,
        defaults={"max_examples": 50, "depths": (1, 3), "widths": (1, 5), "batch": (1, 6)},
        # the draw alone, as the second-order campaigns and pins are sized (examples == max_examples)
        coverage_cases=False,
        not_judged="Narrow the draw to cases whose float64 reference and bound are finite (e.g. other losses or outputs).",
    )
