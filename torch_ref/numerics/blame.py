r"""Central finite differences of the exact objective at one parameter entry: which side they support.

The objective differentiated is :func:`torch_ref.twin.reference.exact_objective` (stable, no bce floor,
no log clamp), evaluated by torch in the dtype asked for, so the estimate is neither bent by torch's
conventions nor by the code under test. Its error is estimated from two step sizes (truncation)
plus the rounding of the objective, :math:`10\,\kappa\,\varepsilon\,\max(|f|, 1) / h` with
:math:`\kappa` the longest sum of the network; "cannot tell apart" means both values lie within
that error of the estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from manual import Params, Spec

from ..twin.reference import objective_in

__all__ = ["Estimate", "blame", "finite_difference"]


@dataclass(frozen=True)
class Estimate:
    """A finite-difference derivative ``value`` with its error bound ``error``, in ``dtype``."""

    where: str
    value: float
    error: float
    dtype: str

    def supports(self, x: float) -> bool:
        return abs(x - self.value) <= self.error


def finite_difference(
    spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, name: str, index: tuple[int, ...], dtype: Any = np.float64
) -> Estimate:
    """d(objective)/d(params[name][index]) by central differences in ``dtype`` (float64 arrays in)."""
    dtype = np.dtype(dtype)
    eps = float(np.finfo(dtype).eps)
    arrays = {k: np.array(v, dtype=np.float64) for k, v in params.arrays()}
    theta = float(arrays[name][index])
    h = eps ** (1 / 3) * max(1.0, abs(theta))
    kappa = max(max(spec.sizes), X.shape[0]) + 5

    def f(shift: float) -> tuple[float, float]:
        moved = {k: v.copy() for k, v in arrays.items()}
        at = float(np.asarray(theta + shift, dtype=dtype))  # the point the dtype can hold
        moved[name][index] = at
        W = [moved[f"W{l}"] for l in range(1, spec.depth + 1)]
        b = [moved[f"b{l}"] for l in range(1, spec.depth + 1)] if spec.bias else None
        return at, objective_in(spec, Params(W, b), X, Y, dtype)

    def central(step: float) -> float:
        (a, fa), (b, fb) = f(step), f(-step)
        return (fa - fb) / (a - b)

    fd, fd2 = central(h), central(2 * h)
    f0 = f(0.0)[1]
    error = 2 * abs(fd - fd2) + 10 * kappa * eps * max(abs(f0), 1.0) / h
    where = f"{name}[{', '.join(map(str, index))}]"
    return Estimate(where, fd, error, dtype.name)


def blame(estimate: Estimate, derived: float, reference: float, *, kink_possible: bool = False) -> str:
    """One sentence: the estimate, both values (to 10 digits), and which of them it supports."""
    d_ok, r_ok = estimate.supports(derived), estimate.supports(reference)
    if r_ok and not d_ok:
        verdict = "autograd is right"
    elif d_ok and not r_ok:
        verdict = "the derivation is right (autograd disagrees: check the reference's conventions)"
    else:
        verdict = "inconclusive (finite differences cannot separate them" + (
            "; a kink may lie here)" if kink_possible else " here)"
        )
    return (
        f"finite differences in {estimate.dtype} at {estimate.where}: {estimate.value + 0.0:.10g} "
        f"(+- {estimate.error:.1g}); derivation {derived + 0.0:.10g}, autograd {reference + 0.0:.10g}: {verdict}"
    )
