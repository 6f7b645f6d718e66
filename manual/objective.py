r"""The training objective, slide "Training a neural network": :math:`\sum_{n=1}^N L(y^{(n)}, y^{*(n)})`.

Each loss is evaluated in the form that equals torch's value where a probability underflows:

- ce on a softmax output from the logits, :math:`\log y^*_j = I_j - \log\sum_k e^{I_k}` (log-sum-exp,
  as ``CrossEntropyLoss``), and on a sigmoid output as :math:`\log\sigma(I) = -\log(1 + e^{-I})`
  (log-sigmoid): finite where y* rounds to 0;
- bce on y* with each log clamped at -100, as ``BCELoss``;
- squared as written.
"""

from __future__ import annotations

from ._xp import Array, namespace
from .forward import _forward
from .losses import loss_value
from .params import Params
from .spec import Spec
from .validate import check_inputs

__all__ = ["objective", "per_example_loss"]


def _log_softmax(xp, I: Array) -> Array:
    m = xp.max(I, axis=-1, keepdims=True)
    return I - (m + xp.log(xp.sum(xp.exp(I - m), axis=-1, keepdims=True)))


def _log_sigmoid(xp, I: Array) -> Array:
    # log sigma(I) = -(log(1 + e^-|I|) + max(-I, 0)), no overflow for either sign
    return -(xp.log1p(xp.exp(-xp.abs(I))) + xp.clip(-I, min=0))


def per_example_loss(spec: Spec, I: Array, O: Array, Y: Array) -> Array:
    """L per example, shape ``(N,)``, from the output layer's ``I`` and ``O = y*`` (both ``(N, J)``)."""
    if spec.loss != "ce":
        return loss_value(spec.loss, O, Y)
    xp = namespace(I, Y)
    log_y_star = _log_softmax(xp, I) if spec.activations[-1] == "softmax" else _log_sigmoid(xp, I)
    return -xp.sum(Y * log_y_star, axis=-1)


def objective(spec: Spec, params: Params, X: Array, Y: Array) -> Array:
    r"""The scalar objective :math:`\sum_n L(y^{(n)}, y^{*(n)})`, divided by N when
    ``spec.reduction == "mean"``; a 0-d array of the inputs' library."""
    check_inputs(spec, params, X, Y)
    xp = namespace(X)
    fwd = _forward(spec, params, X)
    total = xp.sum(per_example_loss(spec, fwd.I[-1], fwd.prediction, Y))
    return total / X.shape[0] if spec.reduction == "mean" else total
