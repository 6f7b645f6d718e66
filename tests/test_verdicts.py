"""Every verdict true: no false alarm on right code, the three outcomes (agree / precision / mismatch)
and *unstable*, no miss in deeper layers, and report sentences that hold on the case they show."""

import warnings

import derivations as D
import numpy as np
import pytest

import manual
from manual import Params, Spec
from torch_ref import DerivationMismatch, PrecisionWarning, check_case, check_derivation, check_update
from torch_ref.first_order.diagnose import diagnose
from torch_ref.frontends.crosscheck import crosscheck_gradients
from torch_ref.strategies import Case, case_from


def _case(spec, params, X, Y, lr=0.1):
    return Case(spec, params, np.asarray(X, dtype=float), np.asarray(Y, dtype=float), lr, 0, False)


# ------------------------------------------------------------------------------------------ false alarms


def in_place_step(spec, params, X, Y, lr):
    """A right update rule that changes its arrays in place and returns them."""
    g = manual.gradients(spec, params, X, Y)
    for W, G in zip(params.weights, g.weights):
        W -= lr * G
    if params.biases is not None:
        for b, G in zip(params.biases, g.biases):
            b -= lr * G
    return params


def writes_into_its_inputs(spec, params, X, Y):
    """Right gradients, after which it scribbles over every argument it was given."""
    g = manual.gradients(spec, params, X, Y)
    for _, a in params.arrays():
        a *= 3.0
    X *= -1.0
    Y *= 0.5
    return g


def test_in_place_update_rule_is_checked_against_the_weights_before_the_call():
    check_update(in_place_step, seed=0, max_examples=30)


def test_grad_fn_that_writes_into_its_inputs_is_not_a_false_alarm():
    check_derivation(writes_into_its_inputs, seed=0, max_examples=30)


def test_case_arrays_are_never_handed_out():
    case = case_from(Spec((2, 3, 1), ("tanh", "sigmoid"), "bce", bias=True), N=3, seed=1)
    before = [a.copy() for _, a in case.params.arrays()] + [case.X.copy(), case.Y.copy()]
    assert check_case(in_place_step, case, update=True).kind == "agree"
    assert check_case(writes_into_its_inputs, case).kind == "agree"
    after = [a for _, a in case.params.arrays()] + [case.X, case.Y]
    assert all(np.array_equal(x, y) for x, y in zip(before, after))


def test_exact_bce_derivative_passes_where_torch_floors_softmax_outputs():
    """softmax + bce with logits 30 apart: y*(1 - y*) below torch's floor; the exact (stable)
    derivative is accepted and the report names the floor."""
    spec = Spec((1, 3), ("softmax",), "bce")
    params = Params([np.array([[15.0, -15.0, 2.0]])])
    X, Y = np.array([[1.0], [2.0]]), np.array([[0.5, 0.5, 0.2], [0.1, 0.9, 0.0]])
    exact = D.exact_stable(spec, params, X, Y)
    torch_like = manual.gradients(spec, params, X, Y)
    assert np.abs(exact.weights[0] - torch_like.weights[0]).max() > 0.1  # the two conventions differ here
    for grads in (exact, torch_like):
        check = crosscheck_gradients(spec, params, X, Y, grads)
        assert check.ok, str(check)
        assert "torch's floor 9.99999996e-13" in str(check)
    verdict = check_case(D.exact_stable, _case(spec, params, X, Y))
    assert verdict.kind == "agree" and "bce floor" in str(verdict)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_exact_stable_derivation_passes_every_output_activation(dtype):
    summary = check_derivation(D.exact_stable, losses=("bce",), dtype=dtype, seed=0)
    assert summary.pairs == {("sigmoid", "bce"), ("softmax", "bce")}


def test_one_unit_softmax_under_bce_is_never_drawn_and_never_accepted():
    with pytest.raises(ValueError, match="one-unit 'softmax'"):
        Spec((2, 1), ("softmax",), "bce")
    summary = check_derivation(manual.gradients, activations=("softmax", "tanh"), losses=("bce",), seed=0)
    assert all(s.sizes[-1] >= 2 for s in summary.specs)
    with pytest.raises(ValueError, match=r"losses \('bce',\) have no valid output"):
        check_derivation(manual.gradients, activations=("softmax",), losses=("bce",), widths=1, depths=1)


# ------------------------------------------------------------------------------------------ precision


