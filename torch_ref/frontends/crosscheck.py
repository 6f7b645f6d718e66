"""Manual against autograd for one case: gradients, deltas, input gradient, objective, one SGD step,
and K steps of training, each as a :class:`~torch_ref.numerics.compare.Comparison` with derived tolerances.

Every check runs the float64 reference (:func:`torch_ref.twin.reference.reference`) once and reads the
expected values and the tolerance model from that one pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import manual
from manual import Params, Spec

from ..engine.result import normalise
from ..numerics.compare import Comparison, compare_either
from ..numerics.tolerance import EXACT_LABEL, TORCH_LABEL, Tolerance, references, tolerance
from ..twin import autograd
from ..twin.convert import as_numpy64
from ..twin.reference import Reference, reference
from ..twins import loss_twin

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


def _title(what: str, spec: Spec, X: Any) -> str:
    return f"{what}, {spec}, N={X.shape[0]}, {X.dtype}"


def _against(
    names: list[str],
    actual: list[Any],
    refs: list[tuple[str, list, list]],
    title: str,
    conventions: tuple[str, ...] = (),
) -> Comparison:
    """``actual`` against every right reference ``(label, expected, allowed)``: the comparison with the
    one it follows (:func:`torch_ref.numerics.compare.compare_either`; one reference is a plain compare)."""
    candidates = [(label, e, a, None) for label, e, a in refs]
    return compare_either(names, actual, candidates, title=title, conventions=conventions)


def _references(ref: Reference, tol: Tolerance, quantity: str) -> list[tuple[str, list, list]]:
    """The right references for ``quantity``: those of :func:`torch_ref.numerics.tolerance.references`,
    or for ``"objective"`` the value of torch's losses."""
    if quantity == "objective":
        return [("torch's values", [np.asarray(ref.objective)], [tol.objective])]
    return references(ref, tol, quantity)


def _crosscheck(
    spec: Spec,
    params: Params,
    X: Any,
    Y: Any,
    quantity: str,
    names: list[str],
    actual: list[Any],
    title: str,
    *,
    general: bool = False,
    lr: float | None = None,
) -> Comparison:
    """``actual`` (arrays named ``names``) against the float64 reference's ``quantity``, each right
    reference under its tolerance from that one pass, titled ``title``, the conventions in effect named."""
    ref = reference(spec, params, X, Y, lr=lr)
    tol = tolerance(spec, params, X, Y, general=general, lr=lr, reference_pass=ref)
    return _against(names, actual, _references(ref, tol, quantity), title, tol.conventions)


def _arrays(p: Params) -> tuple[list[str], list[Any]]:
    """Names and arrays in the order of ``Params.arrays()`` (W1, b1, W2, ...)."""
    return [n for n, _ in p.arrays()], [a for _, a in p.arrays()]


def crosscheck_gradients(spec: Spec, params: Params, X: Any, Y: Any, grads: Any = None) -> Comparison:
    """``grads`` (default: ``manual.gradients``; ``Params``, a ``(weights, biases)`` pair or a list of
    weight arrays) against autograd's gradients, one row per W and b."""
    grads = manual.gradients(spec, params, X, Y) if grads is None else _as_params(spec, grads, "grads")
    return _crosscheck(spec, params, X, Y, "gradients", *_arrays(grads), _title("gradients", spec, X))


def crosscheck_deltas(spec: Spec, params: Params, X: Any, Y: Any, *, simplified: bool | None = None) -> Comparison:
    """``manual.deltas`` against autograd's dObjective/dI^(l), one row per layer (``delta1`` ... ``deltaL``)."""
    ours = manual.deltas(spec, params, X, Y, simplified=simplified)
    names = [f"delta{l}" for l in range(1, spec.depth + 1)]
    title = _title("deltas", spec, X)
    return _crosscheck(spec, params, X, Y, "deltas", names, list(ours), title, general=simplified is False)


def crosscheck_input(spec: Spec, params: Params, X: Any, Y: Any) -> Comparison:
    """``manual.input_gradient`` against autograd's dObjective/dX."""
    ours = [manual.input_gradient(spec, params, X, Y)]
    return _crosscheck(spec, params, X, Y, "input", ["dX"], ours, _title("input gradient", spec, X))


