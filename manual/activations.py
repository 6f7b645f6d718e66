r"""Activation functions A and their derivatives A', as on the slide "Activation function".

Every function maps the pre-activation ``I`` of shape ``(N, out)`` to ``O = A(I)`` of the same shape.
Derivatives are written in terms of the output ``O`` where the slides do so
(sigmoid: :math:`A'(I) = O(1 - O)`, slide "Looking backwards: first layer"), which is also what
torch's own backward formulas use, so saturated outputs give the same zeros both ways.
"""

from __future__ import annotations

from ._xp import Array, namespace

__all__ = ["activate", "derivative", "softmax_vjp"]


def sigmoid(I: Array) -> Array:
    r""":math:`A(z) = 1 / (1 + \exp(-z))` (slide "Sigmoid").

    Evaluated as ``1 / (1 + e)`` for z >= 0 and ``e / (1 + e)`` for z < 0 with ``e = exp(-|z|)``,
    so no exponential overflows.
    """
    xp = namespace(I)
    e = xp.exp(-xp.abs(I))
    return xp.where(I >= 0, 1 / (1 + e), e / (1 + e))


def softmax(I: Array) -> Array:
    r""":math:`A(I)_j = \exp(I_j) / \sum_k \exp(I_k)` over the last axis (the J outputs of one example).

    The row maximum is subtracted first, which changes nothing mathematically and avoids overflow.
    """
    xp = namespace(I)
    e = xp.exp(I - xp.max(I, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def activate(name: str, I: Array) -> Array:
    """``O = A(I)`` for the activation ``name``, elementwise except softmax (row-wise)."""
    xp = namespace(I)
    if name == "identity":
        return I
    if name == "sigmoid":
        return sigmoid(I)
    if name == "tanh":
        return xp.tanh(I)  # slide "tanh": (exp(z) - exp(-z)) / (exp(z) + exp(-z))
    if name == "relu":
        return xp.where(I > 0, I, xp.zeros_like(I))  # slide "ReLU": max(z, 0)
    if name == "softmax":
        return softmax(I)
    raise ValueError(f"unknown activation {name!r}")


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


def softmax_vjp(O: Array, g: Array) -> Array:
    r"""The vector-Jacobian product of softmax: :math:`\delta_j = O_j (g_j - \sum_k g_k O_k)`.

    ``O`` and ``g`` (= dL/dO) have shape ``(N, J)``; the Jacobian ``diag(O) - O O^T`` of each row is
    applied without being formed.
    """
    xp = namespace(O, g)
    return O * (g - xp.sum(g * O, axis=-1, keepdims=True))
