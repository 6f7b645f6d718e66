r"""The tolerance model: how far two correct implementations may part, entry by entry.

Reasoning (first-order rounding analysis, Higham, *Accuracy and Stability of Numerical Algorithms*,
sec. 3.1): a sum of n products computed in floating point in any order is off by at most
:math:`\gamma_n \sum |a_i b_i|`, :math:`\gamma_n = n\varepsilon / (1 - n\varepsilon)`, and an
elementwise function (exp, log, tanh, a division) by a few units of :math:`\varepsilon` of its
result. So every quantity q of the forward and backward pass has an error of at most
:math:`\varepsilon \kappa \, M(q)`, where

- :math:`\kappa = \max(\text{widths}, N) + 1 + 4`: the longest sum (a row of I, a row of
  :math:`\delta W^T`, or the batch sum of :math:`u^T\delta`), one more for the bias, and 4 ulps for
  function evaluation; :math:`\varepsilon` is the dtype's machine epsilon;
- :math:`M(q)` is q's *error magnitude*, computed here by running the same recursion on absolute
  values (the :math:`\sum|a_i b_i|` of each sum) and adding how an error already present in an input
  is carried on (:math:`|\mathcal{A}'|` times the error of I, the error of y* times
  :math:`|\partial \delta / \partial y^*|`, and so on).

Two correct implementations each lie within that bound of the exact value, so they may differ by
``2 * eps * kappa * M`` per entry. This grows with depth (through the recursion), width and N
(through :math:`\kappa` and the sums), and the magnitude of the values (through M), and is 0 where
M is 0 (a ReLU whose input is below 0 gives an exact 0 both ways). Second-order terms
(:math:`\varepsilon^2`) are left out; the absolute floor ``kappa * tiny`` covers underflow.

One convention is not rounding: torch's ``BCELoss`` divides by :math:`\max(y^*(1-y^*), 10^{-12})`, so
for a sigmoid output that saturated that far its delta shrinks towards 0, while the shortcut
:math:`y^* - y` keeps the exact limit. There (:func:`_bce_saturation`) the whole of
:math:`|y^* - y|` is allowed and the case is named in ``conventions``.

One place is not smooth: a ReLU input within its rounding error of 0 may come out on either side of
the kink, so A' may be 0 in one implementation and 1 in the other. Such entries (:func:`_kink`) get
an allowance of the whole term that A' multiplies, carried on through the recursion.

A wrong derivation (a factor, a sign, a missing :math:`\mathcal{A}'`) moves a gradient by an amount
of the order of the gradient itself, orders of magnitude above this bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from manual import Params, Spec
from manual.activations import derivative
from manual.backward import _deltas
from manual.forward import _forward
from manual.losses import BCE_EPSILON

from ._convert import as_numpy64, params_as_numpy64

__all__ = ["Tolerance", "tolerance"]


@dataclass(frozen=True)
class Tolerance:
    """Allowed per-entry differences (absolute), each shaped like the quantity it bounds.

    Attributes:
        grads: for the gradients, in the layout of ``Params``.
        deltas: ``deltas[l-1]`` for :math:`\\delta^{(l)}`, shape ``(N, sizes[l])``.
        input: for dObjective/dX, shape ``(N, D)``.
        eps, kappa: the dtype's epsilon and the operation count used.
    """

    grads: Params
    deltas: tuple[np.ndarray, ...]
    input: np.ndarray
    eps: float
    kappa: int
    update: Params | None = None
    conventions: tuple[str, ...] = ()


def _dA_dO(name: str, O: np.ndarray) -> np.ndarray:
    """|d A'/d O| for the activations whose derivative is written through O (0 for relu, identity)."""
    if name == "sigmoid":
        return np.abs(1 - 2 * O)
    if name == "tanh":
        return np.abs(2 * O)
    return np.zeros_like(O)


