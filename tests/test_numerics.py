"""Saturation and degenerate outputs: the two implementations agree, or the difference is named as
the convention it is; and results are bitwise reproducible on the CPU."""

import numpy as np
import pytest

import manual
import torch_ref
from manual import Params, Spec
from torch_ref import assert_agree
from torch_ref.frontends.crosscheck import crosscheck_deltas, crosscheck_gradients


@pytest.mark.parametrize("I", [30.0, 40.0, -40.0], ids=["y*(1-y*)~1e-13", "y*=1 exactly", "y*~4e-18"])
def test_saturated_sigmoid_bce_is_named_a_convention(I):
    spec = Spec((1, 1), ("sigmoid",), "bce")
    params = Params([np.array([[I]])])
    X, Y = np.array([[1.0]]), np.array([[0.25]])
    ours = manual.deltas(spec, params, X, Y)[0]
    theirs = torch_ref.deltas(spec, params, X, Y)[0]
    y_star = 1 / (1 + np.exp(-I))  # the same evaluation as manual's on NumPy: bitwise the same y*
    assert ours[0, 0] == y_star - 0.25  # the exact limit, kept by the shortcut
    assert abs(theirs[0, 0]) < abs(ours[0, 0])  # torch's clamp shrinks it
    for check in (crosscheck_deltas(spec, params, X, Y), crosscheck_gradients(spec, params, X, Y)):
        assert check.ok
        assert check.conventions and "bce floor" in check.conventions[0]
        assert "convention: bce floor" in str(check) and "9.99999996e-13" in str(check)


@pytest.mark.parametrize("I", [30.0, 40.0], ids=["y*(1-y*)~1e-13 below the floor", "y*=1 exactly"])
def test_general_bce_formula_follows_torchs_floor_exactly(I):
    """torch's floor is float32's 1e-12 (9.99999996e-13); with 1e-12 itself the I=30 case parts by 4e-9.

    The bound is written down rather than taken from the tolerance model, whose bce floor
    convention accepts anything between torch's value and the exact one: (y* - y) / max(p, floor) * p
    with p = y*(1 - y*) is four roundings on each side, so the two agree to 16 eps relative."""
    spec = Spec((1, 1), ("sigmoid",), "bce")
    params = Params([np.array([[I]])])
    X, Y = np.array([[1.0]]), np.array([[0.25]])
    general = manual.deltas(spec, params, X, Y, simplified=False)[0]
    eps = np.finfo(np.float64).eps
    np.testing.assert_allclose(general, torch_ref.deltas(spec, params, X, Y)[0], rtol=16 * eps, atol=0)


def test_float32_saturation_checked_against_float64_reference():
    """In float32 sigmoid(20) rounds to 1; the float64 reference is still short of torch's floor."""
    spec = Spec((1, 1), ("sigmoid",), "bce")
    params = Params([np.array([[20.0]], dtype=np.float32)])
    X, Y = np.array([[1.0]], dtype=np.float32), np.array([[0.25]], dtype=np.float32)
    assert manual.forward(spec, params, X).prediction[0, 0] == 1.0
    check = crosscheck_gradients(spec, params, X, Y)
    assert check.ok and not any("bce floor" in c for c in check.conventions)
    # y*(1 - y*) = 0 in float32: a general-formula derivation would divide by nothing, and says so
    assert any("bce undetermined in float32" in c for c in check.conventions)


def test_softmax_over_a_single_unit_under_bce_is_rejected():
    """y* = softmax of one logit is the constant 1: log(1 - y*) = log 0, the objective is infinite."""
    with pytest.raises(ValueError, match=r"one-unit 'softmax' output is not accepted.*log 0"):
        Spec((3, 4, 1), ("tanh", "softmax"), "bce")


@pytest.mark.parametrize("loss", ["ce", "squared"])
def test_softmax_over_a_single_unit(loss):
    """y* = softmax of one logit is 1 whatever the weights: every gradient is exactly 0 both ways."""
    spec = Spec((3, 4, 1), ("tanh", "softmax"), loss, bias=True)
    rng = np.random.default_rng(0)
    params = manual.init_params(spec, rng)
    X = rng.uniform(-1, 1, size=(5, 3))
    Y = np.ones((5, 1)) if loss == "ce" else rng.uniform(0, 1, size=(5, 1))
    ours = manual.gradients(spec, params, X, Y)
    assert all(not np.any(a) for _, a in ours.arrays())
    assert_agree(crosscheck_gradients(spec, params, X, Y))
    assert_agree(torch_ref.crosscheck_objective(spec, params, X, Y))


