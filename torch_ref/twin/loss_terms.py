r"""The loss-side terms of the tolerance model, from the reference's float64 values.

Three functions per loss, each on NumPy float64 arrays of shape ``(N, J)``:

- ``gradient(O, Y, e_O) -> (g, G, c)``: ``g`` = dL/dy*; ``G`` the magnitude of its own evaluation
  error (error <= unit * G); ``c`` how an error already in y* (magnitude ``e_O``) is carried on,
  :math:`\sum_k |\partial g_j / \partial y^*_k| e_{O,k}`;
- ``softmax(O, Y, e_O) -> (h, H, c)``: the same for :math:`h = y^* \odot g`, the form in which a
  softmax output's vector-Jacobian product is evaluated;
- ``objective(output, I, O, Y, e_I, e_O) -> M``: the magnitude of the loss value's rounding error,
  summed over the batch by the caller.

The built-in squared, bce and ce losses have hand-derived terms (below; bce divides by
:math:`\max(y^*(1 - y^*), \epsilon)`, torch's floor). Every other loss, a user's own included, gets
:class:`AutogradTerms`: a documented conservative model whose quantities autograd evaluates at the
drawn points, so nobody writes error facts by hand. Its assumption is that a correct evaluation is
as good as an exact one on inputs perturbed relatively by the rounding unit (backward stability),
plus one rounding unit of the formula's intermediate terms, taken to be of order 1 (as for the
activations, :func:`torch_ref.numerics.tolerance._derivative_error`): log(cosh(d)) near d = 0 rounds cosh to
1 and is off by about one unit of 1 while L is of order d^2:

.. math::
    G_j = |g_j| + \sum_k |\partial g_j/\partial y^*_k|\,|y^*_k| + \sum_k |\partial g_j/\partial y_k|\,|y_k| + 1

and for the value :math:`|L| + \sum_j \left(|g_j| (|y^*_j| + e_{O,j}) + |\partial L/\partial y_j|\,|y_j| + 1\right)`,
the derivatives in y* and y taken by (double) autograd of the loss's per-example torch value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np
import torch

from manual.losses import LOG_FLOOR

__all__ = [
    "AutogradTerms",
    "HandTerms",
    "LossTerms",
    "bce_gradient",
    "bce_objective",
    "bce_softmax",
    "bce_stable_sigmoid",
    "bce_stable_softmax",
    "ce_gradient",
    "ce_objective",
    "ce_sigmoid_cancelled",
    "ce_softmax",
    "squared_gradient",
    "squared_objective",
    "squared_softmax",
]

# torch's BCELoss backward divides by max(y*(1 - y*), EPSILON) (aten/src/ATen/native/Loss.cpp,
# binary_cross_entropy_backward), EPSILON being the float32 constant 1e-12 promoted to float64.
TORCH_BCE_EPSILON = 9.999999960041972e-13

Terms = tuple[np.ndarray, np.ndarray, np.ndarray]


class LossTerms(Protocol):
    """What the tolerance model reads of a loss (see the module docstring)."""

    @property
    def cancelled(self) -> Mapping[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]]: ...

    @property
    def stable(self) -> Mapping[str, Callable[..., np.ndarray]]: ...

    def gradient(self, O: np.ndarray, Y: np.ndarray, e_O: np.ndarray) -> Terms: ...

    def softmax(self, O: np.ndarray, Y: np.ndarray, e_O: np.ndarray) -> Terms: ...

    def objective(
        self, output: str, I: np.ndarray, O: np.ndarray, Y: np.ndarray, e_I: np.ndarray, e_O: np.ndarray
    ) -> np.ndarray: ...


class HandTerms:
    """Hand-derived terms of a built-in loss; ``cancelled`` maps an output name to the magnitude of the
    entry's cancelled delta form, ``(O, Y, e_O) -> M``; ``stable`` maps an output name to the
    magnitude of the output delta evaluated in the loss's stable form from the logits (the twin's
    ``exact`` form), ``(I, O, Y, e_I, e_O) -> M``, where torch's formula divides by y*(1 - y*)."""

    def __init__(
        self,
        gradient: Callable[..., Terms],
        softmax: Callable[..., Terms],
        objective: Callable[..., np.ndarray],
        cancelled: Mapping[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] | None = None,
        stable: Mapping[str, Callable[..., np.ndarray]] | None = None,
    ) -> None:
        self._gradient, self._softmax, self._objective = gradient, softmax, objective
        self.cancelled = dict(cancelled or {})
        self.stable = dict(stable or {})

    def gradient(self, O: np.ndarray, Y: np.ndarray, e_O: np.ndarray) -> Terms:
        return self._gradient(O, Y, e_O)

    def softmax(self, O: np.ndarray, Y: np.ndarray, e_O: np.ndarray) -> Terms:
        return self._softmax(O, Y, e_O)

    def objective(
        self, output: str, I: np.ndarray, O: np.ndarray, Y: np.ndarray, e_I: np.ndarray, e_O: np.ndarray
    ) -> np.ndarray:
        return self._objective(output, I, O, Y, e_I, e_O)


