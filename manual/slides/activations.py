r"""Slides "Sigmoid", "tanh" and "ReLU": the activation functions as written, and the sigmoid
derivative facts of slide "Looking backwards: first layer"."""

from __future__ import annotations

from typing import Any

from ._ops import exp
from ._ops import relu as _relu

__all__ = ["relu", "sigmoid", "sigmoid_derivative", "sigmoid_derivative_from_output", "tanh"]


def sigmoid(z: Any) -> Any:
    r"""Slide "Sigmoid": :math:`\mathcal{A}(z) = \frac{1}{1 + \exp(-z)}`."""
    return 1 / (1 + exp(-z))


def tanh(z: Any) -> Any:
    r"""Slide "tanh": :math:`\mathcal{A}(z) = \frac{\exp(z) - \exp(-z)}{\exp(z) + \exp(-z)}`."""
    return (exp(z) - exp(-z)) / (exp(z) + exp(-z))


def relu(z: Any) -> Any:
    r"""Slide "ReLU": :math:`\mathcal{A}(z) = \max(z, 0)`."""
    return _relu(z)


def sigmoid_derivative(v: Any) -> Any:
    r""":math:`\mathcal{A}'(v)` for the sigmoid, differentiated directly:
    :math:`\exp(-v) / (1 + \exp(-v))^2`. The slides write :math:`\mathcal{A}'(\mathbf{v})` in
    slides "Looking backwards...." and "Looking backwards: first layer" before substituting."""
    return exp(-v) / (1 + exp(-v)) ** 2


def sigmoid_derivative_from_output(output: Any) -> Any:
    r"""Slide "Looking backwards: first layer", "for sigmoid activation function":
    :math:`\mathcal{A}'(\mathbf{v}_1^{(2)}) = y^*(1 - y^*)` and
    :math:`\mathcal{A}'(\mathbf{v}_i^{(1)}) = z_i(1 - z_i)`: the derivative from the output."""
    return output * (1 - output)