def _exact_sums(u: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> bool:
    """True when ``u @ W + b`` is computed exactly in float32 and float64 in any order: every entry a
    multiple of 1/16 of size <= 16 (products are multiples of 1/256 below 256, and sums of up to 13
    of them stay below 2^24 / 256), as on the strategies' grid."""
    arrays = [u, W] + ([] if b is None else [b])
    if u.shape[1] > 12:
        return False
    return all(np.all(np.abs(a) <= 16) and np.all(a * 16 == np.round(a * 16)) for a in arrays)


def _bce_undetermined(spec: Spec, O: np.ndarray, e_O: np.ndarray, unit: float) -> np.ndarray:
    """1 where bce's y*(1 - y*) (general formula: softmax, or sigmoid without the shortcut) lies above
    torch's floor but within the rounding error bound of y* itself, else 0. In float64 such outputs
    are below the floor (both computations clamp alike); in float32 they are y* within about 1e-4
    of 0 or 1."""
    if spec.loss != "bce":
        return np.zeros_like(O)
    p = O * (1 - O)
    return ((p > 0.5 * BCE_EPSILON) & (p <= unit * e_O)).astype(np.float64)


def _bce_saturation(spec: Spec, O: np.ndarray) -> np.ndarray:
    """1 where a sigmoid output under bce has y*(1 - y*) below torch's floor 1e-12, else 0."""
    if spec.loss != "bce" or spec.activations[-1] != "sigmoid":
        return np.zeros_like(O)
    return (O * (1 - O) < BCE_EPSILON).astype(np.float64)


def _kink(name: str, I: np.ndarray, e_I: np.ndarray, unit: float) -> np.ndarray:
    """1 where a ReLU input lies within its own rounding error of 0, else 0.

    There the computed sign of I, and so A'(I) in {0, 1}, depends on the order of the sums: both
    answers are correct for the I each implementation computed, so such an entry is allowed to
    differ by the whole of what A' multiplies. An I that is exactly 0 in exact arithmetic (and
    computed exactly, as on the 1/4 grid of the strategies) gives 0 both ways and is checked exactly
    in the explicit tests.
    """
    if name != "relu":
        return np.zeros_like(I)
    # strict: an I computed without rounding (e_I = 0, see _exact_sums) is no ambiguity at all,
    # and there the subgradient 0 is checked exactly
    return (np.abs(I) < unit * e_I).astype(np.float64)


def _loss_terms(loss: str, O: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """g = dL/dy*, its absolute evaluation |g|_abs, and |dg/dy*|."""
    if loss == "squared":
        return O - Y, np.abs(O) + np.abs(Y), np.ones_like(O)
    if loss == "bce":
        p = np.maximum(O * (1 - O), BCE_EPSILON)  # the floor of manual.losses and torch's BCELoss
        return ((O - Y) / p, (np.abs(O) + np.abs(Y)) / p,
                (p + np.abs(O - Y) * np.abs(1 - 2 * O)) / p**2)
    return -Y / O, np.abs(Y) / O, np.abs(Y) / O**2


def _output_magnitude(spec: Spec, I: np.ndarray, O: np.ndarray, Y: np.ndarray, e_O: np.ndarray,
                      general: bool) -> np.ndarray:
    """M(delta^(L)): the evaluation of the delta formula on absolute values plus y*'s error carried on."""
    if spec.canonical and not general:
        return e_O + np.abs(O) + np.abs(Y)  # delta = y* - y
    act = spec.activations[-1]
    if (act, spec.loss) == ("sigmoid", "ce"):
        return np.abs(Y) * (1 + np.abs(O)) + np.abs(Y) * e_O  # delta = -y (1 - y*), y* cancelled
    g, g_abs, dg = _loss_terms(spec.loss, O, Y)
    if act == "softmax":
        s = np.sum(g * O, axis=-1, keepdims=True)
        s_abs = np.sum(g_abs * O, axis=-1, keepdims=True)
        carried = e_O * (np.abs(g) + np.abs(s)) + O * (dg * e_O + np.sum((dg * O + np.abs(g)) * e_O, axis=-1, keepdims=True))
        return O * (g_abs + s_abs) + carried
    dA = np.abs(derivative(act, I, O))
    return dA * g_abs + (dg * dA + np.abs(g) * _dA_dO(act, O)) * e_O


def tolerance(spec: Spec, params: Params, X: Any, Y: Any, *, dtype: Any = None, general: bool = False,
              lr: float | None = None) -> Tolerance:
    """The allowed differences between two correct computations of the gradients, deltas and input
    gradient of ``spec`` at ``params`` on ``(X, Y)``, in ``dtype`` (default: that of ``X``).

    Args:
        general: take the output delta's magnitude from the general formula
            :math:`\\partial L/\\partial y^* \\odot \\mathcal{A}'` even for a canonical pair (for
            comparing the two formulas with each other).
        lr: when given, also bound the weights after one SGD step (``update``): the gradient's
            allowance times lr, plus the rounding of ``W - lr * grad``.
    """
    dtype = np.dtype(str(dtype if dtype is not None else X.dtype).removeprefix("torch."))
    eps = float(np.finfo(dtype).eps)
    tiny = float(np.finfo(dtype).tiny)
    p = params_as_numpy64(params)
    X, Y = as_numpy64(X), as_numpy64(Y)
    N = X.shape[0]
    kappa = max(max(spec.sizes), N) + 1 + 4
    unit = 2 * eps * kappa

    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return _tolerance(spec, p, X, Y, dtype, eps, tiny, kappa, unit, general, lr)


def _tolerance(spec: Spec, p: Params, X: np.ndarray, Y: np.ndarray, dtype: np.dtype, eps: float, tiny: float,
               kappa: int, unit: float, general: bool, lr: float | None) -> Tolerance:
    N = X.shape[0]
    fwd = _forward(spec, p, X)
    delta = _deltas(spec, p, fwd, Y, None)
    absW = [np.abs(W) for W in p.weights]
    absb = [np.zeros(W.shape[1]) for W in p.weights] if p.biases is None else [np.abs(b) for b in p.biases]

    # forward: error magnitudes of u, I and O
    underflow = tiny / unit
    e_u = [np.zeros_like(X)]
    e_I, e_O = [], []
    for l, name in enumerate(spec.activations):
        u = fwd.u[l]
        eI = np.abs(u) @ absW[l] + absb[l] + e_u[l] @ absW[l]
        if _exact_sums(u, p.weights[l], None if p.biases is None else p.biases[l]) and not e_u[l].any():
            eI = np.zeros_like(eI)  # every product and partial sum is exact: I has no rounding error
        O = fwd.O[l]
        if name == "softmax":
            eO = O * (eI + np.max(eI, axis=-1, keepdims=True)) + O
        else:
            eO = np.maximum(np.abs(derivative(name, fwd.I[l], O)), _kink(name, fwd.I[l], eI, unit)) * eI + np.abs(O)
        # an output that underflows is off by up to the smallest normal number, whatever its size
        # (1 / (1 + exp(-z)) gives 0 once exp(-z) overflows, where sigmoid(z) is still about 3e-39 in
        # float32); the bce and ce divisions by y* can magnify that, so it is an error of its own
        eO = eO + underflow
        e_I.append(eI)
        e_O.append(eO)
        e_u.append(eO)

    # backward: error magnitudes of every delta, output first
    scale = 1.0 / N if spec.reduction == "mean" else 1.0
    M = [None] * spec.depth
    M[-1] = scale * _output_magnitude(spec, fwd.I[-1], fwd.O[-1], Y, e_O[-1], general)
    conventions = []
    undetermined = _bce_undetermined(spec, fwd.O[-1], e_O[-1], unit)
    if undetermined.any():
        # y*(1 - y*) is within the rounding error of y*: the division by it has no correct digit in
        # this dtype, and only torch's floor bounds the result; any value up to that bound is accepted
        O_L = fwd.O[-1]
        bound = (np.abs(O_L) + np.abs(Y)) / BCE_EPSILON * O_L
        if spec.activations[-1] == "softmax":
            bound = O_L * ((np.abs(O_L) + np.abs(Y)) / BCE_EPSILON + np.sum(bound, axis=-1, keepdims=True))
        rows = undetermined.any(axis=-1, keepdims=True)
        M[-1] = M[-1] + scale * rows * (bound + np.abs(delta[-1]) / scale) / unit
        conventions.append(
            f"bce undetermined in {dtype.name}: {int(undetermined.sum())} output(s) with y*(1 - y*) within the "
            f"rounding error of y*; the division by y*(1 - y*) has no correct digit there, so any value up to "
            f"the bound of torch's floor {BCE_EPSILON:.3g} is accepted in those rows")
    saturated = _bce_saturation(spec, fwd.O[-1])
    if saturated.any():
        # torch's BCELoss backward divides by max(y*(1-y*), 1e-12): where y*(1-y*) < 1e-12 its
        # delta is (y* - y) y*(1-y*) / 1e-12, between 0 and the exact limit y* - y that the
        # shortcut gives; either is allowed there, and the case is named
        O_L = fwd.O[-1]
        M[-1] = M[-1] + scale * saturated * np.abs(O_L - Y) / unit
        conventions.append(
            f"bce saturation: {int(saturated.sum())} output(s) with y*(1 - y*) < {BCE_EPSILON:g}; torch's BCELoss "
            f"divides by max(y*(1 - y*), {BCE_EPSILON:g}) there, so its gradient shrinks towards 0 while "
            f"y* - y is the exact limit; either is accepted")
    if spec.activations[-1] == "relu":
        g = _loss_terms(spec.loss, fwd.O[-1], Y)[0]
        g_abs = _loss_terms(spec.loss, fwd.O[-1], Y)[1]
        M[-1] = M[-1] + scale * _kink("relu", fwd.I[-1], e_I[-1], unit) * (np.abs(g) / unit + g_abs)
    for l in range(spec.depth - 2, -1, -1):
        name = spec.activations[l]
        back = delta[l + 1] @ p.weights[l + 1].T
        dA = np.abs(derivative(name, fwd.I[l], fwd.O[l]))
        carried = (M[l + 1] + np.abs(delta[l + 1])) @ absW[l + 1].T
        # at an ambiguous kink the other implementation multiplies its own back (|back| give or
        # take unit * carried) by 1 instead of 0
        kink = _kink(name, fwd.I[l], e_I[l], unit) * (np.abs(back) / unit + carried)
        M[l] = carried * dA + np.abs(back) * _dA_dO(name, fwd.O[l]) * e_O[l] + kink

    grad_W = [np.abs(u).T @ (m + np.abs(d)) + e.T @ np.abs(d) for u, m, d, e in zip(fwd.u, M, delta, e_u)]
    grad_b = None if p.biases is None else [np.sum(m + np.abs(d), axis=0) for m, d in zip(M, delta)]
    grad_input = (M[0] + np.abs(delta[0])) @ absW[0].T

    def allow(m: np.ndarray) -> np.ndarray:
        return unit * m + kappa * tiny

    grads = Params([allow(m) for m in grad_W], None if grad_b is None else [allow(m) for m in grad_b])
    update = None
    if lr is not None:
        # W - lr * g: the gradient's allowance scaled by lr, and one rounding of each result
        def step(W: np.ndarray, G: np.ndarray, g: np.ndarray) -> np.ndarray:
            return lr * G + 2 * eps * (np.abs(W) + lr * np.abs(g)) + tiny

        ref = Params([u.T @ d for u, d in zip(fwd.u, delta)],
                     None if p.biases is None else [np.sum(d, axis=0) for d in delta])
        update = Params([step(W, G, g) for W, G, g in zip(p.weights, grads.weights, ref.weights)],
                        None if p.biases is None else
                        [step(b, G, g) for b, G, g in zip(p.biases, grads.biases, ref.biases)])
    return Tolerance(grads, tuple(allow(m) for m in M), allow(grad_input), eps, kappa, update, tuple(conventions))
