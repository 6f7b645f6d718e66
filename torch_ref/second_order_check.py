r"""The second-order oracle: ``check_hvp(hvp_fn)`` and ``check_gnvp(gnvp_fn)`` draw networks and a
direction V, and compare ``fn(spec, params, X, Y, V)`` with the float64 references of
:mod:`torch_ref.second_order` (double backward; ``torch.func`` jvp and vjp), array by array.

**Tolerance model** (documented, not a full rounding analysis). A correct product is a sum of
products of the forward quantities, A', A'', the deltas, the loss's derivatives in y* and V, along
the paths of the R-passes. Each path's rounding error is at most a few units of ε per operation
times its size, so the whole is bounded by :math:`2 \varepsilon \kappa_2 M`, with

- :math:`M`: the R-passes run on absolute values (:func:`torch_ref.second_order.r_pass` with
  ``absolute=True``: every difference a sum, the general output formula, not the canonical
  shortcut, so that either form is covered), where each factor carries its own error with it:
  :math:`|\mathcal{A}'| + |\mathcal{A}''| s_I + T_1`, :math:`|\mathcal{A}''| + |\mathcal{A}'''| s_I + T_2`,
  :math:`|\delta| + M_\delta`, :math:`|H_L| + |\partial H_L / \partial y^*| s_O`, with
  :math:`s_I = |u||W| + |b|` (and :math:`s_O`) the magnitudes of the forward pass, :math:`T_1` the
  entry's ``derivative_terms`` (as in :mod:`torch_ref.tolerance`), :math:`T_2 =
  \max(|\mathcal{A}''|, 1)(1 + |I|)^2` where :math:`\mathcal{A}'' \ne 0` (0 where it is exactly 0:
  ReLU, identity), :math:`M_\delta` the first-order model's error magnitude of the deltas;
- :math:`\kappa_2 = \kappa (2L + 2)`: the first-order :math:`\kappa` (the longest sum plus 5) times
  the number of stages a path passes through (forward, forward R-pass, backward, backward R-pass,
  about 2L + 2 in all).

Where the loss gives a cancelled form for its output (:attr:`manual.Loss.r_cancelled`,
``gn_cancelled``) or the pair is canonical, the output's magnitude covers that form as well as the
general one, and that form alone where the general one's factors overflow (y* saturated).

Measured: the tests draw networks of every built-in activation and loss in both dtypes and find no
false alarm under this bound, and every catalogued mistake far above it; ``python
scripts/second_order_campaign.py --cases 2000`` (depths 1-5, widths 1-12, normal, grid and
saturated regimes) finds no finite result of ``manual.hvp``, ``manual.gnvp`` or torch's own products
in the case's dtype outside it (largest share used 0.03). Outside the model, counted apart there:
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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from hypothesis import given, reject
from hypothesis import seed as hypothesis_seed

import manual
from manual import Params, Spec
from manual._entry import MissingDerivativeError

from ._naming import caller_names
from ._oracle_options import parse_options
from ._oracle_report import _spec_code, fn_import
from ._result import normalise
from .compare import Comparison, compare
from .reference import reference
from .second_order import DROPPABLE, SecondOrderParts, gnvp_reference, hvp_reference, parts, r_pass
from .strategies import Case, cases
from .tolerance import tolerance

__all__ = ["SecondOrderSummary", "check_gnvp", "check_gnvp_case", "check_hvp", "check_hvp_case", "direction"]

_KIND = {"hvp": "Hessian-vector product HV", "gnvp": "Gauss-Newton product J^T H_L J V"}


@dataclass
class SecondOrderSummary:
    """What a passing check covered."""

    kind: str
    examples: int = 0
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
        )


def direction(case: Case) -> Params:
    """The direction V of a case: standard normal entries in the case's dtype, from a generator
    seeded by the case's seed (so a case and its V are reproduced together)."""
    rng = np.random.default_rng([case.seed, 2])
    dtype = case.X.dtype
    return case.params.map(lambda a: rng.standard_normal(np.shape(a)).astype(dtype))


