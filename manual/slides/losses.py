r"""Slide "Training a neural network": the objective, the three losses and gradient descent, as written.

Scalars (or 0-d arrays, tensors, sympy expressions) in; ``y`` and ``y_star`` are sequences over
j = 1..J where the slide sums over j.
"""

from __future__ import annotations

from typing import Any

from ._ops import log

__all__ = ["binary_cross_entropy", "cross_entropy", "gradient_descent", "objective", "squared_loss"]

Vector = Any  # indexable as v[i]: a list, a NumPy array, a torch tensor or sympy symbols


def objective(L: Vector) -> Any:
    r"""Slide "Training a neural network": :math:`\sum_{n=1}^N L(\mathbf{y}^{(n)}, \mathbf{y}^{*(n)})`,
    the quantity minimised over w; ``L`` holds the N per-example losses."""
    return sum(L[n] for n in range(len(L)))


def squared_loss(y: Vector, y_star: Vector) -> Any:
    r"""Slide "Training a neural network", squared loss:
    :math:`L = \frac{1}{2} \sum_{j=1}^J (y_j - y^*_j)^2`."""
    return sum((y[j] - y_star[j]) ** 2 for j in range(len(y))) / 2


def binary_cross_entropy(y: Any, y_star: Any) -> Any:
    r"""Slide "Training a neural network", binary cross-entropy loss (also slides "Single layer
    network" and "Going forward...."): :math:`L = -y \log(y^*) - (1 - y) \log(1 - y^*)`."""
    return -y * log(y_star) - (1 - y) * log(1 - y_star)


def cross_entropy(y: Vector, y_star: Vector) -> Any:
    r"""Slide "Training a neural network", cross-entropy loss:
    :math:`L = -\sum_{j=1}^J y_j \log y^*_j`."""
    return -sum(y[j] * log(y_star[j]) for j in range(len(y)))


def gradient_descent(w: Any, grad: Any, xi: Any) -> Any:
    r"""Slide "Training a neural network", gradient descent:
    :math:`\mathbf{w}^{t+1} = \mathbf{w}^t - \xi \nabla_{\mathbf{w}^t} L`."""
    return w - xi * grad
