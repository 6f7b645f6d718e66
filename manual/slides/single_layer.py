r"""Slides "Single layer network" and "Single layer network – weight update", as written.

The network: inputs :math:`x_1..x_D`, weights :math:`w_1..w_D`, sigmoid output :math:`y^*`,
binary cross-entropy loss. Sequences are indexed from 0 here: ``w[i - 1]`` is the slides' :math:`w_i`.
Where a line of the derivation still holds an unevaluated derivative (:math:`\partial y^*/\partial w_i`),
the function takes that factor as an argument.
"""

from __future__ import annotations

from typing import Any

from .activations import sigmoid
from .losses import binary_cross_entropy

__all__ = [
    "gradient_line2",
    "gradient_line3",
    "gradient_line4",
    "gradient_line5",
    "loss_of_weights",
    "output_sum",
    "output_vector",
    "update",
    "update_closed_form",
    "update_vector",
]

Vector = Any  # indexable as v[i]: a list, a NumPy array, a torch tensor or sympy symbols


def output_sum(w: Vector, x: Vector) -> Any:
    r"""Slide "Single layer network": :math:`y^* = \mathcal{A}(w_1x_1 + w_2x_2 + \dots + w_Dx_D)`."""
    return sigmoid(sum(w[d] * x[d] for d in range(len(x))))


def output_vector(w: Any, x: Any) -> Any:
    r"""Slide "Single layer network": :math:`y^* = \mathcal{A}(\mathbf{w}^T \mathbf{x})`; ``w``, ``x``
    are vectors of shape ``(D,)``."""
    return sigmoid(w @ x)


def loss_of_weights(w: Vector, x: Vector, y: Any) -> Any:
    r"""Slide "Single layer network – weight update", first line of the derivation: the loss
    :math:`-y \log(y^*) - (1 - y) \log(1 - y^*)` as a function of the weights, whose
    :math:`\partial/\partial w_i` the line writes (autograd or sympy takes that derivative)."""
    return binary_cross_entropy(y, output_sum(w, x))


def gradient_line2(y: Any, y_star: Any, dy_star_dw_i: Any) -> Any:
    r"""Slide "Single layer network – weight update", second line:
    :math:`\left(-\frac{y}{y^*} + \frac{(1 - y)}{(1 - y^*)}\right) \frac{\partial y^*}{\partial w_i}`."""
    return (-y / y_star + (1 - y) / (1 - y_star)) * dy_star_dw_i


def gradient_line3(y: Any, y_star: Any, dA_dw_i: Any) -> Any:
    r"""Slide "Single layer network – weight update", third line:
    :math:`\left(\frac{y^* - y}{y^*(1 - y^*)}\right) \frac{\partial \mathcal{A}(w_1 x_1 + \dots + w_D x_D)}{\partial w_i}`."""
    return ((y_star - y) / (y_star * (1 - y_star))) * dA_dw_i


def gradient_line4(y: Any, y_star: Any, x_i: Any) -> Any:
    r"""Slide "Single layer network – weight update", fourth line:
    :math:`\left(\frac{y^* - y}{y^*(1 - y^*)}\right) (y^*(1 - y^*)) x_i`."""
    return ((y_star - y) / (y_star * (1 - y_star))) * (y_star * (1 - y_star)) * x_i


def gradient_line5(y: Any, y_star: Any, x_i: Any) -> Any:
    r"""Slide "Single layer network – weight update", last line: :math:`(y^* - y) x_i`."""
    return (y_star - y) * x_i


def update(w_i: Any, dL_dw_i: Any, xi: Any) -> Any:
    r"""Slide "Single layer network – weight update": :math:`w_i := w_i - \xi \frac{\partial L}{\partial w_i}`."""
    return w_i - xi * dL_dw_i


def update_closed_form(w_i: Any, y: Any, y_star: Any, x_i: Any, xi: Any) -> Any:
    r"""Slide "Single layer network – weight update" (second slide): :math:`w_i := w_i - \xi (y^* - y) x_i`."""
    return w_i - xi * (y_star - y) * x_i


def update_vector(w: Any, y: Any, y_star: Any, x: Any, xi: Any) -> Any:
    r"""Slide "Single layer network – weight update", vectorial notation:
    :math:`\mathbf{w} := \mathbf{w} - \xi (y^* - y) \mathbf{x}`."""
    return w - xi * (y_star - y) * x
