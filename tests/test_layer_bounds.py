"""The layer check's allowances pinned from both sides: one result just inside each, one just beyond.
The rounding model's bound, the not-judged rule, finite differences' bound (check_function), and the
catalogue's fit (a mistake is named only within the bound)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import manual
import torch_ref
from torch_ref.layers import judge as judging
from torch_ref.layers.case import LayerCase
from torch_ref.layers.judge import LayerDraw, judge
from torch_ref.layers.setup import resolve
from torch_ref.layers.table import info

RNG = np.random.default_rng(7)
X = RNG.standard_normal((3, 4)).astype(np.float32)
PARAMS = {"weight": RNG.standard_normal(4).astype(np.float32), "bias": RNG.standard_normal(4).astype(np.float32)}
CASE = LayerCase(X, PARAMS, {"eps": 1e-5})
DRAW = LayerDraw(CASE, seed=3)


def _truth_and_bound(dtype: str = "float32"):
    setup = resolve(manual.LAYERS["layer_norm"].backward, "layer_norm", {}, np.dtype(dtype))
    traced, dout = judging._reference(setup, DRAW, dtype)
    return traced, dout


def _moved(name: str, k: float, dtype: str = "float32"):
    """A backward giving autograd's gradients, with the entry of ``name`` whose bound is widest moved
    by ``k`` times that bound."""
    traced, _ = _truth_and_bound(dtype)
    bound = traced.bound(name, np.dtype(dtype)).numpy()
    at = np.unravel_index(int(np.argmax(bound)), bound.shape)

    def backward(dout, x, weight, bias, eps):
        grads = {k2: g.numpy().copy() for k2, g in traced.grads.items()}
        grads[name][at] += k * bound[at]
        return grads

    return backward


@pytest.mark.parametrize("name", ["x", "weight", "bias"])
def test_the_rounding_bound_from_both_sides(name: str) -> None:
    for k, verdict in ((0.99, "agree"), (1.01, "mismatch"), (-0.99, "agree"), (-1.01, "mismatch")):
        setup = resolve(_moved(name, k), "layer_norm", {}, np.dtype("float32"))
        assert judge(setup, DRAW, "numpy", "cpu", "float32").kind == verdict, (name, k)


def test_the_not_judged_rule_from_both_sides(monkeypatch: pytest.MonkeyPatch) -> None:
    traced, _ = _truth_and_bound()
    scale = max(float(g.abs().max()) for g in traced.grads.values())
    widest = max(float(traced.bound(k, np.dtype("float32")).max()) for k in traced.grads)
    ratio = widest / scale
    setup = resolve(manual.LAYERS["layer_norm"].backward, "layer_norm", {}, np.dtype("float32"))
    monkeypatch.setattr(judging, "UNINFORMATIVE", ratio * 1.01)
    assert judge(setup, DRAW, "numpy", "cpu", "float32").kind == "agree"
    monkeypatch.setattr(judging, "UNINFORMATIVE", ratio * 0.99)
    outcome = judge(setup, DRAW, "numpy", "cpu", "float32")
    assert outcome.kind == "not judged" and "2^-10" in outcome.detail


def test_a_run_of_cases_it_cannot_judge_never_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(judging, "UNINFORMATIVE", 0.0)
    with pytest.raises(torch_ref.NotJudged, match="not judged"):
        torch_ref.check_layer(manual.LAYERS["layer_norm"].backward, "layer_norm", max_examples=5, seed=0)


def test_a_mistake_is_named_only_within_the_bound() -> None:
    mistake = next(m for m in info("layer_norm").mistakes if m.name == "mean term missing")
    setup = resolve(mistake.backward, "layer_norm", {}, np.dtype("float64"))
    draw = LayerDraw(
        LayerCase(X.astype(np.float64), {k: v.astype(np.float64) for k, v in PARAMS.items()}, {"eps": 1e-5}), 3
    )
    outcome = judge(setup, draw, "numpy", "cpu", "float64")
    from torch_ref.layers.diagnose import catalogue

    assert outcome.kind == "mismatch"
    assert any("mean term missing" in line for line in catalogue(outcome, setup))
    # the same mistake, one entry moved by far more than rounding: no longer what the mistake gives
    wrong = mistake.backward(
        outcome.dout, **{"x": X.astype(np.float64)}, **{k: v.astype(np.float64) for k, v in PARAMS.items()}, eps=1e-5
    )

    def moved(dout, x, weight, bias, eps):
        grads = {k: np.array(v, dtype=np.float64) for k, v in wrong.items()}
        grads["x"][0, 0] += 1e-6 * (1 + abs(grads["x"][0, 0]))
        return grads

    setup = resolve(moved, "layer_norm", {}, np.dtype("float64"))
    outcome = judge(setup, draw, "numpy", "cpu", "float64")
    assert outcome.kind == "mismatch"
    assert not any("mean term missing" in line for line in catalogue(outcome, setup))


class _Tanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        O = torch.tanh(x @ w)
        ctx.save_for_backward(x, w, O)
        return O

    @staticmethod
    def backward(ctx, dout):
        x, w, O = ctx.saved_tensors
        delta = dout * (1 - O * O)
        return delta @ w.T, x.T @ delta


def _fd_moved(k: float, dtype: str):
    """_Tanh with its dx moved by k times the finite-difference check's bound at its widest entry."""
    from torch_ref.layers.function import function_setup

    x, w = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 2))
    case = LayerCase(x.astype(dtype), {"w": w.astype(dtype)}, order=("w",))
    draw = LayerDraw(case, seed=5)
    setup = function_setup(_Tanh, {"inputs": lambda rng: (x, {"w": w})}, np.dtype(dtype))
    traced, _ = judging._reference(setup, draw, dtype)
    bound = traced.bound("x", np.dtype(dtype)).numpy()
    at = np.unravel_index(int(np.argmax(bound)), bound.shape)
    shift = torch.zeros_like(traced.grads["x"])
    shift[at] = k * bound[at]
    truth = {name: g.clone() for name, g in traced.grads.items()}

    class Moved(_Tanh):
        @staticmethod
        def backward(ctx, dout):
            return (truth["x"] + shift).to(dout.dtype), truth["w"].to(dout.dtype)

    return function_setup(Moved, {"inputs": lambda rng: (x, {"w": w})}, np.dtype(dtype)), draw


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_finite_difference_bound_from_both_sides(dtype: str) -> None:
    # in float32 the moved result is rounded to float32 on return: k far enough from 1 to survive it
    inside, beyond = (0.9, 1.1) if dtype == "float64" else (0.5, 2.0)
    for k, verdict in ((inside, "agree"), (beyond, "mismatch")):
        setup, draw = _fd_moved(k, dtype)
        assert judge(setup, draw, "torch", "cpu", dtype).kind == verdict, (dtype, k)