def test_rounding_level_loss_is_precision_a_warning_not_a_mismatch():
    """(w_before - w_after) / lr in float64 loses digits beyond the derived bound, not the math."""
    case = case_from(Spec((2, 3, 1), ("tanh", "sigmoid"), "bce"), N=4, seed=0)
    verdict = check_case(D.weights_recovered_from_a_step, case)
    assert verdict.kind == "precision" and verdict.passed
    text = str(verdict)
    assert (
        "cannot tell the derivation" in text and "nothing here tells a less accurate evaluation from wrong math" in text
    )
    with pytest.warns(PrecisionWarning, match="agrees with autograd only to rounding level"):
        summary = check_derivation(D.weights_recovered_from_a_step, seed=0, max_examples=30)
    assert summary.precision > 0
    with pytest.raises(DerivationMismatch, match="only to rounding level, and strict=True"):
        check_derivation(D.weights_recovered_from_a_step, seed=0, max_examples=30, strict=True)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_perturbation_at_rounding_level_is_at_most_precision(dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)
        check_derivation(D.perturbed_at_rounding_level, dtype=dtype, seed=0)


def test_float64_gradient_rounded_to_float32_fails_the_derived_bound_but_is_at_most_precision():
    """The tightness of the float64 bound: float32 rounding alone (6e-8 relative) breaks it."""
    for seed in range(5):
        case = case_from(Spec((3, 4, 2), ("tanh", "softmax"), "ce", bias=True), N=5, seed=seed)
        rounded = manual.gradients(case.spec, case.params, case.X, case.Y).map(lambda a: a.astype(np.float32))
        assert not crosscheck_gradients(case.spec, case.params, case.X, case.Y, rounded).ok
        verdict = check_case(lambda s, p, X, Y: manual.gradients(s, p, X, Y).map(lambda a: a.astype(np.float32)), case)
        assert verdict.kind == "precision"
        assert verdict.findings[0] == "grad_fn returned float32 arrays in a float64 check."


def test_within_band_but_separated_by_finite_differences_is_a_mismatch():
    """A relative error of 1.5e-7 is inside the float64 band (1e-7 of |e| + max|e|), but where the
    gradient (1000) is large against the objective (0.5), float64 finite differences resolve it."""
    case = _case(Spec((1, 1), ("identity",), "squared"), Params([np.array([[0.5]])]), [[1000.0]], [[499.0]])
    verdict = check_case(lambda s, p, X, Y: manual.gradients(s, p, X, Y).map(lambda a: a * (1 + 1.5e-7)), case)
    assert verdict.kind == "mismatch"
    assert "finite differences in float64 separate them" in str(verdict)


# ------------------------------------------------------------------------------------------ unstable


def _saturated_softmax_bce():
    spec = Spec((2, 3, 2), ("tanh", "softmax"), "bce", bias=True)
    c = case_from(spec, N=3, seed=0)
    return Case(
        spec, Params([c.params.weights[0], c.params.weights[1] * 400], c.params.biases), c.X, c.Y, 0.1, 0, False
    )


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(_saturated_softmax_bce, id="softmax+bce, every example saturated"),
        pytest.param(
            lambda: _case(Spec((1, 1), ("sigmoid",), "ce"), Params([np.array([[-800.0]])]), [[1.0]], [[1.0]]),
            id="sigmoid+ce, y* = 0",
        ),
        pytest.param(
            lambda: _case(
                Spec((1, 1), ("sigmoid",), "bce"), Params([np.array([[40.0]])]), [[1.0], [0.5]], [[0.25], [0.5]]
            ),
            id="sigmoid+bce, one of two examples saturated",
        ),
    ],
)
def test_naive_general_formula_is_unstable_not_wrong(make):
    verdict = check_case(D.slides_general_naive, make())
    text = str(verdict)
    assert verdict.kind == "unstable" and not verdict.passed, text
    assert "where autograd is finite" in text and "whose outputs saturate" in text
    assert "it agrees with autograd: the formula holds there" in text
    assert "A stable form for" in text


def test_oracle_reports_unstable_with_the_verified_sentences():
    from torch_ref.engine.options import parse_options
    from torch_ref.first_order.report import render_failure

    opt = parse_options(**{"max_examples": 1, "seed": 0})
    text = render_failure(check_case(D.slides_general_naive, _saturated_softmax_bce()), D.slides_general_naive, (), opt)
    assert text.startswith("grad_fn 'slides_general_naive' is unstable")
    assert "disagrees" not in text and "Diagnosis" not in text and "Blame" not in text
    assert "A stable form for softmax+bce" in text


def test_wrong_math_at_saturation_is_still_a_mismatch():
    """NaN where outputs saturate, but wrong at the unsaturated points too: not 'unstable'."""

    def naive_and_wrong(spec, p, X, Y):
        return D.slides_general_naive(spec, p, X, Y).map(lambda a: 2 * a)

    verdict = check_case(naive_and_wrong, _saturated_softmax_bce())
    assert verdict.kind == "mismatch"
    assert "disagrees with autograd too, so this is not only overflow" in str(verdict)


