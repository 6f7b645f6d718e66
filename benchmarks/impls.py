"""The training-step implementations the benchmark times, each built once per case and returning a
zero-argument ``step()`` that runs forward, backward and the SGD update on the same batch; its
``step.release()``, where present, frees what the step keeps until the next one (autograd's
``.grad``); ``step.library`` is "numpy" where the step allocates NumPy arrays (else torch); its ``step.params()`` gives the current weights in the slides' layout (for the tests that check every
implementation takes the same step, never called while timing).

- ``manual_numpy``: :class:`manual.Trainer` on NumPy arrays.
- ``manual_torch``: :class:`manual.Trainer` on torch tensors on the device (it records no
  autograd graph: its arrays never require grad).
- ``autograd_module``: :func:`torch_ref.build` + its torch loss + ``.backward()`` +
  ``torch.optim.SGD.step()``, what a torch user writes.
- ``autograd_functional``: plain tensors, ``torch.nn.functional``, ``torch.autograd.grad`` and a
  ``torch._foreach_add_`` update.
- ``*_compiled`` (only with ``--compile``): ``torch.compile`` of the two torch step functions.

And one that is not a training step: ``gemm_floor``, the matrix products of manual_torch's step and
nothing else (the same calls on the same shapes and layouts: ``addmm`` forward, ``delta.mm(W.T)``
backward with the view ``W.T`` made once, ``W.addmm_(u.T, delta)`` update), on fixed operands.
Its time is what the GEMM library needs for the step's FLOPs; an implementation's time above it is
its own work.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

import manual
import torch_ref
from manual import Params, Spec
from torch_ref.twins import activation_twin, loss_twin

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

    run.library = "numpy"
    return _with_params(run, lambda: trainer.params)


def manual_torch(spec, params, X, Y, lr, device, compiled=False):
    p, Xt, Yt = _tensors(params, X, Y, device)
    trainer = manual.Trainer(spec, p, lr=lr)
    if compiled:
        step = torch.compile(trainer.step)

        def run():
            with torch.no_grad():
                step(Xt, Yt)

    else:
        # no torch.no_grad() here: the trainer's arrays never require grad and it detaches its
        # inputs, so it records no graph either way (tests/test_trainer.py), and entering and leaving
        # the context costs about 1.4 us, 7 % of the 2-2-1/b1 step, that gemm_floor does not pay
        def run():
            trainer.step(Xt, Yt)

    return _with_params(run, lambda: trainer.params)


def autograd_module(spec, params, X, Y, lr, device):
    p, Xt, Yt = _tensors(params, X, Y, device)
    net = torch_ref.build(spec, p)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)

    def run():
        optimizer.zero_grad(set_to_none=True)
        net.objective(Xt, Yt).backward()
        optimizer.step()

    # the .grad tensors live on until the next step frees them: released before a memory baseline
    run.release = lambda: optimizer.zero_grad(set_to_none=True)
    return _with_params(run, net.params)


def _objective(spec: Spec, weights, biases, X, Y):
    """The objective from torch's functional ops, each activation and loss through its torch twin
    (:mod:`torch_ref.twins`), weights in nn.Linear's (out, in) layout."""
    acts = [activation_twin(entry).function for entry in spec.activations]
    loss = loss_twin(spec.loss)
    from_logits = loss.from_logits.get(spec.activations[-1].name)
    u = X
    for l, act in enumerate(acts):
        I = F.linear(u, weights[l], None if biases is None else biases[l])
        if from_logits is not None and l == spec.depth - 1:
            total = from_logits(I, Y).sum()
            break
        u = act(I)
    else:
        total = loss.per_example(u, Y).sum()
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


def gemm_floor(spec, params, X, Y, lr, device):
    p, Xt, _ = _tensors(params, X, Y, device)
    us = [Xt] + [torch.zeros(Xt.shape[0], W.shape[1], dtype=Xt.dtype, device=device) for W in p.weights[:-1]]
    deltas = [torch.full((Xt.shape[0], W.shape[1]), 1e-6, dtype=Xt.dtype, device=device) for W in p.weights]
    biases = p.biases if p.biases is not None else [None] * spec.depth
    transposed = [W.T for W in p.weights]  # as manual.Trainer keeps W^T: a view made once

    def run():
        for l, W in enumerate(p.weights):
            torch.addmm(biases[l], us[l], W) if biases[l] is not None else us[l] @ W
        for l in range(spec.depth - 1, -1, -1):
            if l > 0:
                deltas[l].mm(transposed[l])
            p.weights[l].addmm_(us[l].T, deltas[l], alpha=-lr)

    return _with_params(run, lambda: p)


FLOORS = ("gemm_floor",)

BUILDERS: dict[str, Callable] = {
    "gemm_floor": gemm_floor,
    "manual_numpy": manual_numpy,
    "manual_torch": manual_torch,
    "autograd_module": autograd_module,
    "autograd_functional": autograd_functional,
    "manual_torch_compiled": lambda *a: manual_torch(*a, compiled=True),
    "autograd_functional_compiled": lambda *a: autograd_functional(*a, compiled=True),
}
