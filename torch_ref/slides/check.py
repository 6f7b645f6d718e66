r"""Checking each catalogued formula three ways, and the record the report is made of.

Numeric checks (float64): a formula holds at a point when every entry satisfies

.. math::
    |\text{as written} - \text{reference}| \le 2\varepsilon\,(C + c)\,(|\text{as written}| +
    |\text{reference}| + M)

with :math:`\varepsilon` the float64 epsilon, :math:`C = 64` a bound on the floating-point
operations of a transcription and of the reference's own computation of the same quantity on these
networks of at most 4 units a layer, :math:`c = 1 / (y^*(1 - y^*))` the amplification of the
divisions by :math:`y^*` and :math:`1 - y^*` that several lines write, and M the error magnitude
of the gradient the line computes (from :mod:`torch_ref.numerics.tolerance`; 0 for values that are not
gradients). A wrong formula is off by a term of the size of the gradient itself.

Symbolic check: sympy evaluates the same transcription on symbols, and each entry of
``as written - sympy's own result`` must simplify to 0. A quick evaluation at a random point to 30
digits rejects a non-identity first; ``cancel(together(...))`` proves most identities, and only
what it leaves goes to ``simplify``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .catalog import FORMULAS, Formula
from .points import Point, draw_point
from .quantities import autograd_quantities, manual_quantities, sympy_quantities

__all__ = ["C", "Outcome", "check_all", "check_formula", "holds", "symbolic_identity"]

C = 64
_EPS = float(np.finfo(np.float64).eps)


@dataclass
class Outcome:
    """The checks of one formula over a set of points."""

    formula: Formula
    matches_autograd: bool = True
    matches_manual: bool | None = True
    symbolic: bool | None = None
    largest_difference: float = 0.0  # max |as written - autograd| over points and entries
    largest_share: float = 0.0  # of the tolerance, against autograd
    evidence: tuple[float, float] | None = None  # (as written, autograd) at the worst entry of the worst failing point
    corrected_matches_autograd: bool | None = None
    corrected_largest_difference: float | None = None
    corrected_symbolic: bool | None = None
    points: int = 0
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        f = self.formula
        return {
            "slide": f.slide,
            "formula": f.formula,
            "function": f"manual.slides.{f.name}",
            "network": f.net,
            "matches_autograd": self.matches_autograd,
            "matches_manual": self.matches_manual,
            "symbolic": self.symbolic,
            "largest_difference": self.largest_difference,
            "largest_share_of_tolerance": self.largest_share,
            "as_written_value": None if self.evidence is None else self.evidence[0],
            "autograd_value": None if self.evidence is None else self.evidence[1],
            "corrected": f.corrected,
            "why": f.why,
            "corrected_matches_autograd": self.corrected_matches_autograd,
            "corrected_largest_difference": self.corrected_largest_difference,
            "corrected_symbolic": self.corrected_symbolic,
            "points": self.points,
        }


def holds(evaluate: Callable[[dict], tuple], q: dict) -> tuple[bool, float, float, tuple[float, float]]:
    """(every entry within tolerance, largest difference, largest share, (value, reference) where the
    difference is largest)."""
    value, target, magnitude = (np.asarray(a, dtype=np.float64) for a in evaluate(q))
    y_star = float(q["y_star"])
    c = 1.0 / (y_star * (1.0 - y_star))
    diff = np.abs(value - target)
    allowed = 2 * _EPS * (C + c) * (np.abs(value) + np.abs(target) + magnitude)
    share = np.where(diff == 0, 0.0, diff / np.where(allowed > 0, allowed, np.inf))
    k = int(np.argmax(diff)) if diff.size else 0
    return (
        bool(np.all(share <= 1)),
        float(diff.max(initial=0.0)),
        float(share.max(initial=0.0)),
        (float(value.flat[k]), float(target.flat[k])),
    )


def symbolic_identity(evaluate: Callable[[dict], tuple], net: str) -> bool:
    """True when every entry of ``as written - sympy's result`` simplifies to 0."""
    import mpmath
    import sympy as sp

    value, target, _ = evaluate(sympy_quantities(net))
    rng = np.random.default_rng(0)
    for v, t in zip(np.ravel(value), np.ravel(target)):
        d = sp.sympify(v - t)
        if d == 0:
            continue
        free = sorted(d.free_symbols, key=str)
        at = {s: sp.Rational(int(rng.integers(-150, 150)), 100) for s in free}
        at.update({s: sp.Rational(int(rng.integers(5, 95)), 100) for s in free if str(s) in ("y", "xi")})
        # the numeric screen, at 30 digits: mpmath on the compiled expression (sympy's evalf of a
        # large sum, with its adaptive precision, is several times slower for the same answer)
        with mpmath.workdps(30):
            value_at = sp.lambdify(free, d, "mpmath")(*(mpmath.mpf(at[s].p) / at[s].q for s in free))
        if abs(value_at) > 1e-20:
            return False
        d = d.rewrite(sp.exp)
        # a rational function of the exp atoms that cancels to 0 is an identity (fast); only what
        # does not cancel that way goes to simplify, which knows more rules (and takes 40x longer)
        if sp.cancel(sp.together(d)) != 0 and sp.simplify(d) != 0:
            return False
    return True


