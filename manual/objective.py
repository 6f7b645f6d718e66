r"""The training objective, slide "Training a neural network": :math:`\sum_{n=1}^N L(y^{(n)}, y^{*(n)})`.

Each loss is evaluated in the form that equals torch's value where a probability underflows: ce on
a softmax or sigmoid output from the logits (log-sum-exp, log-sigmoid: finite where y* rounds to 0),
bce on y* with each log clamped at -100 as ``BCELoss``, the others as written (the entries'
``from_logits`` and ``value``, :mod:`manual.losses`).
"""

from __future__ import annotations

from ._xp import Array, namespace
from .forward import _forward
from .params import Params
from .spec import Spec
from .validate import check_inputs

__all__ = ["objective", "per_example_loss"]


def per_example_loss(spec: Spec, I: Array, O: Array, Y: Array) -> Array:
    """L per example, shape ``(N,)``, from the output layer's ``I`` and ``O = y*`` (both ``(N, J)``):
    the loss's form from the logits where its entry has one for this output activation
    (:attr:`manual.Loss.from_logits`), else its value on y*."""
    xp = namespace(I, Y)
    from_logits = spec.loss.from_logits.get(spec.activations[-1].name)
    if from_logits is not None:
        return from_logits(I, Y, xp)
    return spec.loss.value(O, Y, xp)


def objective(spec: Spec, params: Params, X: Array, Y: Array) -> Array:
    r"""The scalar objective :math:`\sum_n L(y^{(n)}, y^{*(n)})`, divided by N when
    ``spec.reduction == "mean"``; a 0-d array of the inputs' library."""
    check_inputs(spec, params, X, Y)
    xp = namespace(X)
    fwd = _forward(spec, params, X)
    total = xp.sum(per_example_loss(spec, fwd.I[-1], fwd.prediction, Y))
    return total / X.shape[0] if spec.reduction == "mean" else total
