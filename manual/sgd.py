r"""Gradient descent, slide "Training a neural network": :math:`w^{t+1} = w^t - \xi \nabla_{w^t} L`."""

from __future__ import annotations

from ._xp import Array
from .backward import _gradients
from .params import Params
from .spec import Spec
from .validate import check_inputs, check_lr

__all__ = ["sgd_step"]


def sgd_step(spec: Spec, params: Params, X: Array, Y: Array, lr: float) -> Params:
    r"""One step of gradient descent on the whole batch, returning new weights.

    Every gradient is taken at the old weights (slide "Going backward....": both layers use
    :math:`\delta` computed before any update), then :math:`W \leftarrow W - \xi \nabla W` and
    :math:`b \leftarrow b - \xi \nabla b`. ``params`` is not modified.

    Args:
        lr: the learning rate :math:`\xi`, a finite number >= 0.
    """
    xi = check_lr(lr)
    check_inputs(spec, params, X, Y)
    grads = _gradients(spec, params, X, Y)
    weights = [W - xi * g for W, g in zip(params.weights, grads.weights)]
    biases = None
    if params.biases is not None and grads.biases is not None:
        biases = [b - xi * g for b, g in zip(params.biases, grads.biases)]
    return Params(weights, biases)
