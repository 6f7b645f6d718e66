r"""The float64 reference: one autograd pass of the torch network, read by every check.

A check needs more than autograd's gradients: the tolerance model needs the forward intermediates
(``u``, ``I``, ``O``), :math:`\mathcal{A}'(I)` and the deltas; the diagnosis and the blame need the
objective. All of them come from torch here (``nn.Linear``, torch's activation modules and losses,
``.backward()``), never from :mod:`manual`, so a bug in the code under test cannot loosen or bend
its own check.

Two objectives are kept apart:

- torch's (:meth:`torch_ref.twin.build.Network.objective`): ``BCELoss`` floors each log at -100 and its
  backward divides by :math:`\max(y^*(1-y^*), 10^{-12})`; these are the conventions a torch user
  gets, and the gradients of :class:`Reference` follow them.
- the exact one (:func:`exact_objective`): every loss from the logits :math:`I^{(L)}` in a stable
  form (log-sigmoid, log-softmax, and for bce on softmax :math:`\log(1 - y^*_j)` as a log-sum-exp
  over the other units), with no floor and no clamp. Where torch's bce floor is in effect
  (:attr:`Reference.floored`), a second autograd pass of the exact objective gives the exact
  gradients, deltas and input gradient (:attr:`Reference.exact_grads`, ``exact_deltas``,
  ``exact_input``; the same arrays as torch's where nothing is floored), so a derivation that is
  exact there is judged against them (:func:`torch_ref.numerics.compare.compare_either`: the whole result
  follows one reference or the other); finite differences (:mod:`torch_ref.numerics.blame`) differentiate
  the exact objective.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from manual import Params, Spec

from ..twins import activation_twin, loss_twin
from .build import build
from .convert import as_numpy64, params_as_numpy64
from .loss_terms import TORCH_BCE_EPSILON

__all__ = ["LOG_FLOOR", "TORCH_BCE_EPSILON", "Reference", "exact_objective", "objective_in", "reference"]

LOG_FLOOR = -100.0  # BCELoss clamps each log at -100


def exact_objective(spec: Spec, I_last: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    r"""The objective from the output layer's pre-activation, exact and stable (no floor, no clamp):
    the loss twin's exact form for this output where it has one (bce: sigmoid
    :math:`\sum \operatorname{softplus}(I) - yI`; softmax with :math:`\log y^*_j = I_j - \mathrm{lse}(I)`
    and :math:`\log(1 - y^*_j) = \mathrm{lse}(I_{k \ne j}) - \mathrm{lse}(I)`), else its form from the
    logits (ce: log-softmax, log-sigmoid), else its value on :math:`y^* = A(I)`.

    Summed over the batch, divided by N for ``reduction="mean"``.
    """
    twin = loss_twin(spec.loss)
    output = spec.activations[-1]
    form = twin.exact.get(output.name) or twin.from_logits.get(output.name)
    if form is not None:
        total = form(I_last, Y).sum()
    else:
        total = twin.per_example(activation_twin(output).function(I_last), Y).sum()
    return total / Y.shape[0] if spec.reduction == "mean" else total


@dataclass(frozen=True)
class Reference:
    """Everything one float64 autograd pass gives; NumPy float64 arrays, index ``l - 1`` for layer l.

    Attributes:
        u, I, O: layer inputs, pre-activations and outputs (``O[-1]`` is y*), shapes as in
            :class:`manual.Forward`.
        dA: :math:`\\mathcal{A}'(I)` per layer by autograd of the twin (torch's subgradient 0 at a ReLU
            kink); ``None`` for softmax.
        d2A: :math:`\\mathcal{A}''(I)` per layer by double autograd (``None`` for softmax).
        grads: dObjective/dW and /db in the slides' layout, torch's conventions.
        input: dObjective/dX.
        objective: torch's objective value.
        updated: the weights after one ``torch.optim.SGD`` step with ``lr`` (``None`` without lr).
        floored: (N, J) booleans, the bce outputs where torch's floor is in effect.
        exact_deltas, exact_grads, exact_input: every delta, the gradients and dObjective/dX of
            :func:`exact_objective` (no floor); the very arrays of ``delta``, ``grads`` and ``input``
            where nothing is floored.
        exact_updated: the weights after one SGD step with the exact gradients (``None`` without lr).
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
    exact_deltas: tuple[np.ndarray, ...]
    exact_grads: Params
    exact_input: np.ndarray
    d2A: tuple[np.ndarray | None, ...] = ()
    lr: float | None = None
    updated: Params | None = None
    exact_updated: Params | None = None

    @property
    def exact_delta(self) -> np.ndarray:
        """The exact output delta, ``exact_deltas[-1]``."""
        return self.exact_deltas[-1]

    @property
    def two_references(self) -> bool:
        """Whether torch's floor is in effect somewhere, so torch's and the exact results differ."""
        return bool(self.floored.any())

    def first(self, l: int) -> np.ndarray:
        """A'(I) of layer index l (an elementwise activation; ``TypeError`` for softmax)."""
        return _elementwise(self.dA[l], self.spec, l)

    def second(self, l: int) -> np.ndarray:
        """A''(I) of layer index l (an elementwise activation; ``TypeError`` for softmax)."""
        return _elementwise(self.d2A[l], self.spec, l)


