r"""The forward pass, slide "Going forward....".

For layer l = 1..L (stored at index l - 1):

.. math::
    u^{(1)} = X, \qquad I^{(l)} = u^{(l)} W^{(l)} (+ b^{(l)}), \qquad
    O^{(l)} = \mathcal{A}(I^{(l)}) = u^{(l+1)}, \qquad y^* = O^{(L)}
"""

from __future__ import annotations

from dataclasses import dataclass

from ._xp import Array, namespace
from .params import Params
from .spec import Spec
from .validate import check_inputs

__all__ = ["Forward", "forward"]


@dataclass(frozen=True)
class Forward:
    """Every intermediate of the forward pass; index ``l - 1`` holds layer ``l``.

    Attributes:
        u: layer inputs, ``u[l-1]`` of shape ``(N, sizes[l-1])``; ``u[0]`` is X.
        I: pre-activations, ``I[l-1]`` of shape ``(N, sizes[l])``.
        O: outputs ``A(I)``, same shapes as ``I``; ``O[-1]`` is the prediction y*.
    """

    u: tuple[Array, ...]
    I: tuple[Array, ...]
    O: tuple[Array, ...]

    @property
    def prediction(self) -> Array:
        """y* = O^(L), shape ``(N, J)``."""
        return self.O[-1]


def forward(spec: Spec, params: Params, X: Array) -> Forward:
    r"""Run the network on ``X`` of shape ``(N, D)``: :math:`I^{(l)} = u^{(l)} W^{(l)} + b^{(l)}`,
    :math:`O^{(l)} = \mathcal{A}(I^{(l)})`.

    Example:
        >>> import numpy as np
        >>> from manual import Spec, init_params
        >>> spec = Spec((2, 2, 1), ("sigmoid", "sigmoid"), "bce")
        >>> p = init_params(spec, np.random.default_rng(0))
        >>> forward(spec, p, np.ones((4, 2))).prediction.shape
        (4, 1)
    """
    check_inputs(spec, params, X)
    return _forward(spec, params, X)


def _forward(spec: Spec, params: Params, X: Array) -> Forward:
    xp = namespace(X)
    u, I, O = [X], [], []
    for l, (W, entry) in enumerate(zip(params.weights, spec.activations)):
        I_l = u[l] @ W
        if params.biases is not None:
            I_l = I_l + params.biases[l]
        O_l = entry.forward(I_l, xp)
        I.append(I_l)
        O.append(O_l)
        u.append(O_l)
    return Forward(tuple(u[:-1]), tuple(I), tuple(O))