def crosscheck_objective(spec: Spec, params: Params, X: Any, Y: Any) -> Comparison:
    """``manual.objective`` against the value of torch's losses (``BCELoss``, ``CrossEntropyLoss``, ...)."""
    ours = [np.asarray(as_numpy64(manual.objective(spec, params, X, Y)))]
    return _crosscheck(spec, params, X, Y, "objective", ["objective"], ours, _title("objective", spec, X))


def crosscheck_update(spec: Spec, params: Params, X: Any, Y: Any, lr: float, updated: Any = None) -> Comparison:
    """``updated`` (default: ``manual.sgd_step``) against one ``torch.optim.SGD`` step."""
    updated = manual.sgd_step(spec, params, X, Y, lr) if updated is None else _as_params(spec, updated, "updated")
    title = f"one SGD step, lr={lr}, {spec}, {X.dtype}"
    return _crosscheck(spec, params, X, Y, "update", *_arrays(updated), title, lr=lr)


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

    For a loss with a floor (bce: torch's ``BCELoss`` divides by max(y*(1 - y*), 1e-12), in X's dtype),
    the exact derivative is right as well (:mod:`torch_ref.numerics.tolerance`): a second trajectory
    :math:`V'_k` of SGD on the exact objective is run, with the exact reference's own bound, and
    manual's weights pass when they follow either trajectory as a whole
    (:func:`torch_ref.numerics.compare.compare_either`), nothing between or around them.
    """
    names = [n for n, _ in params.arrays()]
    W = params
    for _ in range(steps):
        if not _finite(W):
            break  # an overflowed trajectory: its non-finite weights are what is compared
        W = manual.sgd_step(spec, W, X, Y, lr)
    candidates = [_trajectory(spec, params, X, Y, lr, steps, exact=False)]
    if loss_twin(spec.loss).floor is not None:
        # torch's trajectory runs in X's dtype, where its floor may apply at outputs that the float64
        # reference does not floor (y* rounded to 1 in float32): the exact trajectory is run whenever
        # the loss has a floor, and each candidate keeps its own bound
        candidates.append(_trajectory(spec, params, X, Y, lr, steps, exact=True))
    refs = [(label, V, allowed) for label, V, allowed, _ in candidates]
    return _against(names, [a for _, a in W.arrays()], refs, f"{steps} SGD steps, lr={lr}, {spec}")


def _trajectory(spec: Spec, params: Params, X: Any, Y: Any, lr: float, steps: int, *, exact: bool):
    """``(label, V_K arrays, allowed arrays, [V_0, ..., V_{K-1}])`` for torch's SGD (on its own losses,
    or on the exact objective), manual's trajectory bound along it (see :func:`crosscheck_training`)."""
    W, V, visited = params, params, []
    allowed = [np.zeros(a.shape) for _, a in params.arrays()]  # W1, b1, W2, ... as in Params.arrays()
    for _ in range(steps):
        if not (_finite(W) and _finite(V)):
            break
        visited.append(V)
        g_W = manual.gradients(spec, W, X, Y)
        g_V = manual.gradients(spec, V, X, Y)
        tol = tolerance(spec, V, X, Y, lr=lr)
        update = (tol.for_exact if exact else tol).update
        assert update is not None  # computed when lr is given
        allowed = [
            t + lr * np.abs(as_numpy64(a) - as_numpy64(b)) + u
            for t, (_, a), (_, b), (_, u) in zip(allowed, g_W.arrays(), g_V.arrays(), update.arrays())
        ]
        W = manual.sgd_step(spec, W, X, Y, lr)
        V = autograd.sgd_step(spec, V, X, Y, lr, exact=exact)
    allowed = [a * (1 + (4 * steps + 1) * _EPS64) for a in allowed]
    label = EXACT_LABEL if exact else TORCH_LABEL
    return label, [a for _, a in V.arrays()], allowed, visited


def _finite(p: Params) -> bool:
    return all(bool(np.isfinite(as_numpy64(a)).all()) for _, a in p.arrays())