def check_formula(
    formula: Formula,
    points: list[Point],
    *,
    symbolic: bool = True,
    quantities: list[tuple[dict, dict]] | None = None,
) -> Outcome:
    """Check ``formula`` on ``points`` against autograd and the general manual implementation, and,
    where it applies and ``symbolic`` is true, with sympy; likewise its correction if it has one.
    ``quantities``: the points' ``(autograd_quantities, manual_quantities)``, when the caller shares
    them between formulas (they are only read)."""
    out = Outcome(formula, points=len(points))
    manual_applies = True
    worst_failing = -1.0
    if quantities is None:
        quantities = [(autograd_quantities(p), manual_quantities(p)) for p in points]
    for qa, qm in quantities:
        ok, diff, share, evidence = holds(formula.evaluate, qa)
        if not ok and diff > worst_failing:
            # the evidence shown is the failing point where the formula is furthest off, the one
            # whose difference the report prints as the largest, not merely the last one checked
            worst_failing, out.evidence = diff, evidence
        out.matches_autograd &= ok
        out.largest_difference = max(out.largest_difference, diff)
        out.largest_share = max(out.largest_share, share)
        try:
            ok_m = holds(formula.evaluate, qm)[0]
            out.matches_manual = bool(out.matches_manual) and ok_m
        except KeyError:  # a line that only autograd can evaluate (the derivative of the expression)
            manual_applies = False
        if formula.evaluate_corrected is not None:
            ok_c, diff_c, _, _ = holds(formula.evaluate_corrected, qa)
            out.corrected_matches_autograd = (
                ok_c if out.corrected_matches_autograd is None else out.corrected_matches_autograd and ok_c
            )
            out.corrected_largest_difference = max(out.corrected_largest_difference or 0.0, diff_c)
    if not manual_applies:
        out.matches_manual = None
    if out.matches_autograd:
        out.evidence = None
    if symbolic and formula.symbolic:
        out.symbolic = symbolic_identity(formula.evaluate, formula.net)
        if formula.evaluate_corrected is not None:
            out.corrected_symbolic = symbolic_identity(formula.evaluate_corrected, formula.net)
    return out


def check_all(*, points: int = 20, seed: int = 0, symbolic: bool = True) -> list[Outcome]:
    """Every catalogued formula on ``points`` random points per network (one Generator, ``seed``)."""
    rng = np.random.default_rng(seed)
    nets = sorted({f.net for f in FORMULAS})
    drawn = {net: [draw_point(net, rng) for _ in range(points)] for net in nets}
    # each point's quantities once, shared by every formula of its network
    shared = {net: [(autograd_quantities(p), manual_quantities(p)) for p in drawn[net]] for net in nets}
    return [check_formula(f, drawn[f.net], symbolic=symbolic, quantities=shared[f.net]) for f in FORMULAS]
