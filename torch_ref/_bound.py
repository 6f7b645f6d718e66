r"""Values that carry a bound on their error: the arithmetic of the training trajectory's tolerance.

A :class:`Bound` holds a float64 array ``val`` (the reference's value) and ``err`` (an entrywise bound
on how far a correct computation in a coarser dtype may be from it). Every operation propagates the
bound exactly for its worst case, then adds the rounding of its own result in the computing dtype
(``unit`` times the result's magnitude):

.. math::
    e_{a \pm b} &= e_a + e_b, \qquad e_{ca} = |c|\,e_a, \qquad
    e_{ab} = |a|\,e_b + |b|\,e_a + e_a e_b \\
    e_{a/b} &= \frac{e_a + |a/b|\,e_b}{|b| - e_b} \quad (\infty \text{ where } e_b \ge |b|) \\
    e_{\sqrt a} &= \frac{e_a}{\sqrt a + \sqrt{\max(a - e_a, 0)}} \ \le \sqrt{e_a}

An update rule written once over plain arrays (:mod:`torch_ref._rules`) runs on Bounds unchanged and
yields both the reference's next weights and how far a correct run may be from them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Bound"]


class Bound:
    """A float64 array with an entrywise error bound, rounding at ``unit`` per operation."""

    __slots__ = ("err", "unit", "val")

    def __init__(self, val: Any, err: Any, unit: float) -> None:
        self.val = np.asarray(val, dtype=np.float64)
        self.err = np.broadcast_to(np.asarray(err, dtype=np.float64), self.val.shape).copy()
        self.unit = unit

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
        with np.errstate(divide="ignore", invalid="ignore"):
            q = self.val / v
            margin = np.abs(v) - e
            err = np.where(margin > 0, (self.err + np.abs(q) * e) / np.where(margin > 0, margin, 1.0), np.inf)
        return self._make(q, err)

    def sqrt(self) -> Bound:
        root = np.sqrt(self.val)
        low = np.sqrt(np.maximum(self.val - self.err, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.where(self.err > 0, np.minimum(self.err / (root + low), np.sqrt(self.err)), 0.0)
        return self._make(root, err)
