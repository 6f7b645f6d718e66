r"""The per-example losses of the slide "Training a neural network" and their gradients dL/dy*.

Shapes: ``O`` (the prediction y*) and ``Y`` (the target y) are ``(N, J)``. Values are returned per
example, shape ``(N,)``, summed over the J outputs; the objective's reduction over N lives in
:mod:`manual.objective`.
"""

from __future__ import annotations

import numpy as np

from ._xp import Array, namespace

__all__ = ["BCE_EPSILON", "LOG_FLOOR", "loss_gradient", "loss_value", "output_times_gradient"]

# torch's BCELoss clamps each log at -100, so a prediction of exactly 0 or 1 gives a finite loss,
# and its backward divides by max(y*(1 - y*), EPSILON) (aten/src/ATen/native/Loss.cpp,
# binary_cross_entropy_backward), EPSILON being the float32 constant 1e-12, which is
# 9.999999960041972e-13 (measured: (y* - y) / grad at a clamped y*). Both conventions are taken
# over for bce so that the manual package and the reference agree on saturated outputs too.
LOG_FLOOR = -100.0
BCE_EPSILON = 9.999999960041972e-13


def _log(xp, p: Array) -> Array:
    # max(log p, -100), as torch's BCELoss: log(0) = -inf clamps to exactly -100 in either dtype
    # (flooring p at e^-100 first would give -99.98 in float32, where e^-100 is subnormal)
    with np.errstate(divide="ignore"):
        return xp.clip(xp.log(p), min=LOG_FLOOR)


def loss_value(loss: str, O: Array, Y: Array) -> Array:
    r"""Per-example loss, shape ``(N,)``.

    - squared: :math:`L = \tfrac12 \sum_j (y_j - y^*_j)^2`
    - bce: :math:`L = \sum_j -y_j \log y^*_j - (1 - y_j) \log(1 - y^*_j)`
    - ce: :math:`L = -\sum_j y_j \log y^*_j`

    For bce each log is floored at :data:`LOG_FLOOR` (-100), as torch's BCELoss does.
    """
    xp = namespace(O, Y)
    if loss == "squared":
        per_output = 0.5 * (Y - O) ** 2
    elif loss == "bce":
        per_output = -Y * _log(xp, O) - (1 - Y) * _log(xp, 1 - O)
    elif loss == "ce":
        per_output = -Y * xp.log(O)
    else:
        raise ValueError(f"unknown loss {loss!r}")
    return xp.sum(per_output, axis=-1)


def loss_gradient(loss: str, O: Array, Y: Array) -> Array:
    r"""dL/dy* for one example per row, shape ``(N, J)``.

    - squared: :math:`y^* - y`
    - bce: :math:`-y / y^* + (1 - y) / (1 - y^*) = (y^* - y) / (y^*(1 - y^*))`
      (slide "Single layer network – weight update", second line), the denominator floored at
      :data:`BCE_EPSILON` as torch's BCELoss backward does
    - ce: :math:`-y / y^*`

    These divide by the prediction; the output-layer delta avoids them for the canonical pairs, and
    the softmax delta takes :func:`output_times_gradient` instead.
    """
    if loss == "squared":
        return O - Y
    if loss == "bce":
        xp = namespace(O, Y)
        return (O - Y) / xp.maximum(O * (1 - O), xp.full_like(O, BCE_EPSILON))
    if loss == "ce":
        return -Y / O
    raise ValueError(f"unknown loss {loss!r}")


def output_times_gradient(loss: str, O: Array, Y: Array) -> Array:
    r""":math:`h = y^* \odot \partial L/\partial y^*`, shape ``(N, J)``, with the factor y* cancelled
    before evaluation where the loss allows it, so a y* that underflowed to 0 gives the limit:

    - squared: :math:`y^*(y^* - y)`
    - bce: :math:`y^*(y^* - y) / \max(y^*(1 - y^*), \epsilon)` (torch's floor, see :func:`loss_gradient`)
    - ce: :math:`-y`

    The softmax delta is :math:`h - y^* \sum_k h_k` (:func:`manual.activations.softmax_vjp`).
    """
    if loss == "squared":
        return O * (O - Y)
    if loss == "bce":
        xp = namespace(O, Y)
        return O * (O - Y) / xp.maximum(O * (1 - O), xp.full_like(O, BCE_EPSILON))
    if loss == "ce":
        return -Y
    raise ValueError(f"unknown loss {loss!r}")
