r"""Slides "Representation in vector form", "Going forward...." and "Going backward....", as written.

Column vectors as the slides write them: :math:`\mathbf{u}^{(1)}` is ``(D, 1)``, :math:`\mathbf{w}^{(1)}`
is ``(D, H)`` with entry ``[j - 1, i - 1]`` = :math:`w_{ji}^{(1)}`, :math:`\mathbf{w}^{(2)}` is ``(H, 1)``.
:math:`\delta^{(1)}` is a row ``(1, H)``, :math:`\delta^{(2)}` a ``(1, 1)`` array. Sigmoid activations.
NumPy arrays or torch tensors.
"""

from __future__ import annotations

from typing import Any

from .activations import sigmoid

__all__ = [
    "backward_delta1",
    "backward_delta2",
    "backward_update_w1",
    "backward_update_w2",
    "forward_I",
    "forward_O",
    "layer_input",
]


def layer_input(values: Any) -> Any:
    r"""Slide "Representation in vector form": :math:`\mathbf{u}^{(1)} = [x_1, \dots, x_D]^T`,
    :math:`\mathbf{u}^{(2)} = [z_1, \dots, z_H]^T`: a layer's inputs stacked as a column ``(n, 1)``."""
    return values.reshape(-1, 1)


def forward_I(w: Any, u: Any) -> Any:
    r"""Slide "Going forward....", first stage: :math:`\mathbf{I}^{(l)} = (\mathbf{w}^{(l)})^T \mathbf{u}^{(l)}`."""
    return w.T @ u


def forward_O(I: Any) -> Any:
    r"""Slide "Going forward....", second stage: :math:`\mathbf{O}^{(l)} = \mathcal{A}(\mathbf{I}^{(l)})`
    (:math:`= \mathbf{u}^{(2)}` for the first layer, :math:`= y^*` for the output layer)."""
    return sigmoid(I)


def backward_delta2(y: Any, y_star: Any) -> Any:
    r"""Slide "Going backward....": :math:`\delta^{(2)} = (y^* - y)`."""
    return y_star - y


def backward_update_w2(w2: Any, u2: Any, delta2: Any, xi: Any) -> Any:
    r"""Slide "Going backward....": :math:`\mathbf{w}^{(2)} = \mathbf{w}^{(2)} - \xi \mathbf{u}^{(2)} \delta^{(2)}`."""
    return w2 - xi * u2 @ delta2


def backward_delta1(delta2: Any, w2: Any, z: Any) -> Any:
    r"""Slide "Going backward....": :math:`\delta^{(1)} = \left(\delta^{(2)} (\mathbf{w}^{(2)})^T\right) \odot \mathcal{Z}`,
    :math:`\mathcal{Z} = [z_1(1 - z_1), \dots, z_H(1 - z_H)]`; ``z`` is the column :math:`\mathbf{u}^{(2)}`."""
    Z = (z * (1 - z)).T
    return (delta2 @ w2.T) * Z


def backward_update_w1(w1: Any, u1: Any, delta1: Any, xi: Any) -> Any:
    r"""Slide "Going backward....": :math:`\mathbf{w}^{(1)} = \mathbf{w}^{(1)} - \xi \mathbf{u}^{(1)} \delta^{(1)}`."""
    return w1 - xi * u1 @ delta1
