"""Hand-picked cases: the slides' own 2-2-1 network, ReLU kinks hit exactly, saturated sigmoids,
one example, one-unit layers."""

import numpy as np
import pytest

import manual
import torch_ref
from manual import Params, Spec
from torch_ref import assert_agree, compare, tolerance
from torch_ref.frontends.crosscheck import crosscheck_deltas, crosscheck_gradients, crosscheck_update

SLIDES = Spec((2, 2, 1), ("sigmoid", "sigmoid"), "bce")


def _slides_case(rng):
    params = manual.init_params(SLIDES, rng, gain=2.0)
    x = rng.uniform(-2, 2, size=(1, 2))
    y = rng.uniform(0, 1, size=(1, 1))
    return params, x, y


def test_slides_2_2_1_matches_the_scalar_formulas():
    """Slides "Looking backwards: second layer" / "first layer": dL/dw_j1^(2) = (y* - y) z_j and
    dL/dw_ji^(1) = (y* - y) z_i (1 - z_i) w_i1^(2) x_j, one example."""
    rng = np.random.default_rng(20261127)
    params, x, y = _slides_case(rng)
    w1, w2 = params.weights
    z = 1 / (1 + np.exp(-(x[0] @ w1)))
    y_star = 1 / (1 + np.exp(-(z @ w2[:, 0])))
    by_hand_w2 = np.array([[(y_star - y[0, 0]) * z[j]] for j in range(2)])
    by_hand_w1 = np.array(
        [[(y_star - y[0, 0]) * z[i] * (1 - z[i]) * w2[i, 0] * x[0, j] for i in range(2)] for j in range(2)]
    )
    ours = manual.gradients(SLIDES, params, x, y)
    tol = tolerance(SLIDES, params, x, y)
    assert_agree(compare(["W1", "W2"], ours.weights, [by_hand_w1, by_hand_w2], tol.grads.weights))
    assert_agree(crosscheck_gradients(SLIDES, params, x, y))


def test_relu_inputs_exactly_zero_take_subgradient_zero_both_ways():
    spec = Spec((2, 3, 1), ("relu", "identity"), "squared")
    W1 = np.array([[1.0, -1.0, 0.5], [1.0, 1.0, 0.5]])  # x = (1, -1): I = (0, -2, 0)
    W2 = np.array([[1.0], [2.0], [-1.0]])
    params = Params([W1, W2])
    X = np.array([[1.0, -1.0]])
    Y = np.array([[3.0]])
    I = manual.forward(spec, params, X).I[0]
    assert np.array_equal(I, [[0.0, -2.0, 0.0]])
    ours = manual.deltas(spec, params, X, Y)[0]
    theirs = torch_ref.deltas(spec, params, X, Y)[0]
    assert np.array_equal(ours, np.zeros((1, 3))) and np.array_equal(theirs, np.zeros((1, 3)))
    assert_agree(crosscheck_gradients(spec, params, X, Y))


def test_relu_kink_inside_deeper_layers_with_grid_values():
    spec = Spec((3, 4, 4, 2), ("relu", "relu", "softmax"), "ce", bias=True)
    rng = np.random.default_rng(7)
    W = [rng.integers(-2, 3, size=s) / 2 for s in spec.shapes()]
    b = [np.zeros(o) for _, o in spec.shapes()]
    X = rng.integers(-2, 3, size=(6, 3)) / 2
    Y = np.tile([[0.25, 0.75]], (6, 1))
    params = Params(W, b)
    fwd = manual.forward(spec, params, X)
    assert any((I == 0).any() for I in fwd.I[:2]), "the case must hit the kink"
    assert_agree(crosscheck_deltas(spec, params, X, Y))
    assert_agree(crosscheck_gradients(spec, params, X, Y))


@pytest.mark.parametrize(
    "loss,out", [("bce", "sigmoid"), ("squared", "sigmoid"), ("ce", "sigmoid"), ("bce", "softmax")]
)
def test_saturated_outputs_short_of_the_clamp(loss, out):
    """|I| about 20: y*(1 - y*) near 2e-9, far into saturation but above torch's 1e-12 floor."""
    spec = Spec((1, 2), (out,), loss)
    params = Params([np.array([[10.0, -10.0]])])
    X = np.array([[2.0], [-2.0]])
    Y = np.array([[0.5, 0.5], [0.5, 0.5]]) if loss != "squared" else np.array([[1.0, 0.0], [0.0, 1.0]])
    assert_agree(crosscheck_gradients(spec, params, X, Y))
    assert_agree(crosscheck_deltas(spec, params, X, Y))


@pytest.mark.parametrize("act", ["sigmoid", "tanh"])
def test_saturated_hidden_layer(act):
    spec = Spec((2, 3, 1), (act, "identity"), "squared")
    params = Params([np.array([[15.0, -15.0, 0.1], [15.0, 15.0, -0.1]]), np.array([[1.0], [1.0], [1.0]])])
    X = np.array([[1.0, 1.0], [-1.0, 1.0]])
    Y = np.array([[0.0], [1.0]])
    assert_agree(crosscheck_deltas(spec, params, X, Y))
    assert_agree(crosscheck_gradients(spec, params, X, Y))


def test_one_example_and_one_unit_layers():
    spec = Spec((1, 1, 1, 1), ("tanh", "relu", "sigmoid"), "bce", bias=True, reduction="mean")
    rng = np.random.default_rng(3)
    params = manual.init_params(spec, rng)
    X, Y = np.array([[0.7]]), np.array([[1.0]])
    assert_agree(crosscheck_gradients(spec, params, X, Y))
    assert_agree(crosscheck_update(spec, params, X, Y, 0.5))


def test_sgd_step_takes_every_gradient_at_the_old_weights():
    """Slides "Looking backwards: second layer" and "First layer weight updates", by hand:
    w_j1^(2) := w_j1^(2) - xi (y* - y) z_j and w_ji^(1) := w_ji^(1) - xi w_i1^(2) (y* - y) z_i (1 - z_i) x_j,
    both with the weights before the step."""
    rng = np.random.default_rng(11)
    params, x, y = _slides_case(rng)
    xi = 0.3
    w1, w2 = params.weights
    z = 1 / (1 + np.exp(-(x[0] @ w1)))
    y_star = 1 / (1 + np.exp(-(z @ w2[:, 0])))
    d = y_star - y[0, 0]
    by_hand_w2 = np.array([[w2[j, 0] - xi * d * z[j]] for j in range(2)])
    by_hand_w1 = np.array(
        [[w1[j, i] - xi * w2[i, 0] * d * z[i] * (1 - z[i]) * x[0, j] for i in range(2)] for j in range(2)]
    )
    new = manual.sgd_step(SLIDES, params, x, y, xi)
    tol = tolerance(SLIDES, params, x, y, lr=xi)
    assert_agree(compare(["W1", "W2"], new.weights, [by_hand_w1, by_hand_w2], tol.update.weights))
