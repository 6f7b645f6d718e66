r"""The torch twin of every registry entry: what the reference computes, from torch itself.

For a built-in activation or loss the twin is torch's own function (``nn.Sigmoid``, ``F.gelu(...,
approximate="tanh")``, ``nn.BCELoss``, ``F.huber_loss``), so the check compares the hand derivation
with torch, not with autograd of our own forward. For a user's :class:`manual.Activation` or
:class:`manual.Loss` the twin is the user's own ``forward`` / ``value`` run on torch tensors, and
autograd of it is the reference: the check tests the hand-derived ``derivative`` / ``gradient``
against the function it claims to differentiate. So that autograd of it is torch's and not the
user's, :mod:`torch_ref.twin.user_twin` refuses a custom ``torch.autograd.Function`` there, and probes
an elementwise entry's Jacobian at first use.

Adding a built-in: its entry in :mod:`manual.activations` or :mod:`manual.losses`, and its twin in
the table here; nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

import manual
from manual import Activation, Loss

from .twin.loss_terms import (
    TORCH_BCE_EPSILON,
    AutogradTerms,
    HandTerms,
    LossTerms,
    bce_gradient,
    bce_objective,
    bce_softmax,
    bce_stable_sigmoid,
    bce_stable_softmax,
    ce_gradient,
    ce_objective,
    ce_sigmoid_cancelled,
    ce_softmax,
    squared_gradient,
    squared_objective,
    squared_softmax,
)
from .twin.user_twin import probe_elementwise
from .twin.user_twin import user_forward as _user_forward
from .twin.user_twin import user_value as _user_value

__all__ = ["ActivationTwin", "LossTwin", "activation_twin", "loss_twin"]

Tensor = torch.Tensor


@dataclass(frozen=True, eq=False)
class ActivationTwin:
    """``function(I) -> O`` on torch tensors, and the module form the reference network holds."""

    entry: Activation
    function: Callable[[Tensor], Tensor]

    def module(self) -> nn.Module:
        return _Apply(self.function, self.entry.name)


class _Apply(nn.Module):
    def __init__(self, function: Callable[[Tensor], Tensor], name: str) -> None:
        super().__init__()
        self.function, self.name = function, name

    def forward(self, I: Tensor) -> Tensor:
        return self.function(I)

    def extra_repr(self) -> str:
        return self.name


@dataclass(frozen=True, eq=False)
class LossTwin:
    """A loss as torch computes it.

    Attributes:
        per_example: ``(O, Y) -> (N,)`` on y*, torch's conventions (bce's -100 log floor).
        from_logits: ``{output name: (I, Y) -> (N,)}``: where a torch user passes the logits
            (``CrossEntropyLoss``), torch's value from the output layer's pre-activation.
        exact: ``{output name: (I, Y) -> (N,)}``: the exact objective in a stable form from the logits,
            for losses whose torch convention departs from it (bce's floor); finite differences and
            the exact delta use it. Absent: torch's own value is exact.
        floor: the floor torch's backward divides by (bce: max(y*(1 - y*), 1e-12)), or None.
        hints: ``{output name: text}``: how to evaluate the output delta stably, for the report.
        terms: the tolerance model's loss terms (:mod:`torch_ref.twin.loss_terms`): ``gradient``,
            ``softmax`` and ``objective`` functions.
    """

    entry: Loss
    per_example: Callable[[Tensor, Tensor], Tensor]
    terms: LossTerms
    from_logits: Mapping[str, Callable[[Tensor, Tensor], Tensor]] = field(default_factory=dict)
    exact: Mapping[str, Callable[[Tensor, Tensor], Tensor]] = field(default_factory=dict)
    floor: float | None = None
    hints: Mapping[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ built-ins

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": lambda I: I,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "softmax": partial(torch.softmax, dim=-1),
    "leaky_relu": partial(F.leaky_relu, negative_slope=0.01),
    "elu": partial(F.elu, alpha=1.0),
    "softplus": partial(F.softplus, beta=1.0, threshold=20.0),
    "silu": F.silu,
    "gelu": partial(F.gelu, approximate="tanh"),
}


def _bce_softmax_exact(I: Tensor, Y: Tensor) -> Tensor:
    # log y*_j = I_j - lse(I), log(1 - y*_j) = lse(I_{k != j}) - lse(I): no floor, no clamp
    lse = torch.logsumexp(I, dim=-1, keepdim=True)
    J = I.shape[-1]
    others = I.unsqueeze(-2).masked_fill(torch.eye(J, dtype=torch.bool, device=I.device), float("-inf"))
    log_p, log_q = I - lse, torch.logsumexp(others, dim=-1) - lse
    return -(Y * log_p + (1 - Y) * log_q).sum(-1)


def _ce_softmax_logits(I: Tensor, Y: Tensor) -> Tensor:
    return F.cross_entropy(I, Y, reduction="none")  # probability targets, log-sum-exp inside


def _ce_sigmoid_logits(I: Tensor, Y: Tensor) -> Tensor:
    # no torch loss module is -sum_j y_j log y*_j on sigmoid outputs
    return -(Y * F.logsigmoid(I)).sum(-1)


def _builtin_losses() -> dict[str, LossTwin]:
    L = manual.LOSSES
    return {
        "squared": LossTwin(
            L["squared"],
            lambda O, Y: 0.5 * F.mse_loss(O, Y, reduction="none").sum(-1),
            HandTerms(squared_gradient, squared_softmax, squared_objective),
        ),
        "bce": LossTwin(
            L["bce"],
            lambda O, Y: F.binary_cross_entropy(O, Y, reduction="none").sum(-1),
            HandTerms(
                bce_gradient,
                bce_softmax,
                bce_objective,
                stable={"sigmoid": bce_stable_sigmoid, "softmax": bce_stable_softmax},
            ),
            exact={
                "sigmoid": lambda I, Y: F.binary_cross_entropy_with_logits(I, Y, reduction="none").sum(-1),
                "softmax": _bce_softmax_exact,
            },
            floor=TORCH_BCE_EPSILON,
            hints={
                "sigmoid": "cancel y*(1 - y*) against A' before evaluating: delta = y* - y",
                "softmax": "cancel y* before evaluating: h_j = (y*_j - y_j) / (1 - y*_j) with 1 - y*_j summed "
                "as sum_{k != j} y*_k, then delta = h - y* sum(h); or differentiate the loss written "
                "from the logits with log-sum-exp",
            },
        ),
        "ce": LossTwin(
            L["ce"],
            lambda O, Y: -(Y * torch.log(O)).sum(-1),
            HandTerms(ce_gradient, ce_softmax, ce_objective, {"sigmoid": ce_sigmoid_cancelled}),
            from_logits={"softmax": _ce_softmax_logits, "sigmoid": _ce_sigmoid_logits},
            hints={
                "sigmoid": "cancel y* before evaluating: delta = -y (1 - y*)",
                "softmax": "cancel y* before evaluating: delta = y* sum_k(y_k) - y (= y* - y for targets summing to 1)",
            },
        ),
        "huber": LossTwin(L["huber"], _huber, AutogradTerms(_huber)),
    }


def _huber(O: Tensor, Y: Tensor) -> Tensor:
    return F.huber_loss(O, Y, reduction="none", delta=1.0).sum(-1)


_LOSSES = _builtin_losses()


# ------------------------------------------------------------------------------------------ lookup


def activation_twin(entry: Activation) -> ActivationTwin:
    """torch's function for a built-in entry; the entry's own ``forward`` on torch tensors for a
    user's, once its forward is probed (:mod:`torch_ref.twin.user_twin`: elementwise where it says so,
    no custom autograd Function). ``ValueError`` for a registered entry without a twin (the table
    above is incomplete) or a user entry the probe refuses."""
    if manual.ACTIVATIONS.get(entry.name) is entry:
        if entry.name not in _ACTIVATIONS:
            raise ValueError(f"built-in activation {entry.name!r} has no torch twin in torch_ref.twins")
        return ActivationTwin(entry, _ACTIVATIONS[entry.name])
    probe_elementwise(entry)
    return ActivationTwin(entry, partial(_user_forward, entry))


def loss_twin(entry: Loss) -> LossTwin:
    """torch's loss for a built-in entry; the entry's own ``value`` on torch tensors for a user's."""
    if manual.LOSSES.get(entry.name) is entry:
        if entry.name not in _LOSSES:
            raise ValueError(f"built-in loss {entry.name!r} has no torch twin in torch_ref.twins")
        return _LOSSES[entry.name]

    per_example = partial(_user_value, entry)
    return LossTwin(entry, per_example, AutogradTerms(per_example))
