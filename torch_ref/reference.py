r"""The float64 reference: one autograd pass of the torch network, read by every check.

A check needs more than autograd's gradients: the tolerance model needs the forward intermediates
(``u``, ``I``, ``O``), :math:`\mathcal{A}'(I)` and the deltas; the diagnosis and the blame need the
objective. All of them come from torch here (``nn.Linear``, torch's activation modules and losses,
``.backward()``), never from :mod:`manual`, so a bug in the code under test cannot loosen or bend
its own check.

Two objectives are kept apart:

- torch's (:meth:`torch_ref.build.Network.objective`): ``BCELoss`` floors each log at -100 and its
  backward divides by :math:`\max(y^*(1-y^*), 10^{-12})`; these are the conventions a torch user
  gets, and the gradients of :class:`Reference` follow them.
- the exact one (:func:`exact_objective`): every loss from the logits :math:`I^{(L)}` in a stable
  form (log-sigmoid, log-softmax, and for bce on softmax :math:`\log(1 - y^*_j)` as a log-sum-exp
  over the other units), with no floor and no clamp. Where torch's bce floor is in effect
  (:attr:`Reference.floored`), :attr:`Reference.exact_delta` holds the exact output delta, so a
  derivation that is exact there is accepted too; finite differences (:mod:`torch_ref.blame`)
  differentiate the exact objective.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from manual import Params, Spec

from ._convert import as_numpy64, params_as_numpy64
from .build import _ACTIVATION_MODULES, build

__all__ = ["LOG_FLOOR", "Reference", "TORCH_BCE_EPSILON", "exact_objective", "objective_in", "reference"]

# torch's BCELoss backward divides by max(y*(1 - y*), EPSILON) (aten/src/ATen/native/Loss.cpp,
# binary_cross_entropy_backward), EPSILON being the float32 constant 1e-12 promoted to float64:
# 9.999999960041972e-13. Pinned here, apart from manual's copy, and checked against torch itself in
# the tests.
TORCH_BCE_EPSILON = 9.999999960041972e-13
LOG_FLOOR = -100.0  # BCELoss clamps each log at -100


def exact_objective(spec: Spec, I_last: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    r"""The objective from the output layer's pre-activation, exact and stable (no floor, no clamp).

    - squared: :math:`\tfrac12\sum (y^* - y)^2`, ``y* = A(I)``
    - bce: sigmoid :math:`\sum \operatorname{softplus}(I) - yI`; softmax
      :math:`-\sum_j y_j \log y^*_j + (1 - y_j)\log(1 - y^*_j)` with :math:`\log y^*_j = I_j - \mathrm{lse}(I)`
      and :math:`\log(1 - y^*_j) = \mathrm{lse}(I_{k \ne j}) - \mathrm{lse}(I)`
    - ce: softmax :math:`-\sum_j y_j (I_j - \mathrm{lse}(I))`; sigmoid :math:`-\sum_j y_j \log\sigma(I_j)`

    Summed over the batch, divided by N for ``reduction="mean"``.
    """
    act = spec.activations[-1]
    if spec.loss == "squared":
        O = build_activation(act)(I_last)
        total = 0.5 * ((O - Y) ** 2).sum()
    elif spec.loss == "bce" and act == "sigmoid":
        total = F.binary_cross_entropy_with_logits(I_last, Y, reduction="sum")
    elif spec.loss == "bce":
        lse = torch.logsumexp(I_last, dim=-1, keepdim=True)
        J = I_last.shape[-1]
        others = I_last.unsqueeze(-2).masked_fill(torch.eye(J, dtype=torch.bool, device=I_last.device), float("-inf"))
        log_p, log_q = I_last - lse, torch.logsumexp(others, dim=-1) - lse
        total = -(Y * log_p + (1 - Y) * log_q).sum()
    elif act == "softmax":
        total = -(Y * torch.log_softmax(I_last, dim=-1)).sum()
    else:
        total = -(Y * F.logsigmoid(I_last)).sum()
    return total / Y.shape[0] if spec.reduction == "mean" else total


def build_activation(name: str):
    """torch's own activation module for a name (the table of :mod:`torch_ref.build`)."""
    return _ACTIVATION_MODULES[name]()


