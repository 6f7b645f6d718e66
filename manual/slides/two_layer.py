r"""The 2-layer slides, as written: "2 layer network", "2 layer network with sigmoid activation",
"Looking backwards....", "Looking backwards: second layer", "Looking backwards: first layer",
"First layer weight updates" and "Weight updates: compact representation".

Index notation as on the slides, 0-based in code: ``w1[j - 1][i - 1]`` is :math:`w_{ji}^{(1)}` (from
input :math:`x_j` to hidden unit :math:`z_i`), ``w2[i - 1][0]`` is :math:`w_{i1}^{(2)}`; ``z[i - 1]``
is :math:`z_i`. Sigmoid activations, binary cross-entropy, one output :math:`y^*`.
"""

from __future__ import annotations

from typing import Any

from .activations import sigmoid, sigmoid_derivative
from .losses import binary_cross_entropy

Matrix = Any  # indexable as m[r, c]: a NumPy array, a torch tensor or a sympy Matrix

__all__ = [
    "chain_rule_w22",
    "compact_delta1",
    "compact_delta2",
    "compact_update_w1",
    "compact_update_w2",
    "first_layer_line2",
    "first_layer_line3",
    "first_layer_line4",
    "first_layer_line5",
    "first_layer_line6",
    "first_layer_line7",
    "first_layer_update",
    "first_layer_update_closed_form",
    "hidden_output",
    "loss_of_weights",
    "output",
    "second_layer_line2",
    "second_layer_line3",
    "second_layer_line4",
    "second_layer_update",
    "second_layer_update_closed_form",
]

Vector = Any  # indexable as v[i]: a list, a NumPy array, a torch tensor or sympy symbols


def chain_rule_w22(dL_dy_star: Any, dy_star_dz2: Any, dz2_dw22: Any) -> Any:
    r"""Slide "2 layer network":
    :math:`\frac{\partial L}{\partial w_{22}^{(1)}} = \frac{\partial L}{\partial y^*}
    \frac{\partial y^*}{\partial z_2} \frac{\partial z_2}{\partial w_{22}^{(1)}}`."""
    return dL_dy_star * dy_star_dz2 * dz2_dw22


def hidden_output(w1: Matrix, x: Vector, i: int) -> Any:
    r"""Slide "2 layer network with sigmoid activation":
    :math:`z_1 = \mathcal{A}(w_{11}^{(1)}x_1 + w_{21}^{(1)}x_2)`,
    :math:`z_2 = \mathcal{A}(w_{12}^{(1)}x_1 + w_{22}^{(1)}x_2)`; ``i`` is 0 for :math:`z_1`, 1 for :math:`z_2`."""
    return sigmoid(w1[0, i] * x[0] + w1[1, i] * x[1])


def output(w2: Matrix, z: Vector) -> Any:
    r"""Slide "2 layer network with sigmoid activation": :math:`y^* = \mathcal{A}(w_{11}^{(2)}z_1 + w_{21}^{(2)}z_2)`."""
    return sigmoid(w2[0, 0] * z[0] + w2[1, 0] * z[1])


def loss_of_weights(w1: Matrix, w2: Matrix, x: Vector, y: Any) -> Any:
    r"""Slides "Looking backwards...." and "Looking backwards: first layer", first line: the loss
    :math:`-y \log(y^*) - (1-y) \log(1-y^*)` as a function of the weights; the line is its
    :math:`\partial/\partial w`."""
    z = [hidden_output(w1, x, 0), hidden_output(w1, x, 1)]
    return binary_cross_entropy(y, output(w2, z))


# slide "Looking backwards....": dL/dw_j1^(2)


def second_layer_line2(y: Any, y_star: Any, dA_dw_j1: Any) -> Any:
    r"""Slide "Looking backwards....", second line:
    :math:`\left(-\frac{y}{y^*} + \frac{(1-y)}{(1-y^*)}\right) \frac{\partial \mathcal{A}(\sum_{j=1}^2 w_{j1}^{(2)} z_j)}{\partial w_{j1}^{(2)}}`."""
    return (-y / y_star + (1 - y) / (1 - y_star)) * dA_dw_j1