# ------------------------------------------------------------------------------------------ misses


def relu_one_at_zero_below_the_first_layer(spec, p, X, Y):
    """ReLU'(0) taken as 1 in every ReLU layer except the first."""
    layers = iter(range(spec.depth - 2, -1, -1))

    def dA(name, I, O):
        l = next(layers)
        return (I >= 0).astype(I.dtype) if name == "relu" and l >= 1 else D._dA(name, I, O)

    return D.backprop(spec, p, X, Y, dA=dA)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_relu_kink_mistake_in_deeper_layers_is_caught(dtype):
    with pytest.raises(DerivationMismatch, match=r"A' of layer [2-9] \(relu\) at its kink I = 0 is taken as 1"):
        check_derivation(
            relu_one_at_zero_below_the_first_layer,
            activations=("relu", "identity"),
            losses=("squared",),
            depths=(3, 4),
            dtype=dtype,
            seed=0,
        )


def test_exact_zero_in_a_deeper_relu_layer_is_checked_exactly():
    spec = Spec((3, 4, 4, 2), ("relu", "relu", "identity"), "squared", bias=True)
    case = case_from(spec, N=3, seed=4, grid=True, kink=True)
    from torch_ref.numerics.tolerance import tolerance
    from torch_ref.twin.reference import reference

    ref = reference(spec, case.params, case.X, case.Y)
    assert ref.I[1][0, 0] == 0 and np.any(case.params.weights[1][:, 0] != 0)  # zero from nonzero terms
    tol = tolerance(spec, case.params, case.X, case.Y, reference_pass=ref)
    assert tol.deltas[1][0, 0] <= tol.kappa * np.finfo(np.float64).tiny  # no kink allowance there


# ------------------------------------------------------------------------------------------ sentences


def _mismatch(fn, case):
    verdict = check_case(fn, case)
    assert verdict.kind == "mismatch", str(verdict)
    return diagnose(verdict)


def test_no_transpose_named_for_a_one_by_one_matrix_or_a_float32_result():
    case = case_from(Spec((1, 1), ("sigmoid",), "bce"), N=2, seed=0)
    assert not any(
        "transpose" in d for d in _mismatch(lambda s, p, X, Y: [3 * manual.gradients(s, p, X, Y).weights[0]], case)
    )
    case = case_from(Spec((3, 3), ("tanh",), "squared"), N=1, seed=0, grid=True)
    found = _mismatch(lambda s, p, X, Y: [(2 * manual.gradients(s, p, X, Y).weights[0]).astype(np.float32)], case)
    assert found == ["a factor 2 (a 1/2 missing?) in W1"]


def test_no_W_for_W_transpose_when_every_hidden_width_is_one():
    case = case_from(Spec((2, 1, 1, 1), ("tanh", "tanh", "identity"), "squared"), N=3, seed=0)
    found = _mismatch(D.tanh_derivative_without_square, case)
    assert not any("W^T" in d for d in found)


def test_factors_are_found_and_named_per_array():
    case = case_from(Spec((3, 4, 2), ("tanh", "softmax"), "ce", bias=True), N=5, seed=0)

    def scaled(spec, p, X, Y):
        g = manual.gradients(spec, p, X, Y)
        return Params([g.weights[0], 2 * g.weights[1]], [4 * g.biases[0], g.biases[1]])

    assert _mismatch(scaled, case) == ["constant factors per array: b1 x4, W2 x2"]


def test_rounding_level_entries_never_make_a_factor():
    """A derivation that returns (nearly) nothing is 'zero', not 'a constant factor 2e-31'."""
    case = case_from(Spec((3, 4, 2), ("tanh", "softmax"), "ce", bias=True), N=5, seed=0)
    found = _mismatch(lambda s, p, X, Y: manual.gradients(s, p, X, Y).map(lambda a: a * 1e-30), case)
    assert found == ["zero where autograd is not: W1, b1, W2, b2"]


def test_update_through_already_updated_weights_is_named():
    with pytest.raises(DerivationMismatch) as info:
        check_update(D.step_through_updated_weights_above, seed=0)
    assert "through the already-updated weights of the layer above" in str(info.value)


def test_table_labels_the_share_column_diff_over_tol():
    case = case_from(Spec((2, 3, 1), ("tanh", "sigmoid"), "bce"), N=4, seed=0)
    assert "diff/tol" in str(crosscheck_gradients(case.spec, case.params, case.X, case.Y))
    assert "tol used" not in str(crosscheck_gradients(case.spec, case.params, case.X, case.Y))