@dataclass(frozen=True)
class Reference:
    """Everything one float64 autograd pass gives; NumPy float64 arrays, index ``l - 1`` for layer l.

    Attributes:
        u, I, O: layer inputs, pre-activations and outputs (``O[-1]`` is y*), shapes as in
            :class:`manual.Forward`.
        dA: :math:`\\mathcal{A}'(I)` per layer by autograd (torch's subgradient 0 at a ReLU kink);
            ``None`` for softmax.
        delta: dObjective/dI per layer, torch's conventions.
        grads: dObjective/dW and /db in the slides' layout, torch's conventions.
        input: dObjective/dX.
        objective: torch's objective value.
        updated: the weights after one ``torch.optim.SGD`` step with ``lr`` (``None`` without lr).
        floored: (N, J) booleans, the bce outputs where torch's floor is in effect.
        exact_delta: the output delta of :func:`exact_objective`; equals ``delta[-1]`` where nothing
            is floored.
    """

    spec: Spec
    params: Params
    X: np.ndarray
    Y: np.ndarray
    u: tuple[np.ndarray, ...]
    I: tuple[np.ndarray, ...]
    O: tuple[np.ndarray, ...]
    dA: tuple[np.ndarray | None, ...]
    delta: tuple[np.ndarray, ...]
    grads: Params
    input: np.ndarray
    objective: float
    floored: np.ndarray
    exact_delta: np.ndarray
    lr: float | None = None
    updated: Params | None = None


def _derivatives(spec: Spec, I: list[torch.Tensor]) -> tuple[np.ndarray | None, ...]:
    """A'(I) of every elementwise layer by one autograd call through torch's own activations
    (``None`` for softmax)."""
    leaves = [i.detach().clone().requires_grad_(True) for i in I]
    elementwise = [k for k, name in enumerate(spec.activations) if name != "softmax"]
    if not elementwise:
        return (None,) * spec.depth
    total = sum(build_activation(spec.activations[k])(leaves[k]).sum() for k in elementwise)
    grads = torch.autograd.grad(total, [leaves[k] for k in elementwise], allow_unused=True)
    found = dict(zip(elementwise, grads))
    out = []
    for k in range(spec.depth):
        if k not in found:
            out.append(None)
        else:  # identity's derivative does not depend on I: autograd reports it unused
            g = found[k]
            out.append(np.ones(leaves[k].shape) if g is None else g.numpy())
    return tuple(out)


def reference(spec: Spec, params: Params, X: Any, Y: Any, *, lr: float | None = None) -> Reference:
    """The float64 reference for ``spec`` at ``params`` on ``(X, Y)`` (any library, any float dtype:
    the values are copied to float64 NumPy first, so the caller's arrays are never touched)."""
    p = params_as_numpy64(params)
    X64, Y64 = np.array(as_numpy64(X)), np.array(as_numpy64(Y))
    net = build(spec, p)
    Xt = torch.from_numpy(X64).requires_grad_(True)
    Yt = torch.from_numpy(Y64)
    I, O = net.forward_all(Xt)
    for I_l in I:
        I_l.retain_grad()
    total = net.objective_from(I[-1], O[-1], Yt)
    total.backward()
    u = [X64] + [o.detach().numpy() for o in O[:-1]]
    I_np = [i.detach().numpy() for i in I]
    O_np = [o.detach().numpy() for o in O]
    delta = [i.grad.numpy() for i in I]
    grads = params_as_numpy64(net.grads())
    floored = np.zeros(Y64.shape, dtype=bool)
    exact_delta = delta[-1]
    if spec.loss == "bce":
        y_star = O_np[-1]
        floored = y_star * (1 - y_star) < TORCH_BCE_EPSILON
        if floored.any():
            logits = I[-1].detach().clone().requires_grad_(True)
            (exact,) = torch.autograd.grad(exact_objective(spec, logits, Yt), logits)
            exact_delta = exact.numpy()
    updated = None
    if lr is not None:
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)
        optimizer.step()
        updated = params_as_numpy64(net.params())
    return Reference(spec, p, X64, Y64, tuple(u), tuple(I_np), tuple(O_np),
                     _derivatives(spec, I),
                     tuple(delta), grads, Xt.grad.numpy(), float(total.detach()), floored, exact_delta, lr, updated)


def objective_in(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, dtype: Any) -> float:
    """:func:`exact_objective` evaluated by torch in ``dtype`` (for finite differences)."""
    dt = getattr(torch, np.dtype(dtype).name)
    u = torch.from_numpy(np.asarray(X)).to(dt)
    Yt = torch.from_numpy(np.asarray(Y)).to(dt)
    with torch.no_grad():
        for l, name in enumerate(spec.activations):
            I = u @ torch.from_numpy(np.asarray(params.weights[l])).to(dt)
            if params.biases is not None:
                I = I + torch.from_numpy(np.asarray(params.biases[l])).to(dt)
            u = build_activation(name)(I)
        return float(exact_objective(spec, I, Yt))