# ------------------------------------------------------------------------------------------ squared


def squared_gradient(O: np.ndarray, Y: np.ndarray, e_O: np.ndarray) -> Terms:
    return O - Y, np.abs(O) + np.abs(Y), e_O


def squared_softmax(O: np.ndarray, Y: np.ndarray, e_O: np.ndarray) -> Terms:
    return O * (O - Y), O * (np.abs(O) + np.abs(Y)), np.abs(2 * O - Y) * e_O


def squared_objective(
    output: str, I: np.ndarray, O: np.ndarray, Y: np.ndarray, e_I: np.ndarray, e_O: np.ndarray
) -> np.ndarray:
    d = np.abs(O - Y)
    return 0.5 * d**2 + d * (np.abs(O) + np.abs(Y) + e_O)


# ------------------------------------------------------------------------------------------ bce


def bce_gradient(O: np.ndarray, Y: np.ndarray, e_O: np.ndarray) -> Terms:
    p = np.maximum(O * (1 - O), TORCH_BCE_EPSILON)
    dg = (p + np.abs(O - Y) * np.abs(1 - 2 * O)) / p**2
    return (O - Y) / p, (np.abs(O) + np.abs(Y)) / p, dg * e_O


def bce_softmax(O: np.ndarray, Y: np.ndarray, e_O: np.ndarray) -> Terms:
    p = O * (1 - O)
    floored = p < TORCH_BCE_EPSILON
    q = np.maximum(p, TORCH_BCE_EPSILON)
    with np.errstate(divide="ignore", invalid="ignore"):
        dh = np.where(floored, np.abs(2 * O - Y) / TORCH_BCE_EPSILON, np.abs(1 - Y) / (1 - O) ** 2)
    return O * (O - Y) / q, O * (np.abs(O) + np.abs(Y)) / q, dh * e_O


def bce_stable_sigmoid(I: np.ndarray, O: np.ndarray, Y: np.ndarray, e_I: np.ndarray, e_O: np.ndarray) -> np.ndarray:
    """delta = y* - y (sigmoid + bce, no division): its terms and y*'s error carried on."""
    return e_O + np.abs(O) + np.abs(Y)


def bce_stable_softmax(I: np.ndarray, O: np.ndarray, Y: np.ndarray, e_I: np.ndarray, e_O: np.ndarray) -> np.ndarray:
    r"""The exact delta from the logits, no division:
    :math:`\delta_j = J y^*_j - y_j - \sum_{k \ne j} (1 - y_k)\, q^{(k)}_j` with :math:`q^{(k)}` the
    softmax over the units other than k (each in [0, 1]); its terms on absolute values, y*'s error
    carried on (J e_O) and each q's error, relative :math:`e_{I,j} + \max_k e_{I,k}` as softmax's own."""
    J = O.shape[-1]
    r = e_I + np.max(e_I, axis=-1, keepdims=True)
    others = np.sum(np.abs(1 - Y), axis=-1, keepdims=True)
    return J * (np.abs(O) + e_O) + np.abs(Y) + others * (1 + r)


def bce_objective(
    output: str, I: np.ndarray, O: np.ndarray, Y: np.ndarray, e_I: np.ndarray, e_O: np.ndarray
) -> np.ndarray:
    floor = np.exp(LOG_FLOOR)
    p, q = np.maximum(O, floor), np.maximum(1 - O, floor)
    logs = np.abs(Y) * np.abs(np.log(p)) + np.abs(1 - Y) * np.abs(np.log(q))
    return logs + (np.abs(Y) / p + np.abs(1 - Y) / q) * (e_O + 1 + np.abs(O))


# ------------------------------------------------------------------------------------------ ce


def ce_gradient(O: np.ndarray, Y: np.ndarray, e_O: np.ndarray) -> Terms:
    return -Y / O, np.abs(Y) / O, np.abs(Y) / O**2 * e_O


