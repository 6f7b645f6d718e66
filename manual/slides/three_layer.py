r"""Slide "3 layer network": :math:`\partial L / \partial w_{22}^{(1)}` as a sum over the paths from
:math:`w_{22}^{(1)}` to the loss, as written and corrected.

The network the indices imply: inputs :math:`x_1, x_2`, hidden layers :math:`z^{(1)}_{1,2}` and
:math:`z^{(2)}_{1,2}`, one output :math:`y^*` (2-2-2-1). Each argument is one partial derivative of
the formula, named after it: ``dz2_2__dz2_1`` is :math:`\partial z_2^{(2)} / \partial z_2^{(1)}`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["path_sum_w22", "path_sum_w22_corrected"]


def path_sum_w22(
    dL_dy: Any, dy__dz2_2: Any, dz2_2__dz2_1: Any, dz2_1__dw22: Any, dy__dz1_2: Any, dz1_2__dz1_1: Any, dz1_1__dw22: Any
) -> Any:
    r"""Slide "3 layer network", as written:

    .. math::
        \frac{\partial L}{\partial w_{22}^{(1)}} =
        \underbrace{\frac{\partial L}{\partial y^*} \frac{\partial y^*}{\partial z_2^{(2)}}
        \frac{\partial z_2^{(2)}}{\partial z_2^{(1)}} \frac{\partial z_2^{(1)}}{\partial w_{22}^{(1)}}}_{\text{blue}}
        + \underbrace{\frac{\partial L}{\partial y^*} \frac{\partial y^*}{\partial z_1^{(2)}}
        \frac{\partial z_1^{(2)}}{\partial z_1^{(1)}} \frac{\partial z_1^{(1)}}{\partial w_{22}^{(1)}}}_{\text{red}}

    The red path runs through :math:`z_1^{(1)}`, which :math:`w_{22}^{(1)}` does not feed:
    :math:`\partial z_1^{(1)} / \partial w_{22}^{(1)} = 0`, so as written the sum is the blue path alone.
    """
    blue = dL_dy * dy__dz2_2 * dz2_2__dz2_1 * dz2_1__dw22
    red = dL_dy * dy__dz1_2 * dz1_2__dz1_1 * dz1_1__dw22
    return blue + red


def path_sum_w22_corrected(
    dL_dy: Any, dy__dz2_2: Any, dz2_2__dz2_1: Any, dz2_1__dw22: Any, dy__dz1_2: Any, dz1_2__dz2_1: Any
) -> Any:
    r"""Slide "3 layer network", corrected: both paths leave :math:`w_{22}^{(1)}` through
    :math:`z_2^{(1)}` and part at the second hidden layer, so the red path's last two factors are
    :math:`\frac{\partial z_1^{(2)}}{\partial z_2^{(1)}} \frac{\partial z_2^{(1)}}{\partial w_{22}^{(1)}}`:

    .. math::
        \frac{\partial L}{\partial y^*} \frac{\partial y^*}{\partial z_2^{(2)}}
        \frac{\partial z_2^{(2)}}{\partial z_2^{(1)}} \frac{\partial z_2^{(1)}}{\partial w_{22}^{(1)}}
        + \frac{\partial L}{\partial y^*} \frac{\partial y^*}{\partial z_1^{(2)}}
        \frac{\partial z_1^{(2)}}{\partial z_2^{(1)}} \frac{\partial z_2^{(1)}}{\partial w_{22}^{(1)}}
    """
    blue = dL_dy * dy__dz2_2 * dz2_2__dz2_1 * dz2_1__dw22
    red = dL_dy * dy__dz1_2 * dz1_2__dz2_1 * dz2_1__dw22
    return blue + red