# ------------------------------------------------------------------------------- the tolerance


def _magnitudes(p: SecondOrderParts, spec: Spec, params: Params, X: Any, Y: Any) -> SecondOrderParts:
    """The parts with each factor replaced by its size plus its own error (module docstring)."""
    W = [np.abs(np.asarray(w, dtype=np.float64)) for w in params.weights]
    b = None if params.biases is None else [np.abs(np.asarray(v, dtype=np.float64)) for v in params.biases]
    first = tolerance(spec, params, X, Y)
    m_delta = [d / (2 * first.eps * first.kappa) for d in first.deltas]
    s_u = np.abs(p.u[0])
    u, O, dA, d2A = [s_u], [], [], []
    for l, entry in enumerate(spec.activations):
        s_I = s_u @ W[l] + (0.0 if b is None else b[l])
        I_abs = np.abs(p.I[l])
        if entry.elementwise:
            a1, a2, a3 = (np.abs(np.asarray(q[l])) for q in (p.dA, p.d2A, p.d3A))
            if entry.exact:
                T1 = np.zeros_like(a1)
            elif entry.derivative_terms is not None:
                with np.errstate(all="ignore"):
                    T1 = np.abs(np.asarray(entry.derivative_terms(p.I[l], np), dtype=np.float64))
            else:
                T1 = np.maximum(a1, 1.0) * (1 + I_abs)
            T2 = np.where(p.d2A[l] == 0, 0.0, np.maximum(a2, 1.0) * (1 + I_abs) ** 2)
            dA.append(a1 + a2 * s_I + T1)
            d2A.append(a2 + a3 * s_I + T2)
            s_O = np.abs(p.O[l]) + a1 * s_I
        else:
            dA.append(None)
            d2A.append(None)
            s_O = np.abs(p.O[l]) * (1 + s_I + np.max(s_I, axis=-1, keepdims=True))
        O.append(s_O)
        s_u = s_O
        u.append(s_u)
    s_y = O[-1]
    H = np.abs(p.H) + np.abs(p.H) + np.einsum("njkm,nm->njk", np.abs(p.dH), s_y)
    g = np.abs(p.g) + np.abs(p.g) + np.einsum("njk,nk->nj", np.abs(p.H), s_y)
    delta = tuple(np.abs(d) + m for d, m in zip(p.delta, m_delta))
    return replace(
        p,
        u=tuple(u[:-1]),
        O=tuple(O),
        dA=tuple(dA),
        d2A=tuple(d2A),
        delta=delta,
        g=g,
        H=H,
    )


def bounds(spec: Spec, params: Params, X: Any, Y: Any, V: Params, p: SecondOrderParts, kind: str) -> list[np.ndarray]:
    """The allowed difference per entry of every array (``2 eps kappa_2 M``, module docstring)."""
    eps = float(np.finfo(np.asarray(X).dtype).eps)
    kappa = max(*spec.sizes, np.shape(X)[0]) + 5
    kappa2 = kappa * (2 * spec.depth + 2)
    M = r_pass(_magnitudes(p, spec, params, X, Y), V.map(np.abs), absolute=True, gauss_newton=kind == "gnvp")
    tiny = float(np.finfo(np.asarray(X).dtype).tiny)
    return [2 * eps * kappa2 * m + kappa2 * tiny for _, m in M.arrays()]


# ------------------------------------------------------------------------------- one case


@dataclass(frozen=True)
class _Outcome:
    case: Case
    V: Params
    comparison: Comparison
    got: list[np.ndarray] = field(default_factory=list)
    want: list[np.ndarray] = field(default_factory=list)
    allowed: list[np.ndarray] = field(default_factory=list)
    problem: str = ""  # fn raised or returned something else
    parts: SecondOrderParts | None = None
    unjudged: bool = False  # the float64 reference or its bound overflowed


