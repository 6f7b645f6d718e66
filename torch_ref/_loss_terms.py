r"""The loss-side terms of the tolerance model, from the reference's float64 values.

For each loss: ``g`` = dL/dy*, its evaluation on absolute values, and :math:`|\partial g/\partial y^*|`
(how an error already in y* is carried on); for softmax outputs the same for
:math:`h = y^* \odot g`, the form in which the vector-Jacobian product is evaluated. bce divides by
:math:`\max(y^*(1 - y^*), \epsilon)`, torch's floor, in both.
"""

from __future__ import annotations

import numpy as np

from .reference import LOG_FLOOR, TORCH_BCE_EPSILON

__all__ = ["gradient_terms", "objective_terms", "softmax_terms"]


def gradient_terms(loss: str, O: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``g = dL/dy*``, ``|g|`` evaluated on absolute values, and ``|dg/dy*|``."""
    if loss == "squared":
        return O - Y, np.abs(O) + np.abs(Y), np.ones_like(O)
    if loss == "bce":
        p = np.maximum(O * (1 - O), TORCH_BCE_EPSILON)
        return ((O - Y) / p, (np.abs(O) + np.abs(Y)) / p,
                (p + np.abs(O - Y) * np.abs(1 - 2 * O)) / p**2)
    return -Y / O, np.abs(Y) / O, np.abs(Y) / O**2


def softmax_terms(loss: str, O: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``h = y* ⊙ dL/dy*`` with the factor y* cancelled where the loss allows, its evaluation on
    absolute values, and ``|dh/dy*|``."""
    if loss == "squared":
        return O * (O - Y), O * (np.abs(O) + np.abs(Y)), np.abs(2 * O - Y)
    if loss == "ce":
        return -Y, np.abs(Y), np.zeros_like(O)
    p = O * (1 - O)
    floored = p < TORCH_BCE_EPSILON
    q = np.maximum(p, TORCH_BCE_EPSILON)
    with np.errstate(divide="ignore", invalid="ignore"):
        dh = np.where(floored, np.abs(2 * O - Y) / TORCH_BCE_EPSILON, np.abs(1 - Y) / (1 - O) ** 2)
    return O * (O - Y) / q, O * (np.abs(O) + np.abs(Y)) / q, dh


def objective_terms(loss: str, output: str, I: np.ndarray, O: np.ndarray, Y: np.ndarray,
                    e_I: np.ndarray, e_O: np.ndarray) -> np.ndarray:
    r"""Per output, the magnitude M of the loss's rounding error (error <= unit * M): the terms
    evaluated on absolute values plus the errors of I or y* carried on. squared and bce are
    evaluated on y* (bce's logs clamped at -100, as torch's BCELoss); ce from the logits I
    (log-softmax, log-sigmoid)."""
    if loss == "squared":
        d = np.abs(O - Y)
        return 0.5 * d**2 + d * (np.abs(O) + np.abs(Y) + e_O)
    if loss == "bce":
        floor = np.exp(LOG_FLOOR)
        p, q = np.maximum(O, floor), np.maximum(1 - O, floor)
        logs = np.abs(Y) * np.abs(np.log(p)) + np.abs(1 - Y) * np.abs(np.log(q))
        return logs + (np.abs(Y) / p + np.abs(1 - Y) / q) * (e_O + 1 + np.abs(O))
    if output == "softmax":
        lse = np.log(np.sum(np.exp(I - I.max(axis=-1, keepdims=True)), axis=-1, keepdims=True)) \
            + I.max(axis=-1, keepdims=True)
        J = I.shape[-1]
        return np.abs(Y) * (np.abs(I) + 2 * np.abs(lse) + J + e_I + e_I.max(axis=-1, keepdims=True))
    log_sigmoid = -np.logaddexp(0.0, -I)
    return np.abs(Y) * (np.abs(log_sigmoid) + 1 + e_I)
