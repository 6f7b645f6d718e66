"""manual.Trainer (in-place, fused where torch allows) takes the same step as torch.optim.SGD."""

import inspect

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import manual
from torch_ref import assert_agree
from torch_ref.frontends.crosscheck import crosscheck_update
from torch_ref.strategies import cases


@pytest.mark.parametrize("library", ["numpy", "torch"])
@given(data=st.data())
def test_trainer_step_matches_sgd(library, data):
    c = data.draw(cases(lrs=(0.01, 0.1, 1.0)))
    before = c.params.map(np.copy)
    params = c.params if library == "numpy" else c.params.map(torch.from_numpy)  # shares c.params' memory
    X, Y = (c.X, c.Y) if library == "numpy" else (torch.from_numpy(c.X), torch.from_numpy(c.Y))
    trainer = manual.Trainer(c.spec, params, lr=c.lr)
    trainer.step(X, Y)
    assert_agree(crosscheck_update(c.spec, before, c.X, c.Y, c.lr, updated=trainer.params))
    # the trainer works on its own copies: the arrays it was given still hold the weights before the step
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(c.params.arrays(), before.arrays()))


def test_trainer_rejects_wrong_shapes():
    spec = manual.Spec((2, 3, 1), ("tanh", "sigmoid"), "bce")
    trainer = manual.Trainer(spec, manual.init_params(spec, np.random.default_rng(0)), lr=0.1)
    with pytest.raises(ValueError, match=r"X must be \(N, 2\)"):
        trainer.step(np.ones((4, 3)), np.ones((4, 1)))


def test_trainer_never_records_an_autograd_graph():
    spec = manual.Spec((3, 4, 2), ("tanh", "softmax"), "ce", bias=True)
    params = manual.init_params(spec, np.random.default_rng(0)).map(lambda a: torch.from_numpy(a).requires_grad_(True))
    X = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    Y = torch.full((5, 2), 0.5, dtype=torch.float64)
    trainer = manual.Trainer(spec, params, lr=0.1)
    for _ in range(3):
        trainer.step(X, Y)
    assert all(a.grad_fn is None and not a.requires_grad for _, a in trainer.params.arrays())


@pytest.mark.parametrize(
    ("trainer", "typo", "meant"),
    [(manual.Trainer, "momentun", "momentum"), (manual.AdamTrainer, "beta", "betas")],
)
def test_an_unknown_trainer_option_is_named_with_the_closest_and_the_accepted_ones(trainer, typo, meant):
    spec = manual.Spec((2, 1), ("identity",), "squared")
    params = manual.init_params(spec, np.random.default_rng(0))
    with pytest.raises(TypeError, match=rf"unknown option '{typo}' \(did you mean '{meant}'\?\); accepted: lr, "):
        trainer(spec, params, lr=0.1, **{typo: 0.9})


def test_the_trainers_signatures_name_each_optimizer_option_and_its_default():
    # the options are defined once, by the rule's constructor (manual.optim); the trainer shows them
    assert str(inspect.signature(manual.Trainer)) == (
        "(spec: 'Spec', params: 'Params', *, lr: 'float', momentum: 'float' = 0.0, dampening: 'float' = 0.0, "
        "nesterov: 'bool' = False, weight_decay: 'float' = 0.0) -> 'None'"
    )
    assert str(inspect.signature(manual.AdamTrainer)) == (
        "(spec: 'Spec', params: 'Params', *, lr: 'float', betas: 'tuple[float, float]' = (0.9, 0.999), "
        "eps: 'float' = 1e-08, weight_decay: 'float' = 0.0, decoupled: 'bool' = False) -> 'None'"
    )