def _judge(fn: Callable, case: Case, kind: str) -> _Outcome:
    V = direction(case)
    spec = case.spec
    p = parts(spec, case.params, case.X, case.Y)
    ref = hvp_reference if kind == "hvp" else gnvp_reference
    want_p = ref(spec, case.params, case.X, case.Y, V)
    names = [n for n, _ in want_p.arrays()]
    want = [a for _, a in want_p.arrays()]
    allowed = bounds(spec, case.params, case.X, case.Y, V, p, kind)
    if not all(np.all(np.isfinite(a)) for a in want + allowed):
        # y* so saturated that the loss's second derivative in y* is no float64 number: nothing to
        # judge against (scripts/second_order_campaign.py counts such cases)
        return _Outcome(case, V, compare([], [], [], []), parts=p, unjudged=True)
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


def _within(got: list[np.ndarray], values: list[np.ndarray], allowed: list[np.ndarray]) -> bool:
    return all(np.all(np.abs(g - v) <= t) for g, v, t in zip(got, values, allowed))


def _candidates(outcome: _Outcome, kind: str) -> list[tuple[str, list[np.ndarray]]]:
    case, V, want = outcome.case, outcome.V, outcome.want
    spec = case.spec
    N = case.X.shape[0]
    p = outcome.parts or parts(spec, case.params, case.X, case.Y)
    out: list[tuple[str, list[np.ndarray]]] = []

    def arrays(P: Params) -> list[np.ndarray]:
        return [a for _, a in P.arrays()]

    if kind == "hvp":
        gn = gnvp_reference(spec, case.params, case.X, case.Y, V)
        out.append(("the Gauss-Newton product J^T H_L J V passed off as the Hessian's", arrays(gn)))
        for key, words in DROPPABLE.items():
            out.append((f"the Hessian's product without {words}", arrays(r_pass(p, V, drop=frozenset({key})))))
        flipped = replace(p, d2A=tuple(None if a is None else -a for a in p.d2A))
        out.append(("the Hessian's product with every A'' of the opposite sign", arrays(r_pass(flipped, V))))
        if not spec.activations[-1].elementwise:
            out.append(
                (
                    "the Hessian's product with softmax's Jacobian taken as its diagonal y*(1 - y*)",
                    arrays(r_pass(p, V, softmax_diagonal=True)),
                )
            )
        if not spec.canonical:
            out.append(
                (
                    "the canonical shortcut R{delta^(L)} = R{y*} taken for a pair that is not canonical "
                    f"({spec.activations[-1].name}+{spec.loss.name})",
                    arrays(r_pass(p, V, canonical=True)),
                )
            )
    else:
        hv = hvp_reference(spec, case.params, case.X, case.Y, V)
        out.append(("the Hessian's product HV passed off as the Gauss-Newton product", arrays(hv)))
        identity = np.broadcast_to(np.eye(p.H.shape[1]), p.H.shape).copy()
        out.append(
            (
                "J^T J V: the loss's second derivative H_L taken as the identity",
                arrays(r_pass(replace(p, H=identity), V, gauss_newton=True)),
            )
        )
    for factor, words in ((2.0, "2"), (0.5, "1/2"), (-1.0, "-1")):
        out.append((f"the right product times {words}", [factor * a for a in want]))
    if spec.reduction == "mean" and N > 1:
        out.append((f"the right product times N = {N} (the mean's 1/N left out)", [N * a for a in want]))
        out.append((f"the right product divided by N = {N} once more", [a / N for a in want]))
    return out