def ce_softmax(O: np.ndarray, Y: np.ndarray, e_O: np.ndarray) -> Terms:
    return -Y, np.abs(Y), np.zeros_like(O)


def ce_sigmoid_cancelled(O: np.ndarray, Y: np.ndarray, e_O: np.ndarray) -> np.ndarray:
    """delta = -y (1 - y*), y* cancelled: its magnitude and y*'s error carried on."""
    return np.abs(Y) * (1 + np.abs(O)) + np.abs(Y) * e_O


def ce_objective(
    output: str, I: np.ndarray, O: np.ndarray, Y: np.ndarray, e_I: np.ndarray, e_O: np.ndarray
) -> np.ndarray:
    """ce is evaluated from the logits I (log-softmax, log-sigmoid)."""
    if output == "softmax":
        m = I.max(axis=-1, keepdims=True)
        lse = np.log(np.sum(np.exp(I - m), axis=-1, keepdims=True)) + m
        J = I.shape[-1]
        return np.abs(Y) * (np.abs(I) + 2 * np.abs(lse) + J + e_I + e_I.max(axis=-1, keepdims=True))
    log_sigmoid = -np.logaddexp(0.0, -I)
    return np.abs(Y) * (np.abs(log_sigmoid) + 1 + e_I)


# ------------------------------------------------------------------------------------------ generic


class AutogradTerms:
    """The conservative model of the module docstring for a loss given as a torch function
    ``per_example(O, Y) -> (N,)``; first and second derivatives by autograd at the drawn points."""

    def __init__(self, per_example: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        self.per_example = per_example
        # a user's cancelled delta form is bounded by the general formula's terms: no entries; a
        # user's loss has no floor, so no stable form is needed in place of a floored division
        self.cancelled: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {}
        self.stable: dict[str, Callable[..., np.ndarray]] = {}

    def _derivatives(self, O: np.ndarray, Y: np.ndarray):
        Ot = torch.from_numpy(np.array(O, dtype=np.float64)).requires_grad_(True)
        Yt = torch.from_numpy(np.array(Y, dtype=np.float64)).requires_grad_(True)
        L = self.per_example(Ot, Yt)
        g, gY = torch.autograd.grad(L.sum(), (Ot, Yt), create_graph=True, allow_unused=True)
        if g is None:
            g = torch.zeros_like(Ot)
        J = O.shape[-1]
        H = np.zeros((*O.shape, J))  # H[n, j, k] = d g_j / d O_k
        HY = np.zeros((*O.shape, J))  # d g_j / d Y_k
        for j in range(J):
            if not g.requires_grad:
                break
            dO, dY = torch.autograd.grad(g[:, j].sum(), (Ot, Yt), retain_graph=True, allow_unused=True)
            H[:, j, :] = 0 if dO is None else dO.detach().numpy()
            HY[:, j, :] = 0 if dY is None else dY.detach().numpy()
        gY_np = np.zeros_like(O) if gY is None else gY.detach().numpy()
        return L.detach().numpy(), g.detach().numpy(), gY_np, np.abs(H), np.abs(HY)

    def gradient(self, O: np.ndarray, Y: np.ndarray, e_O: np.ndarray) -> Terms:
        _, g, _, H, HY = self._derivatives(O, Y)
        G = np.abs(g) + np.einsum("njk,nk->nj", H, np.abs(O)) + np.einsum("njk,nk->nj", HY, np.abs(Y)) + 1
        return g, G, np.einsum("njk,nk->nj", H, e_O)

    def softmax(self, O: np.ndarray, Y: np.ndarray, e_O: np.ndarray) -> Terms:
        _, g, _, H, HY = self._derivatives(O, Y)
        G = np.abs(g) + np.einsum("njk,nk->nj", H, np.abs(O)) + np.einsum("njk,nk->nj", HY, np.abs(Y)) + 1
        # d h_j / d O_k = [j = k] g_j + O_j H_jk
        carried = np.abs(g) * e_O + np.abs(O) * np.einsum("njk,nk->nj", H, e_O)
        return O * g, np.abs(O) * G + np.abs(g) * np.abs(O), carried

    def objective(
        self, output: str, I: np.ndarray, O: np.ndarray, Y: np.ndarray, e_I: np.ndarray, e_O: np.ndarray
    ) -> np.ndarray:
        L, g, gY, _, _ = self._derivatives(O, Y)
        per_example = np.abs(L) + np.sum(np.abs(g) * (np.abs(O) + e_O) + np.abs(gY) * np.abs(Y) + 1, axis=-1)
        return per_example