def second_layer_line3(y: Any, y_star: Any, w2: Matrix, z: Vector, j: int) -> Any:
    r"""Slide "Looking backwards....", third line:
    :math:`\left(\frac{y^* - y}{y^*(1-y^*)}\right) \mathcal{A}'(\mathbf{v}_1^{(2)}) z_j`,
    :math:`\mathbf{v}_1^{(2)} = (\mathbf{w}^{(2)})^T \mathbf{z}`."""
    v = w2[0, 0] * z[0] + w2[1, 0] * z[1]
    return ((y_star - y) / (y_star * (1 - y_star))) * sigmoid_derivative(v) * z[j]


def second_layer_line4(y: Any, y_star: Any, z_j: Any) -> Any:
    r"""Slide "Looking backwards....", last line: :math:`(y^* - y) z_j`."""
    return (y_star - y) * z_j


def second_layer_update(w_j1: Any, dL_dw_j1: Any, xi: Any) -> Any:
    r"""Slide "Looking backwards: second layer":
    :math:`w_{j1}^{(2)} := w_{j1}^{(2)} - \xi \frac{\partial L}{\partial w_{j1}^{(2)}}`."""
    return w_j1 - xi * dL_dw_j1


def second_layer_update_closed_form(w_j1: Any, y: Any, y_star: Any, z_j: Any, xi: Any) -> Any:
    r"""Slide "Looking backwards: second layer": :math:`:= w_{j1}^{(2)} - \xi (y^* - y) z_j`."""
    return w_j1 - xi * (y_star - y) * z_j


# slides "Looking backwards: first layer": dL/dw_ji^(1)


def first_layer_line2(y: Any, y_star: Any, dA_dw_ji: Any) -> Any:
    r"""Slide "Looking backwards: first layer", second line:
    :math:`\left(-\frac{y}{y^*} + \frac{(1 - y)}{(1 - y^*)}\right) \frac{\partial}{\partial w_{ji}^{(1)}}
    \left(\mathcal{A}\left(\sum_{k=1}^2 w_{k1}^{(2)} z_k\right)\right)`."""
    return (-y / y_star + (1 - y) / (1 - y_star)) * dA_dw_ji


def first_layer_line3(y: Any, y_star: Any, dA_dw_ji: Any) -> Any:
    r"""Slide "Looking backwards: first layer", third line:
    :math:`\left(\frac{y^* - y}{y^* (1 - y^*)}\right) \frac{\partial}{\partial w_{ji}^{(1)}}
    \left(\mathcal{A}\left(\sum_{k=1}^2 w_{k1}^{(2)} \mathcal{A}\left(\sum_{m=1}^D w_{mk}^{(1)} x_m\right)\right)\right)`."""
    return ((y_star - y) / (y_star * (1 - y_star))) * dA_dw_ji


def first_layer_line4(y: Any, y_star: Any, w2: Matrix, z: Vector, i: int, dz_i_dw_ji: Any) -> Any:
    r"""Slide "Looking backwards: first layer" (second and third slide), first line:
    :math:`\left(\frac{y^* - y}{y^*(1 - y^*)}\right) \mathcal{A}'(\mathbf{v}_1^{(2)}) w_{i1}^{(2)}
    \frac{\partial \mathcal{A}(\sum_{m=1}^D w_{mi}^{(1)} x_m)}{\partial w_{ji}^{(1)}}`."""
    v = w2[0, 0] * z[0] + w2[1, 0] * z[1]
    return ((y_star - y) / (y_star * (1 - y_star))) * sigmoid_derivative(v) * w2[i, 0] * dz_i_dw_ji