def _entries(outcome: _Outcome) -> list[str]:
    """Your own entries' derivatives (A', A'', the loss's hessian) against autograd of their own
    forward and value, at this case's points."""
    case = outcome.case
    spec = case.spec
    p = outcome.parts or parts(spec, case.params, case.X, case.Y)
    eps = float(np.finfo(case.X.dtype).eps)
    out = []
    for l, entry in enumerate(spec.activations):
        if not entry.elementwise or manual.ACTIVATIONS.get(entry.name) is entry:
            continue
        I64 = p.I[l]
        I = I64.astype(case.X.dtype)
        O = entry.forward(I, np)
        a1, a2, a3 = (np.abs(np.asarray(q[l])) for q in (p.dA, p.d2A, p.d3A))
        # each derivative's evaluation allowance (T1, T2 of the module docstring), and the rounding of
        # I to the case's dtype carried by the next derivative
        checks = [
            (
                "derivative",
                "A'",
                entry.prime(I, O, np),
                p.dA[l],
                np.maximum(a1, 1.0) * (1 + np.abs(I64)) + a2 * np.abs(I64),
            )
        ]
        if entry.second_derivative is not None:
            checks.append(
                (
                    "second_derivative",
                    "A''",
                    entry.second(I, O, np),
                    p.d2A[l],
                    np.maximum(a2, 1.0) * (1 + np.abs(I64)) ** 2 + a3 * np.abs(I64),
                )
            )
        for field_name, symbol, got_raw, want_raw, terms in checks:
            got, want = np.asarray(got_raw, dtype=np.float64), np.asarray(want_raw)
            bad = np.abs(got - want) > 8 * eps * terms
            if bad.any():
                k = tuple(np.argwhere(bad)[0])
                out.append(
                    f"layer {l + 1}'s activation {entry.name!r} (your entry) has a {field_name} that disagrees with "
                    f"autograd of its own forward at {int(bad.sum())} of {bad.size} inputs, e.g. I = {I64[k]:.10g}: "
                    f"{field_name} = {got[k]:.10g}, autograd {symbol} = {want[k]:.10g}"
                )
    loss = spec.loss
    own_loss = manual.LOSSES.get(loss.name) is not loss
    if own_loss:
        O = p.O[-1].astype(case.X.dtype)
        got = np.asarray(loss.gradient(O, case.Y, np), dtype=np.float64)
        terms = np.abs(p.g) + np.einsum("njk,nk->nj", np.abs(p.H), np.abs(p.O[-1])) + 1.0
        bad = np.abs(got - p.g) > 8 * eps * O.shape[1] * terms
        if bad.any():
            k = tuple(np.argwhere(bad)[0])
            out.append(
                f"the loss {loss.name!r} (your entry) has a gradient that disagrees with autograd of its own value "
                f"at {int(bad.sum())} of {bad.size} entries, e.g. y* = {p.O[-1][k]:.10g}: gradient = {got[k]:.10g}, "
                f"autograd = {p.g[k]:.10g}"
            )
    if loss.hessian is not None and own_loss:
        O = p.O[-1].astype(case.X.dtype)
        J = O.shape[1]
        got = np.stack(
            [
                np.asarray(
                    loss.hessian(O, case.Y, np.eye(J, dtype=O.dtype)[j][None, :].repeat(O.shape[0], 0), np),
                    dtype=np.float64,
                )
                for j in range(J)
            ],
            axis=-1,
        )
        want = p.H
        allowed = 8 * eps * J * (np.abs(want) + np.abs(p.dH).sum(axis=-1) * np.abs(p.O[-1])[:, None, :] + 1.0)
        bad = np.abs(got - want) > allowed
        if bad.any():
            k = tuple(np.argwhere(bad)[0])
            out.append(
                f"the loss {loss.name!r} (your entry) has a hessian that disagrees with autograd of its own value "
                f"at {int(bad.sum())} of {bad.size} entries, e.g. y* = {p.O[-1][k[0], k[1]]:.10g}: "
                f"hessian = {got[k]:.10g}, autograd = {want[k]:.10g}"
            )
    return out


def _diagnose(outcome: _Outcome, kind: str) -> str:
    entries = _entries(outcome)
    if entries:
        return "Diagnosis: " + "; ".join(entries)
    fits = [
        words
        for words, values in _candidates(outcome, kind)
        if len(values) == len(outcome.want)
        and _within(outcome.got, values, outcome.allowed)
        and not _within(values, outcome.want, outcome.allowed)
    ]
    if not fits:
        return "Diagnosis: no known second-order mistake fits"
    return "Diagnosis: the result equals, within the bound, " + "; and also ".join(fits) + "."


