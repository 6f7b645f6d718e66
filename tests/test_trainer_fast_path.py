"""manual.Trainer's specialised step takes the seed's step, bit for bit.

The reference below is the seed's ``Trainer.step``, written out once (the same operations in the same
order: fused ``addmm`` forward and ``addmm_`` update on torch, ``1/N`` folded into the step size for
plain SGD with ``reduction="mean"``); the trainer built once per spec must give arrays equal to it
element for element, over several steps, on NumPy and torch, for every form of the output delta and
every update rule. Agreement with :func:`manual.sgd_step` within the tolerance model is
``tests/test_trainer.py``'s check; this file pins the arithmetic itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import manual
from manual import optim
from manual._xp import namespace
from manual.activations import BUILTIN_ACTIVATIONS
from manual.backward import output_delta
from torch_ref.strategies import data_for, params_for

SPECS = {
    # canonical pairs: y* - y
    "sigmoid+bce": ((2, 2, 1), ("sigmoid", "sigmoid"), "bce"),
    "softmax+ce": ((3, 5, 4), ("relu", "softmax"), "ce"),
    "identity+squared": ((3, 5, 4, 2), ("tanh", "relu", "identity"), "squared"),
    # dL/dy* times A' (the chain rule at the output), and entries with no in-place kernel
    "sigmoid+squared": ((4, 3, 2), ("gelu", "sigmoid"), "squared"),
    "tanh+huber": ((2, 6, 3), ("elu", "tanh"), "huber"),
    # a cancelled form (sigmoid + ce) and softmax's vector-Jacobian product
    "sigmoid+ce": ((3, 4, 3), ("leaky_relu", "sigmoid"), "ce"),
    "softmax+squared": ((3, 4, 3), ("silu", "softmax"), "squared"),
}
RULES: dict[str, tuple[type[optim.SGD] | type[optim.Adam], dict[str, Any]]] = {
    "plain": (optim.SGD, {}),
    "momentum": (optim.SGD, {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    "nesterov": (optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "adam": (optim.Adam, {"weight_decay": 0.01}),
    "adamw": (optim.Adam, {"weight_decay": 0.01, "decoupled": True}),
}


def _seed_step(spec: manual.Spec, weights: list, biases: list | None, rule: Any, lr: float, X: Any, Y: Any) -> None:
    """The seed's ``Trainer.step``, operation for operation (its arrays updated in place)."""
    xp = namespace(weights[0])
    fused = hasattr(weights[0], "addmm_")
    us, Is, Os = [X], [], []
    for l, entry in enumerate(spec.activations):
        W = weights[l]
        if biases is None:
            I = us[-1] @ W
        elif fused:
            I = xp.addmm(biases[l], us[-1], W)
        else:
            I = us[-1] @ W + biases[l]
        Is.append(I)
        Os.append(entry.in_place(I) if fused and entry.in_place is not None else entry.forward(I, xp))
        us.append(Os[-1])

    def times(d: Any, entry: Any, I: Any, O: Any) -> None:
        if entry.times_derivative is not None:
            entry.times_derivative(d, I, O, xp)
        else:
            d *= entry.prime(I, O, xp)

    out, xi = spec.activations[-1], lr
    if spec.canonical:
        delta = Os[-1] - Y
    elif out.elementwise and out.name not in spec.loss.cancelled:
        delta = spec.loss.gradient(Os[-1], Y, xp)
        times(delta, out, Is[-1], Os[-1])
    else:
        delta = None
    if delta is None:
        delta = output_delta(spec, Is[-1], Os[-1], Y)
    elif spec.reduction == "mean":
        if rule.plain:
            xi = xi / X.shape[0]
        else:
            delta /= X.shape[0]
    rule.begin_step()
    for l in range(spec.depth - 1, -1, -1):
        W = weights[l]
        back = delta @ W.T if l > 0 else None
        if not rule.plain:
            rule.update(("W", l), W, us[l].T @ delta)
            if biases is not None:
                rule.update(("b", l), biases[l], xp.sum(delta, axis=0))
        elif fused:
            W.addmm_(us[l].T, delta, alpha=-xi)
        else:
            g = us[l].T @ delta
            g *= xi
            W -= g
        if biases is not None and rule.plain:
            if fused:
                biases[l].sub_(delta.sum(0), alpha=xi)
            else:
                biases[l] -= xi * delta.sum(axis=0)
        if back is not None:
            times(back, spec.activations[l - 1], Is[l - 1], Os[l - 1])
            delta = back


def _setup(
    name: str, library: str, dtype: str, *, bias: bool, reduction: str, N: int, seed: int = 0
) -> tuple[manual.Spec, manual.Params, Any, Any]:
    sizes, acts, loss = SPECS[name]
    spec = manual.Spec(sizes, acts, loss, bias=bias, reduction=reduction)
    rng = np.random.default_rng(seed)
    params = params_for(spec, rng, dtype=np.dtype(dtype))
    X, Y = data_for(spec, N, rng, dtype=np.dtype(dtype))
    if library == "torch":
        return spec, params.map(torch.from_numpy), torch.from_numpy(X), torch.from_numpy(Y)
    return spec, params, X, Y


