"""The tolerance model and the comparison: tight enough to reject float32 rounding in a float64
check, never satisfied by a non-finite value, and built from the reference alone."""

import sys

import numpy as np
import pytest
from hypothesis import assume, given

import manual
from manual import Spec
from torch_ref import compare, tolerance
from torch_ref.frontends.crosscheck import crosscheck_gradients, crosscheck_training
from torch_ref.strategies import case_from, cases


@given(cases())
def test_float64_bound_rejects_a_gradient_rounded_to_float32(c):
    """Every nonzero float64 gradient that float32 cannot hold exactly is rejected: the bound is
    float64's, not float32's (a float32 epsilon in the float64 model would let it through).
    Cases scaled to large logits are left out: there a right float64 A' = O(1 - O) itself loses
    digits (1 - O at I = 24 keeps about 5 of them), more than float32's rounding, and the bound says so."""
    assume(c.logits == 0)
    g = manual.gradients(c.spec, c.params, c.X, c.Y)
    rounded = g.map(lambda a: a.astype(np.float32).astype(np.float64))
    if all(np.array_equal(a, b) for (_, a), (_, b) in zip(g.arrays(), rounded.arrays())):
        return  # grid cases whose gradients float32 holds exactly
    assert not crosscheck_gradients(c.spec, c.params, c.X, c.Y, rounded).ok


@pytest.mark.parametrize(
    "actual,expected,note",
    [
        pytest.param(
            [np.nan, 1.0], [0.5, 1.0], "non-finite value nan at (0,) where 0.5 was expected", id="nan-vs-number"
        ),
        pytest.param([np.nan, 1.0], [np.nan, 1.0], "non-finite on both sides", id="nan-vs-nan"),
        pytest.param([np.inf], [np.inf], "non-finite on both sides", id="inf-vs-inf"),
        pytest.param([0.5], [np.inf], "the reference is inf", id="number-vs-inf"),
    ],
)
def test_a_non_finite_value_never_agrees(actual, expected, note):
    result = compare(["W1"], [np.array(actual)], [np.array(expected)], [np.inf])
    assert not result.ok and note in str(result)


@pytest.mark.parametrize("allowed", [np.inf, np.nan], ids=["inf", "nan"])
def test_an_infinite_allowance_is_never_a_pass(allowed):
    """An entry whose bound is not finite is compared with nothing: a value 5 away is not 'ok' there
    (its share was 5/inf = 0), the row says NOT JUDGED, and a beyond-bound entry elsewhere is still a
    MISMATCH."""
    result = compare(["W1"], [np.array([1.0, 6.0])], [np.array([1.0, 1.0])], [np.array([1e-12, allowed])])
    assert not result.ok and result.not_judged and not result.within_band, str(result)
    assert "NOT JUDGED" in str(result) and "1 entries without a finite bound" in str(result)
    beyond = compare(["W1"], [np.array([2.0, 6.0])], [np.array([1.0, 1.0])], [np.array([1e-12, allowed])])
    assert not beyond.ok and not beyond.not_judged and "MISMATCH" in str(beyond)


def test_an_infinite_bound_makes_a_verdict_not_judged_never_agree(monkeypatch):
    """Through the verdict: a gradient tolerance made infinite at W1[0, 0] gives "not judged" (not
    passed) for a result moved by 5 there, and "mismatch" for one also moved beyond the bound elsewhere."""
    import torch_ref.first_order.verdict as V

    case = case_from(Spec((2, 3, 1), ("tanh", "identity"), "squared"), N=3, seed=1)
    from adversaries_pins import unbounded_at_one_entry

    monkeypatch.setattr(V, "tolerance", unbounded_at_one_entry(V.tolerance))

    def moved(spec, params, X, Y, where=(0, 0)):
        g = manual.gradients(spec, params, X, Y)
        g.weights[0][where] += 5.0
        return g

    v = V.classify(moved, case)
    assert v.kind == "not judged" and not v.passed, str(v)
    v = V.classify(lambda *a: moved(*a, where=(1, 1)), case)
    assert v.kind == "mismatch", str(v)


def test_a_comparison_of_nothing_never_passes():
    """No arrays compared: not ok (a check that compared nothing never passes), and said so."""
    result = compare([], [], [], [])
    assert not result.ok and result.not_judged


def test_tolerance_does_not_read_the_code_under_test(monkeypatch):
    """A broken manual (forward, deltas and A' all wrong) leaves the tolerance unchanged."""
    case = case_from(Spec((3, 4, 4, 2), ("tanh", "relu", "softmax"), "ce", bias=True), N=5, seed=2)
    before = tolerance(case.spec, case.params, case.X, case.Y, lr=0.1)

    def broken(*args, **kwargs):
        raise AssertionError("the tolerance model called manual")

    model = sys.modules["torch_ref.numerics.tolerance"]  # the module (the package re-exports a function of that name)
    for module, name in [
        ("manual.forward", "_forward"),
        ("manual.backward", "_deltas"),
        ("manual.backward", "_gradients"),
    ]:
        monkeypatch.setattr(sys.modules[module], name, broken)
        if hasattr(model, name):  # a name imported from manual into the model
            monkeypatch.setattr(model, name, broken)
    # and every registry entry's formulas (the entries are frozen: swapped and put back by hand)
    fields = [(e, f) for e in case.spec.activations for f in ("forward", "derivative", "vjp", "times_derivative")]
    fields += [(case.spec.loss, f) for f in ("value", "gradient", "times_output")]
    saved = [(e, f, getattr(e, f)) for e, f in fields if getattr(e, f) is not None]
    try:
        for e, f, _ in saved:
            object.__setattr__(e, f, broken)
        after = tolerance(case.spec, case.params, case.X, case.Y, lr=0.1)
    finally:
        for e, f, value in saved:
            object.__setattr__(e, f, value)
    for x, y in zip(before.grads.arrays() + before.update.arrays(), after.grads.arrays() + after.update.arrays()):
        assert np.array_equal(x[1], y[1])


def test_tolerance_model_constant_is_torchs_own_floor():
    import torch

    from manual.losses import BCE_EPSILON
    from torch_ref.twin.reference import TORCH_BCE_EPSILON

    O = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)  # y*(1 - y*) = 0: the floor alone
    torch.nn.functional.binary_cross_entropy(O, torch.tensor([0.25], dtype=torch.float64)).backward()
    assert (1.0 - 0.25) / O.grad.item() == TORCH_BCE_EPSILON == BCE_EPSILON


def test_training_allowance_holds_where_the_trajectories_diverge():
    """Identity layers at gain 2 blow up within 4 steps (weights ~1e7): the measured term makes the
    allowance tight, and its own float64 evaluation must not decide."""
    spec = Spec((11,) * 6, ("identity",) * 4 + ("sigmoid",), "bce")
    c = case_from(spec, N=2, seed=0, gain=2.0)
    check = crosscheck_training(c.spec, c.params, c.X, c.Y, 0.1, 4)
    assert check.ok, str(check)
    assert np.abs(manual.sgd_step(spec, c.params, c.X, c.Y, 0.1).weights[0]).max() < 10  # the blow-up is later