def _layers(outcome: _Outcome) -> str:
    L = outcome.case.spec.depth
    bad = sorted({int(row.name[1:]) for row in outcome.comparison.rows if not row.ok})
    if not bad:
        return ""
    return (
        f"Layers whose blocks differ: {bad} of {L}; of these the backward R-pass reaches layer {bad[-1]}"
        + (" (the output layer)" if bad[-1] == L else "")
        + " first."
    )


def _blame(outcome: _Outcome) -> str:
    """Central differences of autograd's float64 gradient along V at the worst entry, with h and
    h/2 (their difference is the estimate's error)."""
    case, V = outcome.case, outcome.V
    rows = outcome.comparison.rows
    worst = max((r for r in rows if not r.ok), key=lambda r: r.share)
    k = [r.name for r in rows].index(worst.name)
    at = tuple(worst.worst)
    p64 = case.params.map(lambda a: np.asarray(a, dtype=np.float64))
    V64 = V.map(lambda a: np.asarray(a, dtype=np.float64))
    scale = max(float(np.max(np.abs(a))) for _, a in p64.arrays()) or 1.0
    norm = max(float(np.max(np.abs(a))) for _, a in V64.arrays()) or 1.0

    def diff(h: float) -> float:
        plus = reference(case.spec, _axpy(p64, V64, h), case.X, case.Y, derivatives=False).grads
        minus = reference(case.spec, _axpy(p64, V64, -h), case.X, case.Y, derivatives=False).grads
        a = [x for _, x in plus.arrays()][k]
        b = [x for _, x in minus.arrays()][k]
        return float((a[at] - b[at]) / (2 * h))

    h = 1e-4 * scale / norm
    d1, d2 = diff(h), diff(h / 2)
    err = abs(d1 - d2) + 1e-12 * (abs(d2) + 1)
    got, want = float(outcome.got[k][at]), float(outcome.want[k][at])
    where = f"{worst.name}[{', '.join(str(i) for i in at)}]"
    if abs(d2 - want) <= 10 * err and abs(d2 - got) > 10 * err:
        verdict = "autograd is right"
    elif abs(d2 - got) <= 10 * err and abs(d2 - want) > 10 * err:
        verdict = "the derivation is right and the reference is not: please report this"
    else:
        verdict = "inconclusive at this step size"
    return (
        f"Blame: finite differences of autograd's gradient along V in float64 at {where}: {d2:.10g} "
        f"(+- {err:.1g}); derivation {got:.10g}, autograd {want:.10g}: {verdict}"
    )


def _axpy(p: Params, V: Params, h: float) -> Params:
    W = [a + h * v for a, v in zip(p.weights, V.weights)]
    b = None if p.biases is None else [a + h * v for a, v in zip(p.biases, V.biases or [])]
    return Params(W, b)


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
        f"gain={case.gain}, lr={case.lr}, dtype=np.{dtype}" + (", kink=True" if case.kink else "") + ")",
        f"    print(torch_ref.check_{kind}_case({name}, case))",
    ]
    return "\n".join(line for line in head if line)


# ------------------------------------------------------------------------------- the checks


def _check(fn: Any, kind: str, **options: Any) -> SecondOrderSummary:
    from .oracle import DerivationMismatch, oracle_settings

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
        if outcome.unjudged:
            reject()
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
    return summary


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
    diagnosis and finite-difference blame; returns what was covered. The options are those of
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
        return f"not judged: the float64 reference of the {_KIND[kind]} or its bound overflowed on this case"
    if outcome.problem or not outcome.comparison.ok:
        return _report(fn, outcome, kind)
    return f"{kind}_fn agrees with torch's {_KIND[kind]} on this case (largest share of the tolerance used {outcome.comparison.worst_share:.3g})"
