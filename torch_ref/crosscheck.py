"""Manual against autograd for one case: gradients, deltas, input gradient, objective, one SGD step,
and K steps of training, each as a :class:`~torch_ref.compare.Comparison` with derived tolerances.

Every check runs the float64 reference (:func:`torch_ref.reference.reference`) once and reads the
expected values and the tolerance model from that one pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import manual
from manual import Params, Spec

from . import autograd
from ._convert import as_numpy64
from ._result import normalise
from .compare import Comparison, compare
from .reference import reference
from .tolerance import tolerance

__all__ = [
    "crosscheck_deltas",
    "crosscheck_gradients",
    "crosscheck_input",
    "crosscheck_objective",
    "crosscheck_training",
    "crosscheck_update",
]

_EPS64 = float(np.finfo(np.float64).eps)


def _as_params(spec: Spec, value: Any, what: str) -> Params:
    p, problem, _ = normalise(spec, value, what)
    if p is None:
        raise TypeError(problem)
    return p


def _params_compare(
    actual: Params, expected: Params, allowed: Params, title: str, conventions: tuple[str, ...] = ()
) -> Comparison:
    names = [n for n, _ in expected.arrays()]
    return compare(
        names,
        [a for _, a in actual.arrays()],
        [a for _, a in expected.arrays()],
        [a for _, a in allowed.arrays()],
        title=title,
        conventions=conventions,
    )


def crosscheck_gradients(spec: Spec, params: Params, X: Any, Y: Any, grads: Any = None) -> Comparison:
    """``grads`` (default: ``manual.gradients``; ``Params``, a ``(weights, biases)`` pair or a list of
    weight arrays) against autograd's gradients, one row per W and b."""
    grads = manual.gradients(spec, params, X, Y) if grads is None else _as_params(spec, grads, "grads")
    ref = reference(spec, params, X, Y)
    tol = tolerance(spec, params, X, Y, reference_pass=ref)
    return _params_compare(
        grads, ref.grads, tol.grads, f"gradients, {spec}, N={X.shape[0]}, {X.dtype}", tol.conventions
    )


def crosscheck_deltas(spec: Spec, params: Params, X: Any, Y: Any, *, simplified: bool | None = None) -> Comparison:
    """``manual.deltas`` against autograd's dObjective/dI^(l), one row per layer (``delta1`` ... ``deltaL``)."""
    ours = manual.deltas(spec, params, X, Y, simplified=simplified)
    ref = reference(spec, params, X, Y)
    tol = tolerance(spec, params, X, Y, general=simplified is False, reference_pass=ref)
    names = [f"delta{l}" for l in range(1, spec.depth + 1)]
    return compare(
        names,
        ours,
        ref.delta,
        tol.deltas,
        title=f"deltas, {spec}, N={X.shape[0]}, {X.dtype}",
        conventions=tol.conventions,
    )


def crosscheck_input(spec: Spec, params: Params, X: Any, Y: Any) -> Comparison:
    """``manual.input_gradient`` against autograd's dObjective/dX."""
    ref = reference(spec, params, X, Y)
    tol = tolerance(spec, params, X, Y, reference_pass=ref)
    return compare(
        ["dX"],
        [manual.input_gradient(spec, params, X, Y)],
        [ref.input],
        [tol.input],
        title=f"input gradient, {spec}, N={X.shape[0]}, {X.dtype}",
        conventions=tol.conventions,
    )


def crosscheck_objective(spec: Spec, params: Params, X: Any, Y: Any) -> Comparison:
    """``manual.objective`` against the value of torch's losses (``BCELoss``, ``CrossEntropyLoss``, ...)."""
    ref = reference(spec, params, X, Y)
    tol = tolerance(spec, params, X, Y, reference_pass=ref)
    return compare(
        ["objective"],
        [np.asarray(as_numpy64(manual.objective(spec, params, X, Y)))],
        [np.asarray(ref.objective)],
        [tol.objective],
        title=f"objective, {spec}, N={X.shape[0]}, {X.dtype}",
        conventions=tol.conventions,
    )


def crosscheck_update(spec: Spec, params: Params, X: Any, Y: Any, lr: float, updated: Any = None) -> Comparison:
    """``updated`` (default: ``manual.sgd_step``) against one ``torch.optim.SGD`` step."""
    updated = manual.sgd_step(spec, params, X, Y, lr) if updated is None else _as_params(spec, updated, "updated")
    ref = reference(spec, params, X, Y, lr=lr)
    tol = tolerance(spec, params, X, Y, lr=lr, reference_pass=ref)
    assert ref.updated is not None and tol.update is not None  # both computed when lr is given
    return _params_compare(
        updated, ref.updated, tol.update, f"one SGD step, lr={lr}, {spec}, {X.dtype}", tol.conventions
    )


def crosscheck_training(spec: Spec, params: Params, X: Any, Y: Any, lr: float, steps: int) -> Comparison:
    r"""The weights after ``steps`` full-batch steps of ``manual.sgd_step`` against ``torch.optim.SGD``.

    Both trajectories run in the dtype of ``X`` (a float64 reference trajectory would part from a
    float32 one by the rounding of every step's weights, which this bound does not follow).
    The two trajectories :math:`W_k` (manual) and :math:`V_k` (torch) part by rounding, and a gradient
    taken at slightly different weights differs by more than rounding. The allowance follows the
    difference step by step: with :math:`g` the manual gradient,

    .. math::
        |W_{k+1} - V_{k+1}| \le |W_k - V_k| + \xi\,|g(W_k) - g(V_k)| + \xi\, T_g(V_k) + T_u

    where :math:`|g(W_k) - g(V_k)|` is measured (both are manual's gradients), :math:`T_g(V_k)` is the
    gradient tolerance of torch's gradient at :math:`V_k` against manual's at the same point, and
    :math:`T_u` the rounding of the update itself. The allowance is itself computed in float64:
    four roundings per step and one in the compared difference, so it is widened by
    :math:`(4K + 1)\varepsilon_{64}` relative (where the trajectories diverge, the measured term makes
    the bound tight and its own rounding would otherwise decide). A wrong step (momentum, decay, a
    wrong factor) adds a difference that none of these terms explains.
    """
    W = params
    V = params
    allowed = [np.zeros(a.shape) for _, a in params.arrays()]  # W1, b1, W2, ... as in Params.arrays()
    for _ in range(steps):
        g_W = manual.gradients(spec, W, X, Y)
        g_V = manual.gradients(spec, V, X, Y)
        tol = tolerance(spec, V, X, Y, lr=lr)
        assert tol.update is not None  # computed when lr is given
        allowed = [
            t + lr * np.abs(as_numpy64(a) - as_numpy64(b)) + u
            for t, (_, a), (_, b), (_, u) in zip(allowed, g_W.arrays(), g_V.arrays(), tol.update.arrays())
        ]
        W = manual.sgd_step(spec, W, X, Y, lr)
        V = autograd.sgd_step(spec, V, X, Y, lr)
    allowed = [a * (1 + (4 * steps + 1) * _EPS64) for a in allowed]
    names = [n for n, _ in params.arrays()]
    return compare(
        names,
        [a for _, a in W.arrays()],
        [a for _, a in V.arrays()],
        allowed,
        title=f"{steps} SGD steps, lr={lr}, {spec}",
    )
