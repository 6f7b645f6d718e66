"""The reference network, built from torch's own modules and losses.

This is the one place where the slides' weight layout ``W: (in, out)`` meets ``nn.Linear``'s
``weight: (out, in)``: :func:`_swap_layout` is applied on the way in and on the way out.
"""

from __future__ import annotations

import torch
from torch import nn

from manual import Params, Spec
from manual.validate import check_params

from ._convert import to_torch

__all__ = ["Network", "build"]

_ACTIVATION_MODULES = {
    "identity": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "softmax": lambda: nn.Softmax(dim=-1),
}


def _swap_layout(W: torch.Tensor) -> torch.Tensor:
    """Slides' ``(in, out)`` <-> ``nn.Linear``'s ``(out, in)``: a transpose, its own inverse."""
    return W.T


class Network(nn.Module):
    """``nn.Linear`` layers with torch activation modules, and the spec's objective from torch losses.

    - squared: ``0.5 * MSELoss(reduction="sum")``
    - bce: ``BCELoss(reduction="sum")`` on the outputs y*
    - ce with softmax: ``CrossEntropyLoss(reduction="sum")`` on the logits I^(L) with probability
      targets; ce with sigmoid: ``-(Y * logsigmoid(I^(L))).sum()`` (no torch loss module is
      -sum_j y_j log y*_j on sigmoid outputs)

    The sum over the batch is divided by N for ``reduction="mean"`` (torch's own "mean" of MSELoss
    and BCELoss divides by N * J, which is not the contract's definition).
    """

    def __init__(self, spec: Spec, params: Params) -> None:
        super().__init__()
        self.spec = spec
        W0 = to_torch(params.weights[0])
        self.linears = nn.ModuleList()
        for l, (fan_in, fan_out) in enumerate(spec.shapes()):
            linear = nn.Linear(fan_in, fan_out, bias=spec.bias, dtype=W0.dtype, device=W0.device)
            with torch.no_grad():
                linear.weight.copy_(_swap_layout(to_torch(params.weights[l])))
                if spec.bias:
                    linear.bias.copy_(to_torch(params.biases[l]))
            self.linears.append(linear)
        self.activations = nn.ModuleList(_ACTIVATION_MODULES[name]() for name in spec.activations)
        self._criterion = {
            "squared": nn.MSELoss(reduction="sum"),
            "bce": nn.BCELoss(reduction="sum"),
            "ce": nn.CrossEntropyLoss(reduction="sum"),
        }[spec.loss]

    def forward_all(self, X: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Pre-activations ``I`` and outputs ``O`` of every layer, as lists indexed ``l - 1``."""
        I, O = [], []
        u = X
        for linear, activation in zip(self.linears, self.activations):
            I.append(linear(u))
            u = activation(I[-1])
            O.append(u)
        return I, O

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """The prediction y*, shape ``(N, J)``."""
        return self.forward_all(X)[1][-1]

    def objective_from(self, I_last: torch.Tensor, O_last: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """The objective given the output layer's ``I`` and ``O``."""
        spec = self.spec
        if spec.loss == "squared":
            total = 0.5 * self._criterion(O_last, Y)
        elif spec.loss == "bce":
            total = self._criterion(O_last, Y)
        elif spec.activations[-1] == "softmax":
            total = self._criterion(I_last, Y)
        else:
            total = -(Y * nn.functional.logsigmoid(I_last)).sum()
        return total / Y.shape[0] if spec.reduction == "mean" else total

    def objective(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """The scalar objective: sum (or mean over N) of the per-example losses.

        Losses that take logits (ce with softmax, ce with sigmoid) are given I^(L) and the output
        activation is not evaluated, as a user of torch's losses would write it.
        """
        takes_logits = self.spec.loss == "ce"
        u = X
        for l, (linear, activation) in enumerate(zip(self.linears, self.activations)):
            I = linear(u)
            if takes_logits and l == self.spec.depth - 1:
                return self.objective_from(I, None, Y)
            u = activation(I)
        return self.objective_from(I, u, Y)

    def params(self) -> Params:
        """The current weights in the slides' layout, detached tensors."""
        weights = [_swap_layout(linear.weight.detach()) for linear in self.linears]
        biases = [linear.bias.detach() for linear in self.linears] if self.spec.bias else None
        return Params(weights, biases)

    def grads(self) -> Params:
        """The ``.grad`` of every parameter in the slides' layout."""
        weights = [_swap_layout(linear.weight.grad) for linear in self.linears]
        biases = [linear.bias.grad for linear in self.linears] if self.spec.bias else None
        return Params(weights, biases)


def build(spec: Spec, params: Params) -> Network:
    """A :class:`Network` holding copies of ``params`` (NumPy arrays or tensors), on their device.

    Example:
        >>> import numpy as np
        >>> from manual import Spec, init_params
        >>> spec = Spec((2, 2, 1), ("sigmoid", "sigmoid"), "bce")
        >>> net = build(spec, init_params(spec, np.random.default_rng(0)))
        >>> net.linears[0].weight.shape
        torch.Size([2, 2])
    """
    check_params(spec, params)
    return Network(spec, params)