def _elementwise(a: np.ndarray | None, spec: Spec, l: int) -> np.ndarray:
    if a is None:
        raise TypeError(f"layer {l + 1}'s activation {spec.activations[l].name!r} is vector-valued: no A'(I)")
    return a


def _grad_of(t: torch.Tensor) -> np.ndarray:
    """``t.grad`` as NumPy (zeros where the objective does not depend on t)."""
    return (t.grad if t.grad is not None else torch.zeros_like(t)).numpy()


def _first_second(function, I: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A'(I) and A''(I) of an elementwise function by autograd (zeros where autograd reports a
    derivative unused: identity's A' does not depend on I)."""
    leaf = I.detach().clone().requires_grad_(True)
    (first,) = torch.autograd.grad(function(leaf).sum(), leaf, create_graph=True, allow_unused=True)
    if first is None:
        return torch.zeros_like(leaf), torch.zeros_like(leaf)
    if not first.requires_grad:
        return first.detach(), torch.zeros_like(leaf)
    (second,) = torch.autograd.grad(first.sum(), leaf, allow_unused=True)
    return first.detach(), (torch.zeros_like(leaf) if second is None else second.detach())


def _derivatives(spec: Spec, I: list[torch.Tensor]):
    """Per layer: A' and A'' by autograd of the twin, or ``None`` for a vector-valued activation."""
    dA: list[np.ndarray | None] = []
    d2A: list[np.ndarray | None] = []
    for entry, I_l in zip(spec.activations, I):
        if not entry.elementwise:
            dA.append(None)
            d2A.append(None)
            continue
        first, second = _first_second(activation_twin(entry).function, I_l)
        dA.append(first.numpy())
        d2A.append(second.numpy())
    return tuple(dA), tuple(d2A)


def reference(
    spec: Spec, params: Params, X: Any, Y: Any, *, lr: float | None = None, derivatives: bool = True
) -> Reference:
    """The float64 reference for ``spec`` at ``params`` on ``(X, Y)`` (any library, any float dtype:
    the values are copied to float64 NumPy first, so the caller's arrays are never touched).
    ``derivatives=False`` skips A' and A'' (``dA`` and ``d2A`` are then empty), for a caller that
    reads only the pass's values and gradients."""
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
    delta = [_grad_of(i) for i in I]
    grads = params_as_numpy64(net.grads())
    floored = np.zeros(Y64.shape, dtype=bool)
    exact_deltas, exact_grads, exact_input = tuple(delta), grads, _grad_of(Xt)
    floor = net.loss.floor
    if floor is not None:
        y_star = O_np[-1]
        floored = y_star * (1 - y_star) < floor
        if floored.any():
            exact_deltas, exact_grads, exact_input = _exact_pass(spec, p, X64, Yt)
    updated = exact_updated = None
    if lr is not None:
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)
        optimizer.step()
        updated = params_as_numpy64(net.params())
        exact_updated = updated if exact_grads is grads else _sgd(p, exact_grads, lr)
    dA, d2A = _derivatives(spec, I) if derivatives else ((), ())
    return Reference(
        spec,
        p,
        X64,
        Y64,
        tuple(u),
        tuple(I_np),
        tuple(O_np),
        dA,
        tuple(delta),
        grads,
        _grad_of(Xt),
        float(total.detach()),
        floored,
        exact_deltas,
        exact_grads,
        exact_input,
        d2A,
        lr,
        updated,
        exact_updated,
    )


def _exact_pass(spec: Spec, p: Params, X64: np.ndarray, Yt: torch.Tensor):
    """Every delta, the gradients and dObjective/dX of :func:`exact_objective` (a second network,
    so torch's pass is left as it is)."""
    net = build(spec, p)
    Xt = torch.from_numpy(X64).requires_grad_(True)
    I, _ = net.forward_all(Xt)
    for I_l in I:
        I_l.retain_grad()
    exact_objective(spec, I[-1], Yt).backward()
    return tuple(_grad_of(i) for i in I), params_as_numpy64(net.grads()), _grad_of(Xt)


def _sgd(p: Params, g: Params, lr: float) -> Params:
    """W - lr g, as torch.optim.SGD computes it (one rounding in float64)."""
    return Params(
        [W - lr * G for W, G in zip(p.weights, g.weights)],
        None if p.biases is None or g.biases is None else [b - lr * G for b, G in zip(p.biases, g.biases)],
    )


def objective_in(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, dtype: Any) -> float:
    """:func:`exact_objective` evaluated by torch in ``dtype`` (for finite differences)."""
    dt = getattr(torch, np.dtype(dtype).name)
    u = torch.from_numpy(np.asarray(X)).to(dt)
    Yt = torch.from_numpy(np.asarray(Y)).to(dt)
    with torch.no_grad():
        for l, entry in enumerate(spec.activations):
            I = u @ torch.from_numpy(np.asarray(params.weights[l])).to(dt)
            if params.biases is not None:
                I = I + torch.from_numpy(np.asarray(params.biases[l])).to(dt)
            u = activation_twin(entry).function(I)
        return float(exact_objective(spec, I, Yt))
