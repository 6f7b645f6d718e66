r"""The training objective, slide "Training a neural network": :math:`\sum_{n=1}^N L(y^{(n)}, y^{*(n)})`."""

from __future__ import annotations

from ._xp import Array, namespace
from .forward import _forward
from .losses import loss_value
from .params import Params
from .spec import Spec
from .validate import check_inputs

__all__ = ["objective"]


def objective(spec: Spec, params: Params, X: Array, Y: Array) -> Array:
    r"""The scalar objective :math:`\sum_n L(y^{(n)}, y^{*(n)})`, divided by N when
    ``spec.reduction == "mean"``; a 0-d array of the inputs' library."""
    check_inputs(spec, params, X, Y)
    xp = namespace(X)
    total = xp.sum(loss_value(spec.loss, _forward(spec, params, X).prediction, Y))
    return total / X.shape[0] if spec.reduction == "mean" else total
