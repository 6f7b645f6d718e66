r"""Values that carry a bound on their error: the arithmetic of the training trajectory's tolerance.

A :class:`Bound` holds a float64 array ``val`` (the reference's value) and ``err`` (an entrywise bound
on how far a correct computation in a coarser dtype may be from it). Every operation propagates the
bound exactly for its worst case, then adds the rounding of its own result in the computing dtype
(``unit`` times the result's magnitude):

.. math::
    e_{a \pm b} &= e_a + e_b, \qquad e_{ca} = |c|\,e_a, \qquad
    e_{ab} = |a|\,e_b + |b|\,e_a + e_a e_b \\
    e_{a/b} &= \frac{e_a + |a/b|\,e_b}{\max(|b| - e_b,\ \ell_b)} \quad (\infty \text{ where that is } \le 0) \\
    e_{\sqrt a} &= \frac{e_a}{\sqrt a + \sqrt{\max(a - e_a, 0)}} \ \le \sqrt{e_a}

Two facts about a rule, not about its inputs' errors, narrow the bound where the arithmetic above
cannot (issue 21: Adam's divisor :math:`\sqrt{\hat v} + \epsilon` has an error larger than itself as
soon as the gradient's tolerance exceeds :math:`\epsilon`, and the quotient's bound was infinite):

- :meth:`Bound.at_least`: every correct computation of a positive quantity is at least
  :math:`\ell` (:math:`\sqrt{\hat v} + \epsilon \ge \epsilon`, whatever :math:`\hat v`'s error); a
  division by it then uses :math:`\max(|b| - e_b, \ell)`, the divisor's guaranteed lower bound. The
  quotient's bound is the exact one over the intervals (the worst end of
  :math:`[a - e_a, a + e_a] / [\max(b - e_b, \ell), b + e_b]`).
- :meth:`Bound.within`: every correct computation lies in :math:`[-R, R]` (Adam's
  :math:`|m| \le \rho \sqrt v`, Cauchy-Schwarz over the moments' weights); the error is then at most
  :math:`R + |a|` whatever the arithmetic gives.

An error that is still infinite (or NaN) is *no bound*: :mod:`torch_ref.training.trajectory` leaves such an
entry not judged and never counts it as a pass.

An update rule written once over plain arrays (:mod:`torch_ref.training.rules`) runs on Bounds unchanged and
yields both the reference's next weights and how far a correct run may be from them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Bound"]


class Bound:
    """A float64 array with an entrywise error bound, rounding at ``unit`` per operation."""

    __slots__ = ("err", "lo", "unit", "val")

    def __init__(self, val: Any, err: Any, unit: float, lo: float = 0.0) -> None:
        self.val = np.asarray(val, dtype=np.float64)
        self.err = np.broadcast_to(np.asarray(err, dtype=np.float64), self.val.shape).copy()
        self.unit = unit
        self.lo = lo  # every correct computation of this (positive) quantity is >= lo; 0: not known

    def at_least(self, lo: float) -> Bound:
        """The same value, known to be at least ``lo > 0`` in every correct computation: ``lo`` as the
        computing dtype holds it and after one rounding, ``lo (1 - 2 unit)``."""
        if not lo > 0 or not np.all(self.val > 0):
            raise ValueError(f"at_least needs lo > 0 and a positive value, got lo={lo!r}")
        return Bound(self.val, self.err, self.unit, lo * (1 - 2 * self.unit))

    def within(self, R: float) -> Bound:
        """The same value, known to lie in ``[-R, R]`` in every correct computation: the error is at
        most ``R + |val|``. ``R`` as given is the exact-arithmetic bound; the caller widens it for
        rounding."""
        if not R >= 0:
            raise ValueError(f"within needs R >= 0, got R={R!r}")
        return Bound(self.val, np.minimum(self.err, R + np.abs(self.val)), self.unit)

    def _make(self, val: np.ndarray, err: np.ndarray) -> Bound:
        with np.errstate(invalid="ignore", over="ignore"):
            total = err + self.unit * np.abs(val)
        return Bound(val, np.where(np.isnan(total), np.inf, total), self.unit)  # inf * 0: unbounded

    def _parts(self, other: Any) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(other, Bound):
            return other.val, other.err
        return np.asarray(other, dtype=np.float64), np.zeros(())

    def __add__(self, other: Any) -> Bound:
        v, e = self._parts(other)
        return self._make(self.val + v, self.err + e)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Bound:
        v, e = self._parts(other)
        return self._make(self.val - v, self.err + e)

    def __rsub__(self, other: Any) -> Bound:
        v, e = self._parts(other)
        return self._make(v - self.val, self.err + e)

    def __neg__(self) -> Bound:
        return Bound(-self.val, self.err, self.unit)

    def __mul__(self, other: Any) -> Bound:
        v, e = self._parts(other)
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.abs(self.val) * e + np.abs(v) * self.err + self.err * e
        return self._make(self.val * v, err)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Bound:
        v, e = self._parts(other)
        lo = other.lo if isinstance(other, Bound) else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            q = self.val / v
            margin = np.maximum(np.abs(v) - e, lo)  # the divisor's guaranteed distance from 0
            err = np.where(margin > 0, (self.err + np.abs(q) * e) / np.where(margin > 0, margin, 1.0), np.inf)
        return self._make(q, err)

    def sqrt(self) -> Bound:
        root = np.sqrt(self.val)
        low = np.sqrt(np.maximum(self.val - self.err, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.where(self.err > 0, np.minimum(self.err / (root + low), np.sqrt(self.err)), 0.0)
        return self._make(root, err)
