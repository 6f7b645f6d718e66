"""manual.Trainer (in-place, fused where torch allows) takes the same step as torch.optim.SGD."""

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import manual
from torch_ref import assert_agree
from torch_ref.crosscheck import crosscheck_update
from torch_ref.strategies import cases


@pytest.mark.parametrize("library", ["numpy", "torch"])
@given(data=st.data())
def test_trainer_step_matches_sgd(library, data):
    c = data.draw(cases(lrs=(0.01, 0.1, 1.0)))
    params = c.params if library == "numpy" else c.params.map(torch.from_numpy)
    X, Y = (c.X, c.Y) if library == "numpy" else (torch.from_numpy(c.X), torch.from_numpy(c.Y))
    trainer = manual.Trainer(c.spec, params, lr=c.lr)
    trainer.step(X, Y)
    assert_agree(crosscheck_update(c.spec, c.params, c.X, c.Y, c.lr, updated=trainer.params))
    # the trainer works on its own copies
    assert all(np.array_equal(np.asarray(a), b) for (_, a), (_, b) in zip(params.arrays(), c.params.arrays()))


def test_trainer_rejects_wrong_shapes():
    spec = manual.Spec((2, 3, 1), ("tanh", "sigmoid"), "bce")
    trainer = manual.Trainer(spec, manual.init_params(spec, np.random.default_rng(0)), lr=0.1)
    with pytest.raises(ValueError, match=r"X must be \(N, 2\)"):
        trainer.step(np.ones((4, 3)), np.ones((4, 1)))
