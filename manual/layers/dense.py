r"""Dense layers in the slides' layout: the fully connected layer and a tanh residual block.

The weight is ``W`` of shape ``(in, out)`` and a batch of row vectors multiplies it from the left,
``u W`` (the slides' :math:`I = W^\top u`, one row per example). torch's ``nn.Linear`` stores the
transpose, ``(out, in)``; the one transpose to that layout is in the twin
(:mod:`torch_ref.layers.builtins.dense`). Parameter gradients are summed over the batch, as the
slides' objective sums over the examples.
"""

from __future__ import annotations

from .._xp import Array, namespace
from .layer import Layer

__all__ = ["LAYERS_HERE", "LINEAR", "RESIDUAL", "linear", "linear_backward", "residual", "residual_backward"]


def _check_affine(x: Array, weight: Array, bias: Array) -> None:
    if len(x.shape) != 2:
        raise ValueError(f"x must have shape (N, I), got shape {tuple(x.shape)}")
    if len(weight.shape) != 2 or weight.shape[0] != x.shape[1]:
        raise ValueError(
            f"weight must have shape (I, O) with I = {x.shape[1]} (x's second dim; the slides' layout, "
            f"the transpose of torch's nn.Linear weight), got shape {tuple(weight.shape)}"
        )
    if tuple(bias.shape) != (weight.shape[1],):
        raise ValueError(f"bias must have shape (O,) = ({weight.shape[1]},), got shape {tuple(bias.shape)}")


def _check_square(weight: Array) -> None:
    if weight.shape[0] != weight.shape[1]:
        raise ValueError(
            f"weight must be square (D, D) for a residual block out = x + tanh(x W + b), got shape {tuple(weight.shape)}"
        )


def _check_dout(dout: Array, shape: tuple[int, ...]) -> None:
    if tuple(dout.shape) != shape:
        raise ValueError(f"dout must have the output's shape {shape}, got shape {tuple(dout.shape)}")


def linear(x: Array, weight: Array, bias: Array) -> Array:
    r"""out = u W + b (slide "Vector form": I = Wᵀu, one row u per example).

    Args:
        x: u, shape ``(N, I)``.
        weight: W, shape ``(I, O)`` (the slides' layout).
        bias: b, shape ``(O,)``.

    Returns:
        out, shape ``(N, O)``.

    Example:
        >>> import numpy as np
        >>> linear(np.ones((2, 3)), np.ones((3, 1)), np.zeros(1)).tolist()
        [[3.0], [3.0]]
    """
    _check_affine(x, weight, bias)
    xp = namespace(x, weight, bias)
    return xp.matmul(x, weight) + bias


def linear_backward(dout: Array, x: Array, weight: Array, bias: Array) -> dict[str, Array | None]:
    r"""δ through out = u W + b.

    Shapes: u = x (N, I), W (I, O), b (O,), δ = dout (N, O)::

        δ_u = δ Wᵀ            (N, I)
        δ_W = uᵀ δ            (I, O), summed over the N examples
        δ_b = Σ_n δ[n, :]     (O,), summed over the N examples

    Returns:
        ``{"x": δ_u, "weight": δ_W, "bias": δ_b}``.
    """
    _check_affine(x, weight, bias)
    _check_dout(dout, (x.shape[0], weight.shape[1]))
    xp = namespace(dout, x, weight, bias)
    u, W, delta = x, weight, dout
    return {
        "x": xp.matmul(delta, W.T),
        "weight": xp.matmul(u.T, delta),
        "bias": xp.sum(delta, axis=0),
    }


def residual(x: Array, weight: Array, bias: Array) -> Array:
    r"""out = u + O, O = tanh(I), I = u W + b: a tanh branch added to its own input.

    Args:
        x: u, shape ``(N, D)``.
        weight: W, shape ``(D, D)``.
        bias: b, shape ``(D,)``.

    Returns:
        out, shape ``(N, D)``.
    """
    _check_affine(x, weight, bias)
    _check_square(weight)
    xp = namespace(x, weight, bias)
    return x + xp.tanh(xp.matmul(x, weight) + bias)


def residual_backward(dout: Array, x: Array, weight: Array, bias: Array) -> dict[str, Array | None]:
    r"""δ through out = u + tanh(u W + b): the skip path passes δ on unchanged, the branch is a tanh
    layer (slide "tanh": A'(I) = 1 - O², taken at the output O, not at I).

    Shapes: u = x (N, D), W (D, D), b (D,), δ = dout (N, D), I and O (N, D)::

        I   = u W + b                (N, D)
        O   = tanh(I)                (N, D)
        δ_I = δ ⊙ (1 - O ⊙ O)        (N, D)
        δ_u = δ + δ_I Wᵀ             (N, D), skip path plus branch
        δ_W = uᵀ δ_I                 (D, D), summed over the N examples
        δ_b = Σ_n δ_I[n, :]          (D,), summed over the N examples

    Returns:
        ``{"x": δ_u, "weight": δ_W, "bias": δ_b}``.
    """
    _check_affine(x, weight, bias)
    _check_square(weight)
    _check_dout(dout, tuple(x.shape))
    xp = namespace(dout, x, weight, bias)
    u, W, delta = x, weight, dout
    I = xp.matmul(u, W) + bias
    O = xp.tanh(I)
    delta_I = delta * (1 - O * O)
    return {
        "x": delta + xp.matmul(delta_I, W.T),
        "weight": xp.matmul(u.T, delta_I),
        "bias": xp.sum(delta_I, axis=0),
    }


LINEAR = Layer(
    "linear",
    linear,
    linear_backward,
    params=("weight", "bias"),
    shapes={"x": "N I", "weight": "I O", "bias": "O", "out": "N O"},
    description="out = x W + b, W of shape (in, out)",
)

RESIDUAL = Layer(
    "residual",
    residual,
    residual_backward,
    params=("weight", "bias"),
    shapes={"x": "N D", "weight": "D D", "bias": "D", "out": "N D"},
    description="out = x + tanh(x W + b)",
)

LAYERS_HERE = (LINEAR, RESIDUAL)
