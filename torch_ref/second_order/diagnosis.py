"""What a second-order report says beyond the table: the layers whose blocks differ, a diagnosis
(your own entry's derivatives against autograd, then the known mistakes as candidate products, each
named only where it fits every array within the bound and differs from the right product), and
finite differences of autograd's gradient along V as blame.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

import manual
from manual import Params

from ..first_order.entry_check import entry_findings
from ..numerics.compare import Comparison
from ..strategies import Case
from ..twin.reference import reference
from .products import SecondOrderParts, gnvp_reference, hvp_reference, parts
from .r_pass import DROPPABLE, r_pass


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
    unjudged: str = ""  # why the case is not judged: the float64 reference or its bound not finite
    what: str = "hvp_fn"
    crashed: bool = False  # fn raised (problem says what)

    @property
    def kind(self) -> str:
        """The verdict: not judged, crash, type (not a product), shape, mismatch or agree."""
        if self.unjudged:
            return "not judged"
        if self.problem:
            return "crash" if self.crashed else "type"
        if self.comparison.ok:
            return "agree"
        return "shape" if any(r.note.startswith("shape") for r in self.comparison.rows) else "mismatch"

    @property
    def passed(self) -> bool:
        return self.kind == "agree"

    @property
    def detail(self) -> str:
        return self.unjudged or self.problem

    @property
    def checked(self) -> Comparison:
        return self.comparison


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
    """Your own entries' derivatives against autograd of their own forward and value at this case's
    points: A' and the loss's gradient as the first-order oracle checks them
    (:func:`torch_ref.first_order.entry_check.entry_findings`), A'' and the loss's hessian here."""
    case = outcome.case
    spec = case.spec
    p = outcome.parts or parts(spec, case.params, case.X, case.Y)
    eps = float(np.finfo(case.X.dtype).eps)
    out = entry_findings(reference(spec, case.params, case.X, case.Y))
    for l, entry in enumerate(spec.activations):
        if not entry.elementwise or entry.second_derivative is None or manual.ACTIVATIONS.get(entry.name) is entry:
            continue
        I64 = p.I[l]
        I = I64.astype(case.X.dtype)
        got = np.asarray(entry.second(I, entry.forward(I, np), np), dtype=np.float64)
        want = np.asarray(p.d2A[l])
        a2, a3 = np.abs(want), np.abs(np.asarray(p.d3A[l]))
        # the evaluation allowance T2 of torch_ref.second_order.check's docstring, and the rounding of I to the
        # case's dtype carried by the third derivative
        bad = np.abs(got - want) > 8 * eps * (np.maximum(a2, 1.0) * (1 + np.abs(I64)) ** 2 + a3 * np.abs(I64))
        if bad.any():
            k = tuple(np.argwhere(bad)[0])
            out.append(
                f"layer {l + 1}'s activation {entry.name!r} (your entry) has a second_derivative that disagrees "
                f"with autograd of its own forward at {int(bad.sum())} of {bad.size} inputs, e.g. I = {I64[k]:.10g}: "
                f"second_derivative = {got[k]:.10g}, autograd A'' = {want[k]:.10g}"
            )
    loss = spec.loss
    own_loss = manual.LOSSES.get(loss.name) is not loss
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
