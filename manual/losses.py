r"""The built-in losses, one :class:`~manual.loss.Loss` entry each: the slides' three (slide "Training a
neural network": squared, binary cross-entropy, cross-entropy) and the Huber loss.

Shapes: ``O`` (the prediction y*) and ``Y`` (the target y) are ``(N, J)``; values are per example,
shape ``(N,)``, summed over the J outputs; gradients dL/dy* are ``(N, J)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._xp import Array, device
from .loss import Loss

__all__ = ["BCE_EPSILON", "BUILTIN_LOSSES", "LOG_FLOOR"]

# torch's BCELoss clamps each log at -100, so a prediction of exactly 0 or 1 gives a finite loss,
# and its backward divides by max(y*(1 - y*), EPSILON) (aten/src/ATen/native/Loss.cpp,
# binary_cross_entropy_backward), EPSILON being the float32 constant 1e-12, which is
# 9.999999960041972e-13 (measured: (y* - y) / grad at a clamped y*). Both conventions are taken
# over for bce so that the manual package and the reference agree on saturated outputs too.
LOG_FLOOR = -100.0
BCE_EPSILON = 9.999999960041972e-13


def _log(xp: Any, p: Array) -> Array:
    # max(log p, -100), as torch's BCELoss: log(0) = -inf clamps to exactly -100 in either dtype
    # (flooring p at e^-100 first would give -99.98 in float32, where e^-100 is subnormal)
    with np.errstate(divide="ignore"):
        return xp.clip(xp.log(p), min=LOG_FLOOR)


# ------------------------------------------------------------------------------------------ squared


def _squared(O: Array, Y: Array, xp: Any) -> Array:
    r""":math:`L = \tfrac12 \sum_j (y_j - y^*_j)^2`"""
    return xp.sum(0.5 * (Y - O) ** 2, axis=-1)


def _squared_gradient(O: Array, Y: Array, xp: Any) -> Array:
    return O - Y  # y* - y


def _squared_h(O: Array, Y: Array, xp: Any) -> Array:
    return O * (O - Y)


def _squared_hessian(O: Array, Y: Array, R: Array, xp: Any) -> Array:
    return R  # d^2 L / dy*^2 = 1


# ------------------------------------------------------------------------------------------ bce


def _bce(O: Array, Y: Array, xp: Any) -> Array:
    r""":math:`L = \sum_j -y_j \log y^*_j - (1 - y_j) \log(1 - y^*_j)`, each log floored at -100."""
    return xp.sum(-Y * _log(xp, O) - (1 - Y) * _log(xp, 1 - O), axis=-1)


def _bce_denominator(O: Array, xp: Any) -> Array:
    return xp.maximum(O * (1 - O), xp.full_like(O, BCE_EPSILON))


def _bce_gradient(O: Array, Y: Array, xp: Any) -> Array:
    r""":math:`-y / y^* + (1 - y) / (1 - y^*) = (y^* - y) / (y^*(1 - y^*))` (slide "Single layer
    network – weight update", second line), the denominator floored as torch's BCELoss backward."""
    return (O - Y) / _bce_denominator(O, xp)


def _bce_h(O: Array, Y: Array, xp: Any) -> Array:
    # a softmax output's h: y*(1 - y*) with 1 - y*_j summed from the other outputs, accurate where
    # y*_j rounds to 1 (issue 21), floored as torch's BCELoss backward
    p = O * _softmax_others(O, xp)
    return O * (O - Y) / xp.maximum(p, xp.full_like(O, BCE_EPSILON))


def _bce_hessian(O: Array, Y: Array, R: Array, xp: Any) -> Array:
    r""":math:`y/y^{*2} + (1 - y)/(1 - y^*)^2 = (y^{*2} - 2 y y^* + y) / (y^*(1 - y^*))^2`, the
    denominator floored as the gradient's."""
    d = _bce_denominator(O, xp)
    return R * (O * O - 2 * Y * O + Y) / (d * d)


# ------------------------------------------------------------------------------------------ ce


def _ce(O: Array, Y: Array, xp: Any) -> Array:
    r""":math:`L = -\sum_j y_j \log y^*_j`"""
    return -xp.sum(Y * xp.log(O), axis=-1)


def _ce_gradient(O: Array, Y: Array, xp: Any) -> Array:
    return -Y / O


def _ce_h(O: Array, Y: Array, xp: Any) -> Array:
    return -Y  # y* (-y / y*), y* cancelled: an output that underflowed to 0 gives the limit


def _ce_hessian(O: Array, Y: Array, R: Array, xp: Any) -> Array:
    return R * Y / (O * O)  # d/dy* (-y / y*) = y / y*^2


def _ce_sigmoid_r_delta(I: Array, O: Array, Y: Array, RI: Array, RO: Array, xp: Any) -> Array:
    # R{-y (1 - y*)} = y R{y*}: the general form's y / y*^2 times y*^2, cancelled (an output that
    # underflowed to 0 gives the limit instead of inf * 0)
    return Y * RO


def _ce_sigmoid_gn_delta(I: Array, O: Array, Y: Array, RI: Array, RO: Array, xp: Any) -> Array:
    # A' H A' R{I} = y*(1 - y*) (y / y*^2) y*(1 - y*) R{I} = y (1 - y*)^2 R{I}
    return Y * (1 - O) * (1 - O) * RI


def _bce_sigmoid_gn_delta(I: Array, O: Array, Y: Array, RI: Array, RO: Array, xp: Any) -> Array:
    # A' H A' R{I} with H = (y*^2 - 2 y y* + y) / (y*(1 - y*))^2 and A' = y*(1 - y*): the factor cancels
    return (O * O - 2 * Y * O + Y) * RI


def _ce_softmax_gn_delta(I: Array, O: Array, Y: Array, RI: Array, RO: Array, xp: Any) -> Array:
    # softmax's vjp of h = y* (y / y*^2) R{y*} = y (R{I} - sum_k y*_k R{I}_k): y* cancelled
    h = Y * (RI - xp.sum(O * RI, axis=-1, keepdims=True))
    return h - O * xp.sum(h, axis=-1, keepdims=True)


def _softmax_others(O: Array, xp: Any) -> Array:
    """1 - y*_j as the sum of the other outputs (no subtraction): where y*_j rounds to 1 but the
    others do not underflow, 1 - y*_j would be 0 and this is right."""
    J = O.shape[-1]
    others = xp.ones((J, J), dtype=O.dtype, device=device(O)) - xp.eye(J, dtype=O.dtype, device=device(O))
    return O @ others


def _bce_softmax_r_delta(I: Array, O: Array, Y: Array, RI: Array, RO: Array, xp: Any) -> Array:
    # delta = h - y* sum(h) with h = y* dL/dy* = (y* - y) / (1 - y*) (y* cancelled), so
    # R{delta} = R{h} - R{y*} sum(h) - y* sum(R{h}), R{h} = (1 - y) / (1 - y*)^2 R{y*}
    rest = _softmax_others(O, xp)
    h = (O - Y) / rest
    Rh = (1 - Y) / (rest * rest) * RO
    return Rh - RO * xp.sum(h, axis=-1, keepdims=True) - O * xp.sum(Rh, axis=-1, keepdims=True)


def _bce_softmax_exact_delta(I: Array, O: Array, Y: Array, xp: Any) -> Array:
    # delta = h - y* sum(h) with h = (y* - y) / (1 - y*) (y* cancelled, no floor: the exact
    # objective's, for manual.hvp); h_j (1 - y*_j) is y*_j - y_j, so delta_j = y*_j - y_j - y*_j sum_{k!=j} h_k
    h = (O - Y) / _softmax_others(O, xp)
    return (O - Y) - O * _softmax_others(h, xp)  # _softmax_others(h): the sum of the other entries


def _bce_softmax_gn_delta(I: Array, O: Array, Y: Array, RI: Array, RO: Array, xp: Any) -> Array:
    # softmax's vjp of h = y* H_L R{y*} = (y*^2 - 2 y y* + y) / (1 - y*)^2 (R{I} - sum_k y*_k R{I}_k)
    rest = _softmax_others(O, xp)
    h = (O * O - 2 * Y * O + Y) / (rest * rest) * (RI - xp.sum(O * RI, axis=-1, keepdims=True))
    return h - O * xp.sum(h, axis=-1, keepdims=True)


def _ce_sigmoid_delta(I: Array, O: Array, Y: Array, xp: Any) -> Array:
    # (-y / y*) ⊙ y*(1 - y*) with the common factor y* cancelled before evaluation
    return -Y * (1 - O)


def _ce_from_softmax_logits(I: Array, Y: Array, xp: Any) -> Array:
    # log y*_j = I_j - log sum_k exp(I_k), as CrossEntropyLoss: finite where y* rounds to 0
    m = xp.max(I, axis=-1, keepdims=True)
    log_y_star = I - (m + xp.log(xp.sum(xp.exp(I - m), axis=-1, keepdims=True)))
    return -xp.sum(Y * log_y_star, axis=-1)


def _ce_from_sigmoid_logits(I: Array, Y: Array, xp: Any) -> Array:
    # log sigma(I) = -(log(1 + e^-|I|) + max(-I, 0)), no overflow for either sign
    log_y_star = -(xp.log1p(xp.exp(-xp.abs(I))) + xp.clip(-I, min=0))
    return -xp.sum(Y * log_y_star, axis=-1)


# ------------------------------------------------------------------------------------------ huber


def _huber(O: Array, Y: Array, xp: Any) -> Array:
    r""":math:`L = \sum_j \tfrac12 d_j^2` where :math:`|d_j| \le 1`, :math:`|d_j| - \tfrac12` elsewhere,
    :math:`d = y^* - y` (torch's ``HuberLoss(delta=1)``, summed)."""
    d = O - Y
    a = xp.abs(d)
    return xp.sum(xp.where(a <= 1, 0.5 * d * d, a - 0.5), axis=-1)


def _huber_gradient(O: Array, Y: Array, xp: Any) -> Array:
    return xp.clip(O - Y, min=-1.0, max=1.0)  # d where |d| <= 1, sign(d) elsewhere


def _huber_hessian(O: Array, Y: Array, R: Array, xp: Any) -> Array:
    # 1 where |d| < 1, 0 elsewhere, at |d| = 1 too (torch's double backward of HuberLoss)
    return xp.where(xp.abs(O - Y) < 1, R, xp.zeros_like(R))


BUILTIN_LOSSES: tuple[Loss, ...] = (
    Loss(
        "squared",
        _squared,
        _squared_gradient,
        softmax=True,
        canonical=("identity",),
        times_output=_squared_h,
        hessian=_squared_hessian,
        description="1/2 sum_j (y*_j - y_j)^2; dL/dy* = y* - y",
    ),
    Loss(
        "bce",
        _bce,
        _bce_gradient,
        targets="unit",
        outputs=("sigmoid",),
        softmax=True,
        canonical=("sigmoid",),
        times_output=_bce_h,
        hessian=_bce_hessian,
        r_cancelled={"softmax": _bce_softmax_r_delta},
        exact_delta={"softmax": _bce_softmax_exact_delta},
        gn_cancelled={"sigmoid": _bce_sigmoid_gn_delta, "softmax": _bce_softmax_gn_delta},
        description="sum_j -y_j log y*_j - (1 - y_j) log(1 - y*_j), logs floored at -100 and dL/dy* = "
        "(y* - y) / max(y*(1 - y*), 1e-12) as torch's BCELoss",
    ),
    Loss(
        "ce",
        _ce,
        _ce_gradient,
        targets="simplex",
        outputs=("sigmoid",),
        softmax=True,
        canonical=("softmax",),
        times_output=_ce_h,
        cancelled={"sigmoid": _ce_sigmoid_delta},
        from_logits={"softmax": _ce_from_softmax_logits, "sigmoid": _ce_from_sigmoid_logits},
        hessian=_ce_hessian,
        r_cancelled={"sigmoid": _ce_sigmoid_r_delta},
        gn_cancelled={"sigmoid": _ce_sigmoid_gn_delta, "softmax": _ce_softmax_gn_delta},
        description="-sum_j y_j log y*_j (targets on the simplex); dL/dy* = -y / y*",
    ),
    Loss(
        "huber",
        _huber,
        _huber_gradient,
        hessian=_huber_hessian,
        description="sum_j 1/2 d_j^2 where |d_j| <= 1, |d_j| - 1/2 elsewhere, d = y* - y (delta 1); "
        "dL/dy* = clip(d, -1, 1)",
    ),
)