@pytest.mark.parametrize("I,y", [(40.0, 0.25), (-800.0, 0.75)], ids=["log(1-y*) clamped", "log(y*) clamped"])
def test_bce_loss_value_at_the_log_clamp(I, y):
    """torch's BCELoss floors each log at -100; the manual loss does too, so the values agree."""
    spec = Spec((1, 1), ("sigmoid",), "bce")
    params = Params([np.array([[I]])])
    X, Y = np.array([[1.0]]), np.array([[y]])
    assert_agree(torch_ref.crosscheck_objective(spec, params, X, Y))
    # y* rounds to exactly 1 (or 0): the clamped log is exactly -100 and the other log exactly 0
    assert float(manual.objective(spec, params, X, Y)) == (100 * (1 - y) if I > 0 else 100 * y)


@pytest.mark.parametrize("act", ["sigmoid", "tanh"])
def test_saturated_hidden_units_give_zero_derivative_both_ways(act):
    spec = Spec((1, 2, 1), (act, "identity"), "squared")
    params = Params([np.array([[50.0, -50.0]]), np.array([[1.0], [1.0]])])
    X, Y = np.array([[1.0]]), np.array([[0.0]])
    assert manual.deltas(spec, params, X, Y)[0][0, 0] == 0  # A(50) rounds to 1: A' = 0 exactly
    assert torch_ref.deltas(spec, params, X, Y)[0][0, 0] == 0
    assert_agree(crosscheck_deltas(spec, params, X, Y))


def test_same_seed_gives_bitwise_identical_results():
    from torch_ref.strategies import case_from

    def run():
        c = case_from(Spec((4, 6, 3), ("relu", "softmax"), "ce", bias=True), N=5, seed=7)
        return (
            manual.gradients(c.spec, c.params, c.X, c.Y),
            torch_ref.gradients(c.spec, c.params, c.X, c.Y),
            torch_ref.sgd_step(c.spec, c.params, c.X, c.Y, 0.1),
        )

    first, second = run(), run()
    for a, b in zip(first, second):
        for (_, x), (_, y) in zip(a.arrays(), b.arrays()):
            assert np.array_equal(x, y) and x.tobytes() == y.tobytes()


def test_a_case_repr_names_every_draw_and_they_rebuild_it():
    from torch_ref.strategies import case_from

    c = case_from(
        Spec((2, 3, 2), ("relu", "sigmoid"), "bce", bias=True), N=3, seed=11, grid=True, gain=2.0, lr=0.5, kink=True
    )
    text = repr(c)
    for field in ("seed=11", "grid=True", "gain=2.0", "lr=0.5", "N=3", "kink=True", "float64"):
        assert field in text
    again = case_from(c.spec, N=3, seed=11, grid=True, gain=2.0, lr=0.5, kink=True)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(c.params.arrays(), again.params.arrays()))
    assert np.array_equal(c.X, again.X) and np.array_equal(c.Y, again.Y)


# ------------------------------------------------------------------ probabilities that underflow


def test_objective_of_softmax_ce_with_an_underflowed_probability_is_torchs():
    spec = Spec((1, 2), ("softmax",), "ce")
    params = Params([np.array([[800.0, -800.0]])])
    X, Y = np.array([[1.0]]), np.array([[0.25, 0.75]])
    assert manual.forward(spec, params, X).prediction[0, 1] == 0  # y*_2 = e^-1600 underflows
    assert_agree(torch_ref.crosscheck_objective(spec, params, X, Y))
    assert_agree(crosscheck_gradients(spec, params, X, Y, manual.gradients(spec, params, X, Y, simplified=False)))


def test_objective_of_sigmoid_ce_at_an_underflowed_output_is_torchs():
    spec = Spec((1, 1), ("sigmoid",), "ce")
    params = Params([np.array([[-800.0]])])
    X, Y = np.array([[1.0]]), np.array([[1.0]])
    assert float(manual.objective(spec, params, X, Y)) == 800.0 == float(torch_ref.objective(spec, params, X, Y))


def test_float32_bce_log_floor_is_exactly_minus_100():
    spec = Spec((1, 1), ("sigmoid",), "bce")
    params = Params([np.array([[-800.0]], dtype=np.float32)])
    X, Y = np.array([[1.0]], dtype=np.float32), np.array([[1.0]], dtype=np.float32)
    assert float(manual.objective(spec, params, X, Y)) == 100.0 == float(torch_ref.objective(spec, params, X, Y))


def test_finite_differences_stay_finite_where_a_probability_underflows():
    from torch_ref.numerics.blame import finite_difference

    spec = Spec((1, 1), ("sigmoid",), "ce")
    params = Params([np.array([[-800.0]])])
    X, Y = np.array([[1.0]]), np.array([[1.0]])
    estimate = finite_difference(spec, params, X, Y, "W1", (0, 0))
    assert estimate.supports(float(torch_ref.gradients(spec, params, X, Y).weights[0][0, 0]))  # -1