def first_layer_line5(y: Any, y_star: Any, w1: Matrix, w2: Matrix, x: Vector, z: Vector, j: int, i: int) -> Any:
    r"""Slide "Looking backwards: first layer" (second and third slide), second line:
    :math:`\left(\frac{y^* - y}{y^*(1 - y^*)}\right) \mathcal{A}'(\mathbf{v}_1^{(2)}) w_{i1}^{(2)}
    \mathcal{A}'(\mathbf{v}_i^{(1)}) x_j`."""
    v1 = w2[0, 0] * z[0] + w2[1, 0] * z[1]
    v_i = w1[0, i] * x[0] + w1[1, i] * x[1]
    return ((y_star - y) / (y_star * (1 - y_star))) * sigmoid_derivative(v1) * w2[i, 0] * sigmoid_derivative(v_i) * x[j]


def first_layer_line6(y: Any, y_star: Any, w2: Matrix, z: Vector, x: Vector, j: int, i: int) -> Any:
    r"""Slide "Looking backwards: first layer" (third slide), on substitution:
    :math:`\left(\frac{y^* - y}{y^*(1 - y^*)}\right) y^*(1 - y^*) w_{i1}^{(2)} z_i(1 - z_i) x_j`."""
    return ((y_star - y) / (y_star * (1 - y_star))) * y_star * (1 - y_star) * w2[i, 0] * z[i] * (1 - z[i]) * x[j]


def first_layer_line7(y: Any, y_star: Any, w2: Matrix, z: Vector, x: Vector, j: int, i: int) -> Any:
    r"""Slide "Looking backwards: first layer" (third slide), last line:
    :math:`(y^* - y) z_i(1 - z_i) w_{i1}^{(2)} x_j`."""
    return (y_star - y) * z[i] * (1 - z[i]) * w2[i, 0] * x[j]


def first_layer_update(w_ji: Any, dL_dw_ji: Any, xi: Any) -> Any:
    r"""Slide "First layer weight updates":
    :math:`w_{ji}^{(1)} := w_{ji}^{(1)} - \xi \frac{\partial L}{\partial w_{ji}^{(1)}}`."""
    return w_ji - xi * dL_dw_ji


def first_layer_update_closed_form(
    w_ji: Any, y: Any, y_star: Any, w2: Matrix, z: Vector, x: Vector, j: int, i: int, xi: Any
) -> Any:
    r"""Slide "First layer weight updates":
    :math:`:= w_{ji}^{(1)} - \xi w_{i1}^{(2)} (y^* - y) z_i (1 - z_i) x_j`."""
    return w_ji - xi * w2[i, 0] * (y_star - y) * z[i] * (1 - z[i]) * x[j]


# slide "Weight updates: compact representation"


def compact_delta2(y: Any, y_star: Any) -> Any:
    r"""Slide "Weight updates: compact representation": :math:`\delta^{(2)} = (y^* - y)`."""
    return y_star - y


def compact_update_w2(w_j1: Any, delta2: Any, z_j: Any, xi: Any) -> Any:
    r"""Slide "Weight updates: compact representation":
    :math:`w_{j1}^{(2)} := w_{j1}^{(2)} - \xi \delta^{(2)} z_j`."""
    return w_j1 - xi * delta2 * z_j


def compact_delta1(delta2: Any, w2: Matrix, z: Vector, i: int) -> Any:
    r"""Slide "Weight updates: compact representation":
    :math:`\delta_i^{(1)} = \delta^{(2)} w_{i1}^{(2)} z_i (1 - z_i)`."""
    return delta2 * w2[i, 0] * z[i] * (1 - z[i])


def compact_update_w1(w_ji: Any, delta1_i: Any, x_j: Any, xi: Any) -> Any:
    r"""Slide "Weight updates: compact representation":
    :math:`w_{ji}^{(1)} := w_{ji}^{(1)} - \xi \delta_i^{(1)} x_j`."""
    return w_ji - xi * delta1_i * x_j