class _Own:
    """The seed's step's own arrays: copies, in lists it may rebind (``Params`` holds tuples)."""

    def __init__(self, params: manual.Params) -> None:
        own = params.map(lambda a: a.clone() if isinstance(a, torch.Tensor) else a.copy())
        self.weights = list(own.weights)
        self.biases = None if own.biases is None else list(own.biases)

    def params(self) -> manual.Params:
        return manual.Params(self.weights, self.biases)


def _same(got: manual.Params, want: manual.Params, where: str) -> None:
    __tracebackhide__ = True
    for (key, a), (_, b) in zip(got.arrays(), want.arrays()):
        a, b = np.asarray(a), np.asarray(b)
        if not np.array_equal(a, b):
            raise AssertionError(f"{where}: {key} differs from the seed's step by up to {np.max(np.abs(a - b)):.3g}")


@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_plain_sgd_equals_the_seed_step_bit_for_bit(name, bias, reduction, dtype, library):
    for N in (1, 5):
        spec, params, X, Y = _setup(name, library, dtype, bias=bias, reduction=reduction, N=N)
        trainer = manual.Trainer(spec, params, lr=0.3)
        ref = _Own(params)
        for k in range(3):
            trainer.step(X, Y)
            _seed_step(spec, ref.weights, ref.biases, optim.SGD(0.3), 0.3, X, Y)
            _same(trainer.params, ref.params(), f"{spec}, N={N}, step {k + 1}")


@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("name", ["sigmoid+bce", "softmax+ce", "sigmoid+squared", "sigmoid+ce"])
def test_momentum_and_adam_equal_the_seed_step_bit_for_bit(name, rule, library):
    rule_type, options = RULES[rule]
    trainer_type = manual.AdamTrainer if rule_type is optim.Adam else manual.Trainer
    for reduction in ("sum", "mean"):
        spec, params, X, Y = _setup(name, library, "float64", bias=True, reduction=reduction, N=4, seed=1)
        trainer = trainer_type(spec, params, lr=0.05, **options)
        ref = _Own(params)
        ref_rule = rule_type(0.05, **options)
        for k in range(3):
            trainer.step(X, Y)
            _seed_step(spec, ref.weights, ref.biases, ref_rule, 0.05, X, Y)
            _same(trainer.params, ref.params(), f"{spec} {rule}, step {k + 1}")


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_a_new_lr_and_a_replaced_weight_array_are_used_by_the_next_step(library):
    """The step reads lr, weights and biases afresh each time (a schedule, a reloaded layer)."""
    spec, params, X, Y = _setup("identity+squared", library, "float64", bias=True, reduction="mean", N=3)
    trainer = manual.Trainer(spec, params, lr=0.1)
    ref = _Own(params)
    trainer.step(X, Y)
    _seed_step(spec, ref.weights, ref.biases, optim.SGD(0.1), 0.1, X, Y)
    trainer.lr = 0.02
    fresh = ref.weights[2] * 0.5
    ref.weights[2] = fresh
    trainer.weights[2] = fresh.clone() if library == "torch" else fresh.copy()
    for _ in range(2):
        trainer.step(X, Y)
        _seed_step(spec, ref.weights, ref.biases, optim.SGD(0.02), 0.02, X, Y)
    _same(trainer.params, ref.params(), "after lr 0.1 -> 0.02 and a new weights[2]")


def test_relu_times_derivative_on_torch_equals_the_array_api_sign():
    """torch's own sign for ReLU's derivative: the same products as array-api-compat's sign,
    zeros of either sign included (NaN aside: compat gives sign(NaN) = NaN, torch 0)."""
    relu = next(e for e in BUILTIN_ACTIVATIONS if e.name == "relu")
    O = torch.tensor([[0.0, 2.0, 0.5], [0.0, 3.0, 0.0]], dtype=torch.float64)
    d = torch.tensor([[-1.5, -0.0, 2.0], [0.0, 4.0, -3.0]], dtype=torch.float64)
    xp = namespace(O)
    want = d * xp.sign(O)
    got = d.clone()
    relu.times_derivative(got, O.clone(), O.clone(), xp)
    assert torch.equal(got, want) and torch.equal(torch.signbit(got), torch.signbit(want))


def test_a_wrong_shape_is_refused_with_both_shapes_named():
    spec, params, X, Y = _setup("softmax+ce", "torch", "float64", bias=True, reduction="mean", N=4)
    trainer = manual.Trainer(spec, params, lr=0.1)
    with pytest.raises(ValueError, match=r"X must be \(N, 3\) and Y \(N, 4\), got \(4, 3\) and \(5, 4\)"):
        trainer.step(X, torch.cat([Y, Y[:1]]))
    with pytest.raises(ValueError, match=r"got \(12,\) and \(4, 4\)"):
        trainer.step(X.reshape(-1), Y)
