"""Manual against autograd for one case: gradients, deltas, input gradient, one SGD step, and K
steps of training, each as a :class:`~torch_ref.compare.Comparison` with derived tolerances."""

from __future__ import annotations

from typing import Any

import numpy as np

import manual
from manual import Params, Spec

from . import autograd
from ._convert import as_numpy64, params_as_numpy64
from .compare import Comparison, compare
from .tolerance import tolerance

__all__ = ["crosscheck_deltas", "crosscheck_gradients", "crosscheck_input", "crosscheck_training",
           "crosscheck_update"]


def _reference_inputs(params: Params, X: Any, Y: Any) -> tuple[Params, np.ndarray, np.ndarray]:
    """float64 NumPy copies: the reference always runs in float64 on the same values, so a float32
    computation is compared with (nearly) exact results under the float32 tolerance."""
    return params_as_numpy64(params), as_numpy64(X), as_numpy64(Y)


def _params_compare(actual: Params, expected: Params, allowed: Params, title: str,
                    conventions: tuple[str, ...] = ()) -> Comparison:
    names = [n for n, _ in expected.arrays()]
    if actual.biases is None and expected.biases is not None:
        # report the missing biases as a shape mismatch rather than failing in zip
        actual = Params(actual.weights, [np.zeros((0,))] * len(expected.biases))
    return compare(names, [a for _, a in actual.arrays()], [a for _, a in expected.arrays()],
                   [a for _, a in allowed.arrays()], title=title, conventions=conventions)


def crosscheck_gradients(spec: Spec, params: Params, X: Any, Y: Any, grads: Params | None = None) -> Comparison:
    """``grads`` (default: ``manual.gradients``) against ``torch_ref.gradients``, one row per W and b."""
    if grads is None:
        grads = manual.gradients(spec, params, X, Y)
    reference = autograd.gradients(spec, *_reference_inputs(params, X, Y))
    tol = tolerance(spec, params, X, Y)
    return _params_compare(grads, reference, tol.grads, f"gradients, {spec}, N={X.shape[0]}, {X.dtype}",
                           tol.conventions)


def crosscheck_deltas(spec: Spec, params: Params, X: Any, Y: Any, *, simplified: bool | None = None) -> Comparison:
    """``manual.deltas`` against autograd's dObjective/dI^(l), one row per layer (``delta1`` ... ``deltaL``)."""
    ours = manual.deltas(spec, params, X, Y, simplified=simplified)
    reference = autograd.deltas(spec, *_reference_inputs(params, X, Y))
    tol = tolerance(spec, params, X, Y, general=simplified is False)
    names = [f"delta{l}" for l in range(1, spec.depth + 1)]
    return compare(names, ours, reference, tol.deltas, title=f"deltas, {spec}, N={X.shape[0]}, {X.dtype}",
                   conventions=tol.conventions)


def crosscheck_input(spec: Spec, params: Params, X: Any, Y: Any) -> Comparison:
    """``manual.input_gradient`` against autograd's dObjective/dX."""
    tol = tolerance(spec, params, X, Y)
    return compare(["dX"], [manual.input_gradient(spec, params, X, Y)],
                   [autograd.input_gradient(spec, *_reference_inputs(params, X, Y))], [tol.input],
                   title=f"input gradient, {spec}, N={X.shape[0]}, {X.dtype}", conventions=tol.conventions)


def crosscheck_update(spec: Spec, params: Params, X: Any, Y: Any, lr: float,
                      updated: Params | None = None) -> Comparison:
    """``updated`` (default: ``manual.sgd_step``) against one ``torch.optim.SGD`` step."""
    if updated is None:
        updated = manual.sgd_step(spec, params, X, Y, lr)
    reference = autograd.sgd_step(spec, *_reference_inputs(params, X, Y), lr)
    tol = tolerance(spec, params, X, Y, lr=lr)
    return _params_compare(updated, reference, tol.update, f"one SGD step, lr={lr}, {spec}, {X.dtype}",
                           tol.conventions)


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
    :math:`T_u` the rounding of the update itself. A wrong step (momentum, decay, a wrong factor)
    adds a difference that none of these terms explains.
    """
    W = params
    V = params
    allowed = [np.zeros(a.shape) for _, a in params.arrays()]  # W1, b1, W2, ... as in Params.arrays()
    for _ in range(steps):
        g_W = manual.gradients(spec, W, X, Y)
        g_V = manual.gradients(spec, V, X, Y)
        tol = tolerance(spec, V, X, Y, lr=lr)
        allowed = [t + lr * np.abs(as_numpy64(a) - as_numpy64(b)) + u
                   for t, (_, a), (_, b), (_, u) in zip(allowed, g_W.arrays(), g_V.arrays(), tol.update.arrays())]
        W = manual.sgd_step(spec, W, X, Y, lr)
        V = autograd.sgd_step(spec, V, X, Y, lr)
    names = [n for n, _ in params.arrays()]
    return compare(names, [a for _, a in W.arrays()], [a for _, a in V.arrays()], allowed,
                   title=f"{steps} SGD steps, lr={lr}, {spec}")
