r"""Activation functions A and their derivatives A', as on the slide "Activation function".

Every function maps the pre-activation ``I`` of shape ``(N, out)`` to ``O = A(I)`` of the same shape.
Derivatives are written in terms of the output ``O`` where the slides do so
(sigmoid: :math:`A'(I) = O(1 - O)`, slide "Looking backwards: first layer"), which is also what
torch's own backward formulas use, so saturated outputs give the same zeros both ways.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ._xp import Array, namespace

__all__ = ["activate", "activation_function", "derivative", "softmax_vjp"]


def sigmoid(I: Array) -> Array:
    r""":math:`A(z) = 1 / (1 + \exp(-z))` (slide "Sigmoid"), evaluated as written.

    For z below about -709 (float64) ``exp(-z)`` overflows to inf and ``1 / (1 + inf)`` gives 0, the
    correct limit; NumPy's overflow warning for that is silenced. Every other z is accurate to a few
    units in the last place.
    """
    xp = namespace(I)
    with np.errstate(over="ignore"):
        return 1 / (1 + xp.exp(-I))


def softmax(I: Array) -> Array:
    r""":math:`A(I)_j = \exp(I_j) / \sum_k \exp(I_k)` over the last axis (the J outputs of one example).

    The row maximum is subtracted first, which changes nothing mathematically and avoids overflow.
    """
    xp = namespace(I)
    e = xp.exp(I - xp.max(I, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def activation_function(name: str, xp: Any) -> Callable[[Array], Array]:
    """The function ``I -> A(I)`` for activation ``name`` in namespace ``xp``, resolved once.

    Where the array library has its own fused kernel for the function (torch's ``sigmoid``, ``relu``
    and ``softmax``), that one is used: the same function in one kernel instead of several.
    """
    if name == "identity":
        return lambda I: I
    if name == "sigmoid":
        return xp.sigmoid if hasattr(xp, "sigmoid") else sigmoid
    if name == "tanh":
        return xp.tanh  # slide "tanh": (exp(z) - exp(-z)) / (exp(z) + exp(-z))
    if name == "relu":
        return xp.relu if hasattr(xp, "relu") else lambda I: xp.clip(I, min=0)  # slide "ReLU": max(z, 0)
    if name == "softmax":
        # torch spells the axis ``dim``
        return (lambda I: xp.softmax(I, dim=-1)) if hasattr(xp, "softmax") else softmax
    raise ValueError(f"unknown activation {name!r}")


def activate(name: str, I: Array) -> Array:
    """``O = A(I)`` for the activation ``name``, elementwise except softmax (row-wise)."""
    return activation_function(name, namespace(I))(I)


def derivative(name: str, I: Array, O: Array) -> Array:
    r"""The elementwise derivative :math:`A'(I)`, shape ``(N, out)``; not defined for softmax.

    - identity: 1
    - sigmoid: :math:`O (1 - O)` (slide "Looking backwards: first layer": :math:`z_i(1 - z_i)`)
    - tanh: :math:`1 - O^2`
    - relu: 1 where I > 0, else 0 (the subgradient 0 at I = 0, as torch's ``threshold_backward``)
    """
    xp = namespace(I, O)
    if name == "identity":
        return xp.ones_like(I)
    if name == "sigmoid":
        return O * (1 - O)
    if name == "tanh":
        return 1 - O * O
    if name == "relu":
        return xp.where(I > 0, xp.ones_like(I), xp.zeros_like(I))
    if name == "softmax":
        raise ValueError("softmax has no elementwise derivative; use softmax_vjp")
    raise ValueError(f"unknown activation {name!r}")


def softmax_vjp(O: Array, h: Array) -> Array:
    r"""The vector-Jacobian product of softmax, :math:`\delta_j = O_j (g_j - \sum_k g_k O_k)`, evaluated
    as :math:`\delta = h - O \sum_k h_k` from :math:`h = O \odot g`
    (:func:`manual.losses.output_times_gradient`, where the factor O is cancelled before evaluation).

    ``O`` and ``h`` have shape ``(N, J)``; the Jacobian ``diag(O) - O O^T`` of each row is applied
    without being formed.
    """
    xp = namespace(O, h)
    return h - O * xp.sum(h, axis=-1, keepdims=True)
