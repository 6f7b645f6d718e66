r"""The gradient of each example's own loss, as differentially private SGD (clipping per example)
and influence estimates need it.

The objective is a sum over examples (slide "Training a neural network"), and example n reaches only
its own row of every :math:`I^{(l)}`; so with the summed objective, row n of :math:`\delta^{(l)}` is
:math:`\partial L_n / \partial I^{(l)}_n` and

.. math::
    \nabla_{W^{(l)}} L_n = u^{(l)\,T}_n \delta^{(l)}_n \quad (in, out), \qquad
    \nabla_{b^{(l)}} L_n = \delta^{(l)}_n \quad (out,)

the outer product of one row of each. Summed over n they give the gradient of the ``"sum"``
objective; the ``"mean"`` objective's gradient is that sum divided by N.
"""

from __future__ import annotations

from ._xp import Array
from .backward import _deltas
from .forward import _forward
from .params import Params
from .spec import Spec
from .validate import check_inputs

__all__ = ["per_example_gradients"]


def per_example_gradients(spec: Spec, params: Params, X: Array, Y: Array) -> Params:
    r"""The gradient of every example's own loss :math:`L_n` (no reduction over the batch, whatever
    ``spec.reduction`` says): weights of shape ``(N, in, out)``, biases ``(N, out)``.

    .. math::
        \nabla_{W^{(l)}} L_n = (u^{(l)}_n)^T \delta^{(l)}_n, \qquad \nabla_{b^{(l)}} L_n = \delta^{(l)}_n

    Example:
        >>> import numpy as np
        >>> from manual import Spec, init_params
        >>> spec = Spec((2, 3, 1), ("tanh", "sigmoid"), "bce", bias=True)
        >>> p = init_params(spec, np.random.default_rng(0))
        >>> g = per_example_gradients(spec, p, np.ones((4, 2)), np.ones((4, 1)))
        >>> g.weights[0].shape, g.biases[1].shape
        ((4, 2, 3), (4, 1))
    """
    check_inputs(spec, params, X, Y)
    summed = Spec(spec.sizes, spec.activations, spec.loss, bias=spec.bias, reduction="sum")
    fwd = _forward(summed, params, X)
    delta = _deltas(summed, params, fwd, Y, None)  # row n: dL_n/dI_n
    weights = [u[:, :, None] * d[:, None, :] for u, d in zip(fwd.u, delta)]
    return Params(weights, None if params.biases is None else list(delta))
