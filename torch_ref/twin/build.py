"""The reference network, built from torch's own modules and losses.

This is the one place where the slides' weight layout ``W: (in, out)`` meets ``nn.Linear``'s
``weight: (out, in)``: :func:`_swap_layout` is applied on the way in and on the way out.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from manual import Params, Spec
from manual.validate import check_params

from ..twins import activation_twin, loss_twin
from .convert import to_torch

__all__ = ["Network", "build"]


def _grad(t: torch.Tensor) -> torch.Tensor:
    """``t.grad``, which a backward pass has filled (zeros where it has not)."""
    return t.grad if t.grad is not None else torch.zeros_like(t)


def _swap_layout(W: torch.Tensor) -> torch.Tensor:
    """Slides' ``(in, out)`` <-> ``nn.Linear``'s ``(out, in)``: a transpose, its own inverse."""
    return W.T


class Network(nn.Module):
    """``nn.Linear`` layers with each activation's torch twin, and the spec's objective from the loss's
    twin (:mod:`torch_ref.twins`): torch's own losses for the built-ins (squared ``0.5 * MSELoss``, bce
    ``BCELoss`` on y*, ce ``CrossEntropyLoss`` on the logits with probability targets or
    ``-(Y * logsigmoid(I))`` on sigmoid logits, huber ``HuberLoss(delta=1)``), summed over the J outputs.

    The sum over the batch is divided by N for ``reduction="mean"`` (torch's own "mean" of MSELoss
    and BCELoss divides by N * J, which is not the contract's definition).
    """

    def __init__(self, spec: Spec, params: Params) -> None:
        super().__init__()
        self.spec = spec
        self.linears = nn.ModuleList(
            _linear(to_torch(params.weights[l]), None if params.biases is None else to_torch(params.biases[l]))
            for l in range(spec.depth)
        )
        self.activations = nn.ModuleList(activation_twin(entry).module() for entry in spec.activations)
        self.loss = loss_twin(spec.loss)
        self._from_logits = self.loss.from_logits.get(spec.activations[-1].name)

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

    def objective_from(self, I_last: torch.Tensor | None, O_last: torch.Tensor | None, Y: torch.Tensor) -> torch.Tensor:
        """The objective given the output layer's ``I`` and ``O``: a loss taken from the logits reads
        ``I`` only, every other ``O`` only (the other may be ``None``)."""
        if self._from_logits is not None:
            if I_last is None:
                raise ValueError(f"loss {self.spec.loss.name!r} is taken from the logits: pass the output layer's I")
            total = self._from_logits(I_last, Y).sum()
        elif O_last is not None:
            total = self.loss.per_example(O_last, Y).sum()
        else:
            raise ValueError(f"loss {self.spec.loss.name!r} is taken on y*: pass the output layer's O")
        return total / Y.shape[0] if self.spec.reduction == "mean" else total

    def objective(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """The scalar objective: sum (or mean over N) of the per-example losses.

        Losses that take logits (ce with softmax, ce with sigmoid) are given I^(L) and the output
        activation is not evaluated, as a user of torch's losses would write it.
        """
        u = X
        for l, (linear, activation) in enumerate(zip(self.linears, self.activations)):
            I = linear(u)
            if self._from_logits is not None and l == self.spec.depth - 1:
                return self.objective_from(I, None, Y)
            u = activation(I)
        return self.objective_from(I, u, Y)

    def layers(self) -> list[nn.Linear]:
        """The ``nn.Linear`` layers, first to last."""
        return [cast(nn.Linear, linear) for linear in self.linears]

    def params(self) -> Params:
        """The current weights in the slides' layout, detached tensors."""
        weights = [_swap_layout(linear.weight.detach()) for linear in self.layers()]
        biases = [cast(torch.Tensor, linear.bias).detach() for linear in self.layers()] if self.spec.bias else None
        return Params(weights, biases)

    def grads(self) -> Params:
        """The ``.grad`` of every parameter in the slides' layout."""
        weights = [_swap_layout(_grad(linear.weight)) for linear in self.layers()]
        biases = [_grad(cast(torch.Tensor, linear.bias)) for linear in self.layers()] if self.spec.bias else None
        return Params(weights, biases)


def _linear(W: torch.Tensor, b: torch.Tensor | None) -> nn.Linear:
    """An ``nn.Linear`` holding copies of ``W`` (the slides' (in, out) layout, stored as torch's
    (out, in)) and ``b``. Made without ``nn.Linear.__init__``, whose random initialisation would be
    overwritten at once: half the cost of building a network, which the oracle does for every case."""
    linear = nn.Linear.__new__(nn.Linear)
    nn.Module.__init__(linear)
    linear.in_features, linear.out_features = W.shape
    linear.weight = nn.Parameter(_swap_layout(W).clone(memory_format=torch.contiguous_format))
    if b is None:
        linear.register_parameter("bias", None)
    else:
        linear.bias = nn.Parameter(b.clone())
    return linear


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