def test_the_rounding_model_gives_the_bounds_derived_by_hand() -> None:
    """linear with N = 1, I = 2, O = 1: out = b + x·w is one addmm (2 products and the bias: n = 3),
    δ_x = δ w and δ_W = xᵀ δ are products with inner size 1, δ_b a sum of one term; an embedding's
    output is a selection (exact)."""
    from torch_ref.layers.rounding import trace

    x, w, b, dout = (torch.tensor(v, dtype=torch.float64) for v in ([[0.5, -2.0]], [[3.0], [0.25]], [1.5], [[-0.75]]))
    twin = info("linear").twin
    traced = trace(twin, {"x": x, "weight": w, "bias": b}, ("x", "weight", "bias"), {}, dout)
    assert torch.equal(traced.terms["out"], 3 * (b.abs() + x.abs() @ w.abs()))
    assert torch.equal(traced.terms["x"], dout.abs() @ w.abs().T)
    assert torch.equal(traced.terms["weight"], x.abs().T @ dout.abs())
    assert torch.equal(traced.terms["bias"], dout.abs().sum(0))
    idx, table = torch.tensor([0, 2, 2]), torch.randn(4, 3, dtype=torch.float64)
    traced = trace(
        info("embedding").twin, {"x": idx, "weight": table}, ("weight",), {}, torch.ones(3, 3, dtype=torch.float64)
    )
    assert torch.equal(traced.terms["out"], torch.zeros(3, 3, dtype=torch.float64))
    # δ_W is one scatter-add into zeros: the repeated index 2 adds up three terms (the zero it starts
    # from and two δ rows), the most of any entry, so n = 3 for every entry, times each entry's sum of sizes
    sizes = torch.tensor([[1.0] * 3, [0.0] * 3, [2.0] * 3, [0.0] * 3], dtype=torch.float64)
    assert torch.equal(traced.terms["weight"], 3 * sizes)
    # out = (x·x)·x: two roundings, u |x²| carried by ×x, and u |x³|: S = 2 |x|³
    cube = torch.tensor([[1.5, -0.5]], dtype=torch.float64)
    traced = trace(lambda x: x * x * x, {"x": cube}, ("x",), {}, torch.ones(1, 2, dtype=torch.float64))
    assert torch.equal(traced.terms["out"], 2 * cube.abs() ** 3)
