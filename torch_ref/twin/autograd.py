"""Gradients, deltas and SGD steps of the reference network, by torch autograd and torch.optim.

Every function takes what :mod:`manual` takes (NumPy arrays or tensors) and returns the same kind:
NumPy in, NumPy out; tensors stay on their device and dtype.
"""

from __future__ import annotations

from typing import Any

import torch

from manual import Params, Spec
from manual.validate import check_inputs, check_lr

from .build import build
from .convert import from_torch, to_torch

__all__ = ["deltas", "gradients", "input_gradient", "objective", "sgd_step"]


def _back(params: Params, like: Any) -> Params:
    return params.map(lambda t: from_torch(t, like))


def _prepare(spec: Spec, params: Params, X: Any, Y: Any):
    check_inputs(spec, params, X, Y)
    return build(spec, params), to_torch(X), to_torch(Y)


def objective(spec: Spec, params: Params, X: Any, Y: Any) -> Any:
    """The objective as torch's losses compute it, a 0-d array of the inputs' kind."""
    net, Xt, Yt = _prepare(spec, params, X, Y)
    with torch.no_grad():
        return from_torch(net.objective(Xt, Yt), X)


def gradients(spec: Spec, params: Params, X: Any, Y: Any) -> Params:
    """d(objective)/dW and d(objective)/db by ``.backward()`` on the reference network, slides' layout."""
    net, Xt, Yt = _prepare(spec, params, X, Y)
    net.objective(Xt, Yt).backward()
    return _back(net.grads(), params.weights[0])


def deltas(spec: Spec, params: Params, X: Any, Y: Any) -> list[Any]:
    """Autograd's d(objective)/dI^(l) for every layer, the quantity manual calls delta^(l)."""
    net, Xt, Yt = _prepare(spec, params, X, Y)
    I, O = net.forward_all(Xt)
    for I_l in I:
        I_l.retain_grad()
    net.objective_from(I[-1], O[-1], Yt).backward()
    return [from_torch(I_l.grad, X) for I_l in I]


def input_gradient(spec: Spec, params: Params, X: Any, Y: Any) -> Any:
    """d(objective)/dX, shape ``(N, D)``."""
    net, Xt, Yt = _prepare(spec, params, X, Y)
    Xt = Xt.detach().clone().requires_grad_(True)
    net.objective(Xt, Yt).backward()
    return from_torch(Xt.grad, X)


def sgd_step(spec: Spec, params: Params, X: Any, Y: Any, lr: float, *, exact: bool = False) -> Params:
    """One ``torch.optim.SGD`` step (no momentum, no weight decay) on the reference network;
    ``exact=True`` steps on :func:`torch_ref.twin.reference.exact_objective` (no bce floor) instead of
    torch's losses."""
    from .reference import exact_objective  # reference reads this module's build; imported at use

    xi = check_lr(lr)
    net, Xt, Yt = _prepare(spec, params, X, Y)
    optimizer = torch.optim.SGD(net.parameters(), lr=xi)
    optimizer.zero_grad()
    if exact:
        I, _ = net.forward_all(Xt)
        exact_objective(spec, I[-1], Yt).backward()
    else:
        net.objective(Xt, Yt).backward()
    optimizer.step()
    return _back(net.params(), params.weights[0])
