"""Wrong user entries and derivations from a new user's trial (issue 21): each hides in one place
where the oracle once trusted the user, and each docstring names that place.

Plain functions and entries; the tests in ``tests/test_soundness_user.py`` hold the oracle to
refusing, naming or rejecting every one of them.
"""

from __future__ import annotations

from typing import Any

import derivations as D
import numpy as np
import torch

import manual
from manual import Activation, Loss, Params

__all__ = [
    "COUPLED_BY_DETACH",
    "COUPLED_IN_GRADIENT",
    "LAYER_NORM",
    "SOFTSIGN_BY_FUNCTION",
    "SOFTSIGN_LOSS_BY_FUNCTION",
    "derivative_off_by",
    "gradient_off_by",
    "scaled_output_weights",
    "tanh_prime_at_output",
]


# ------------------------------------------------------------------------------ custom autograd.Function


class _SoftsignWrongBackward(torch.autograd.Function):
    """softsign O = I / (1 + |I|) forward; a backward missing the square, 1 / (1 + |I|)."""

    @staticmethod
    def forward(ctx: Any, I: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(I)
        return I / (1 + I.abs())

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (I,) = ctx.saved_tensors
        return grad / (1 + I.abs())  # wrong: softsign' = 1 / (1 + |I|)^2


def _softsign_forward(I: Any, xp: Any) -> Any:
    if isinstance(I, torch.Tensor):
        return _SoftsignWrongBackward.apply(I)
    return I / (1 + xp.abs(I))


SOFTSIGN_BY_FUNCTION = Activation(
    "softsign_fn", _softsign_forward, lambda I, O, xp: 1 / (1 + xp.abs(I)), description="the same wrong A'"
)
"""Hides in the reference itself: autograd of the user's forward runs the user's own backward, so a
derivative that agrees with that backward agrees with "autograd" (the circle of issue 21). The
derivative given is the backward's, wrong by the factor 1 / (1 + |I|)."""


class _HalfSquaredWrongBackward(torch.autograd.Function):
    """L = (O - Y)^2 / 2 per entry forward; a backward with the sign of O - Y flipped."""

    @staticmethod
    def forward(ctx: Any, O: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(O, Y)
        return 0.5 * (O - Y) ** 2

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        O, Y = ctx.saved_tensors
        return grad * (Y - O), None  # wrong sign


def _half_squared_value(O: Any, Y: Any, xp: Any) -> Any:
    if isinstance(O, torch.Tensor):
        return xp.sum(1.0 * _HalfSquaredWrongBackward.apply(O, Y), axis=-1)  # the Function inside the graph
    return xp.sum(0.5 * (O - Y) ** 2, axis=-1)


SOFTSIGN_LOSS_BY_FUNCTION = Loss("half_squared_fn", _half_squared_value, lambda O, Y, xp: Y - O)
"""The loss's twin of :data:`SOFTSIGN_BY_FUNCTION`: a value through a custom Function whose backward
has the wrong sign, and a gradient that agrees with that backward."""


# ------------------------------------------------------------------------------ not elementwise


def _layer_norm(I: Any, xp: Any) -> Any:
    mu = xp.mean(I, axis=-1, keepdims=True)
    var = xp.mean((I - mu) ** 2, axis=-1, keepdims=True)
    return (I - mu) / xp.sqrt(var + 1e-5)


def _layer_norm_diagonal(I: Any, O: Any, xp: Any) -> Any:
    # the Jacobian's diagonal only: (1 - 1/n - O^2/n) / sigma
    n = I.shape[-1]
    mu = xp.mean(I, axis=-1, keepdims=True)
    sigma = xp.sqrt(xp.mean((I - mu) ** 2, axis=-1, keepdims=True) + 1e-5)
    return (1 - 1 / n - O * O / n) / sigma


LAYER_NORM = Activation("my_layer_norm", _layer_norm, _layer_norm_diagonal)
"""Hides in the word "activation": every entry with ``derivative`` is taken as elementwise, so the
delta recursion multiplies by the diagonal alone and drops the off-diagonal Jacobian terms that
couple the entries of a row."""


def _coupled_forward(I: Any, xp: Any) -> Any:
    # tanh(I) plus a row term that autograd never sees: the value couples, the Jacobian is diagonal
    row = xp.mean(I, axis=-1, keepdims=True)
    if isinstance(row, torch.Tensor):
        row = row.detach()
    return xp.tanh(I) + 0.1 * row


COUPLED_BY_DETACH = Activation("coupled_tanh", _coupled_forward, lambda I, O, xp: 1 - xp.tanh(I) ** 2)
"""Hides from a Jacobian probe: the row coupling goes through a detached tensor, so autograd's
Jacobian is diagonal while the value of one entry moves with the others."""


def _coupled_in_gradient(I: Any, xp: Any) -> Any:
    # tanh(I) exactly in value (m - m is 0), but autograd differentiates the row mean m
    if not isinstance(I, torch.Tensor):
        return xp.tanh(I)
    m = I.mean(dim=-1, keepdim=True)
    return torch.tanh(I) + (m - m.detach())


COUPLED_IN_GRADIENT = Activation("grad_coupled_tanh", _coupled_in_gradient, lambda I, O, xp: 1 - O * O)
"""Hides from a value probe: every output's value is tanh of its own input, while autograd of the
forward (the reference) carries a row term 1/n between entries."""


# ------------------------------------------------------------------------------ the diagnosis


def tanh_prime_at_output(spec: manual.Spec, p: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """tanh' evaluated at the layer's output, 1 - tanh(O)^2, in every layer (the output's too).

    Hides in a near-linear regime: at small I, tanh'(O) and tanh'(I) agree to O(I^2), so the
    gradients are autograd's times a number near 1 (the trial's "W2 x1.00001")."""

    def dA(name: Any, I: np.ndarray, O: np.ndarray) -> np.ndarray:
        return 1 - np.tanh(O) ** 2 if name == "tanh" else D._dA(name, I, O)

    def output_delta(spec: manual.Spec, I: np.ndarray, O: np.ndarray, Y: np.ndarray) -> np.ndarray:
        if spec.canonical or not spec.activations[-1].elementwise:
            return D._output_delta(spec, I, O, Y)
        return D._g(spec.loss, O, Y) * dA(spec.activations[-1], I, O)

    return D.backprop(spec, p, X, Y, dA=dA, output_delta=output_delta)


def scaled_output_weights(factor: float):
    """A grad_fn whose last weight gradient is autograd's times ``factor`` and every other array
    right. Hides in the per-array factor fit: any factor "fits" an array proportional to autograd's."""

    def grad_fn(spec: manual.Spec, p: Params, X: np.ndarray, Y: np.ndarray) -> Params:
        g = manual.gradients(spec, p, X, Y)
        return Params([*g.weights[:-1], factor * g.weights[-1]], g.biases)

    return grad_fn


# ------------------------------------------------------------------------------ the entry check's bound


def derivative_off_by(entry: Activation, shift: np.ndarray) -> Activation:
    """``entry`` with its derivative moved by ``shift`` (an array of I's shape, for one case): the
    entry check's own bound, pinned. Hides in that bound: a shift within it is a right derivative's
    rounding, one a few times beyond it is a wrong derivative."""

    def derivative(I: Any, O: Any, xp: Any) -> Any:
        return entry.derivative(I, O, xp) + shift  # type: ignore[misc]

    return Activation(entry.name, entry.forward, derivative)


def gradient_off_by(loss: Loss, shift: np.ndarray) -> Loss:
    """``loss`` with its gradient moved by ``shift`` (an array of y*'s shape, for one case)."""

    def gradient(O: Any, Y: Any, xp: Any) -> Any:
        return loss.gradient(O, Y, xp) + shift

    return Loss(loss.name, loss.value, gradient, targets=loss.targets)
