"""The training-step implementations the benchmark times, each built once per case and returning a
zero-argument ``step()`` that runs forward, backward and the SGD update on the same batch; its
``step.params()`` gives the current weights in the slides' layout (for the tests that check every
implementation takes the same step, never called while timing).

- ``manual_numpy``: :class:`manual.Trainer` on NumPy arrays.
- ``manual_torch``: :class:`manual.Trainer` on torch tensors on the device, autograd off.
- ``autograd_module``: :func:`torch_ref.build` + its torch loss + ``.backward()`` +
  ``torch.optim.SGD.step()``, what a torch user writes.
- ``autograd_functional``: plain tensors, ``torch.nn.functional``, ``torch.autograd.grad`` and a
  ``torch._foreach_add_`` update.
- ``*_compiled`` (only with ``--compile``): ``torch.compile`` of the two torch step functions.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

import manual
import torch_ref
from manual import Params, Spec

IMPLS = ("manual_numpy", "manual_torch", "autograd_module", "autograd_functional")
COMPILED = ("manual_torch_compiled", "autograd_functional_compiled")


def _tensors(params: Params, X: np.ndarray, Y: np.ndarray, device: str):
    def move(a):
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)
    return params.map(move), move(X), move(Y)


def _with_params(step: Callable, current: Callable[[], Params]) -> Callable:
    step.params = lambda: current().map(lambda a: a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a))
    return step


def manual_numpy(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, lr: float, device: str) -> Callable:
    trainer = manual.Trainer(spec, params, lr=lr)

    def run():
        trainer.step(X, Y)
    return _with_params(run, lambda: trainer.params)


def manual_torch(spec, params, X, Y, lr, device, compiled=False):
    p, Xt, Yt = _tensors(params, X, Y, device)
    trainer = manual.Trainer(spec, p, lr=lr)
    step = torch.compile(trainer.step) if compiled else trainer.step

    def run():
        with torch.no_grad():
            step(Xt, Yt)
    return _with_params(run, lambda: trainer.params)


def autograd_module(spec, params, X, Y, lr, device):
    p, Xt, Yt = _tensors(params, X, Y, device)
    net = torch_ref.build(spec, p)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)

    def run():
        optimizer.zero_grad(set_to_none=True)
        net.objective(Xt, Yt).backward()
        optimizer.step()
    return _with_params(run, net.params)


_ACT = {"identity": lambda I: I, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
        "softmax": lambda I: torch.softmax(I, dim=-1)}


def _objective(spec: Spec, weights, biases, X, Y):
    u = X
    for l, name in enumerate(spec.activations):
        I = F.linear(u, weights[l], None if biases is None else biases[l])  # weights in (out, in)
        if spec.loss == "ce" and l == spec.depth - 1:
            if name == "softmax":
                total = F.cross_entropy(I, Y, reduction="sum")
            else:
                total = -(Y * F.logsigmoid(I)).sum()
            break
        u = _ACT[name](I)
    else:
        if spec.loss == "squared":
            total = 0.5 * F.mse_loss(u, Y, reduction="sum")
        else:
            total = F.binary_cross_entropy(u, Y, reduction="sum")
    return total / X.shape[0] if spec.reduction == "mean" else total


def autograd_functional(spec, params, X, Y, lr, device, compiled=False):
    p, Xt, Yt = _tensors(params, X, Y, device)
    weights = [W.T.contiguous().requires_grad_(True) for W in p.weights]
    biases = None if p.biases is None else [b.clone().requires_grad_(True) for b in p.biases]
    leaves = weights + (biases or [])

    def step():
        loss = _objective(spec, weights, biases, Xt, Yt)
        grads = torch.autograd.grad(loss, leaves)
        with torch.no_grad():
            torch._foreach_add_(leaves, grads, alpha=-lr)

    def current() -> Params:
        return Params([W.detach().T for W in weights], None if biases is None else [b.detach() for b in biases])

    run = torch.compile(step) if compiled else step
    if compiled:
        return _with_params(lambda: run(), current)
    return _with_params(run, current)


BUILDERS: dict[str, Callable] = {
    "manual_numpy": manual_numpy, "manual_torch": manual_torch, "autograd_module": autograd_module,
    "autograd_functional": autograd_functional,
    "manual_torch_compiled": lambda *a: manual_torch(*a, compiled=True),
    "autograd_functional_compiled": lambda *a: autograd_functional(*a, compiled=True),
}
