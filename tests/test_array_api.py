"""manual runs unchanged on torch tensors, without autograd, and never imports torch itself."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import manual
from torch_ref import assert_agree, compare, tolerance
from torch_ref.strategies import data_for, params_for


def test_import_manual_does_not_import_torch():
    code = "import manual, sys; assert 'torch' not in sys.modules, 'manual imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_pytest_plugin_does_not_import_torch():
    """pytest loads the plugin in every run where this package is installed: it must not cost a torch
    import there (torch_ref's names load on first use)."""
    code = "import torch_ref.pytest_plugin, sys; assert 'torch' not in sys.modules, 'the plugin imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "spec",
    [
        manual.Spec((3, 5, 4, 2), ("tanh", "relu", "softmax"), "ce", bias=True),
        manual.Spec((2, 2, 1), ("sigmoid", "sigmoid"), "bce", reduction="mean"),
        manual.Spec((4, 3, 3), ("sigmoid", "identity"), "squared"),
    ],
    ids=str,
)
def test_manual_on_torch_tensors_without_autograd(spec, monkeypatch):
    rng = np.random.default_rng(5)
    params = params_for(spec, rng)
    X, Y = data_for(spec, 6, rng)

    def refuse(*args, **kwargs):
        raise AssertionError("manual must not call autograd")

    monkeypatch.setattr(torch.autograd, "backward", refuse)
    monkeypatch.setattr(torch.autograd, "grad", refuse)
    monkeypatch.setattr(torch.Tensor, "backward", refuse)
    tensors = params.map(torch.from_numpy)
    with torch.no_grad():
        on_torch = manual.gradients(spec, tensors, torch.from_numpy(X), torch.from_numpy(Y))
        stepped = manual.sgd_step(spec, tensors, torch.from_numpy(X), torch.from_numpy(Y), 0.1)
    assert all(isinstance(a, torch.Tensor) and a.dtype == torch.float64 for _, a in on_torch.arrays())
    assert all(isinstance(a, torch.Tensor) for _, a in stepped.arrays())
    monkeypatch.undo()  # the tolerance model runs the autograd reference
    on_numpy = manual.gradients(spec, params, X, Y)
    tol = tolerance(spec, params, X, Y)
    names = [n for n, _ in on_numpy.arrays()]
    assert_agree(
        compare(
            names,
            [a for _, a in on_torch.arrays()],
            [a for _, a in on_numpy.arrays()],
            [a for _, a in tol.grads.arrays()],
        )
    )


def test_torch_ref_returns_the_kind_it_was_given():
    import torch_ref

    spec = manual.Spec((2, 3, 1), ("tanh", "sigmoid"), "bce", bias=True)
    rng = np.random.default_rng(1)
    params = params_for(spec, rng)
    X, Y = data_for(spec, 4, rng)
    assert all(isinstance(a, np.ndarray) for _, a in torch_ref.gradients(spec, params, X, Y).arrays())
    t = torch_ref.gradients(spec, params.map(torch.from_numpy), torch.from_numpy(X), torch.from_numpy(Y))
    assert all(isinstance(a, torch.Tensor) for _, a in t.arrays())


def test_every_name_torch_ref_gives_loads_on_first_use():
    """torch_ref's names are listed three times (the lazy table, the imports type checkers read,
    ``__all__``): the table and ``__all__`` must agree, and every name must load to the object its
    module defines (the four named like their module too)."""
    import importlib

    import torch_ref

    assert sorted(torch_ref.__all__) == sorted(torch_ref._WHERE)
    for name, where in torch_ref._WHERE.items():
        module = importlib.import_module(f"torch_ref.{where or name}")
        assert getattr(torch_ref, name) is (module if where is None else getattr(module, name)), name
