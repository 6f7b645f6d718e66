"""Issue 21, first order: no wrong result accepted, every first-order bound pinned from both sides.

Each allowance gets a right result just inside (passes) and a wrong one beyond (fails): the derived
gradient bound (recomputed here by hand for a one-weight network), the update bound, torch's bce
floor (two references), float32 outputs that round to 1 (no allowance beyond the stable form), the
rounding-level band, and the "unstable" verdict (verified evidence, every failing row saturated)."""

from __future__ import annotations

import adversaries_first_order as A
import derivations as D
import numpy as np
import pytest

import manual
from manual import Params, Spec
from torch_ref import DerivationMismatch, check_case, check_derivation
from torch_ref.frontends.crosscheck import crosscheck_gradients, crosscheck_update
from torch_ref.numerics.tolerance import rounding_band, tolerance
from torch_ref.strategies import Case
from torch_ref.twin.reference import reference

BCE = Spec((1, 1), ("sigmoid",), "bce")


def _case(spec: Spec, W: list, X: list, Y: list, dtype=np.float64, lr: float = 0.1) -> Case:
    params = Params([np.array(w, dtype=dtype) for w in W])
    return Case(spec, params, np.array(X, dtype=dtype), np.array(Y, dtype=dtype), lr, 0, False)


def _returning(grads: Params):
    return lambda spec, p, X, Y: grads.map(lambda a: np.array(a, dtype=X.dtype))


# ------------------------------------------------------------------ the derived bound, by hand


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradient_bound_equals_its_formula_and_is_pinned_from_both_sides(dtype):
    """identity + squared, one weight: I = x w, delta = I - y, grad = x delta. kappa = 1 + 1 + 4,
    unit = 2 eps kappa; M(delta) = e_O + |O| + |y| with e_O = e_I = |x w|; the bound is
    unit |x| (M + |delta|) + kappa tiny."""
    spec = Spec((1, 1), ("identity",), "squared", bias=False)
    x, w, y = 0.7, 1.3, 0.2
    case = _case(spec, [[[w]]], [[x]], [[y]], dtype)
    eps, tiny = float(np.finfo(dtype).eps), float(np.finfo(dtype).tiny)
    X64 = np.float64(np.asarray(x, dtype))
    W64 = np.float64(np.asarray(w, dtype))
    Y64 = np.float64(np.asarray(y, dtype))
    I = X64 * W64
    kappa, unit = 6, 2 * eps * 6
    M = abs(I) + abs(I) + abs(Y64)
    by_hand = unit * abs(X64) * (M + abs(I - Y64)) + kappa * tiny
    tol = tolerance(spec, case.params, case.X, case.Y)
    assert tol.grads.weights[0][0, 0] == pytest.approx(by_hand, rel=1e-12)
    g = reference(spec, case.params, case.X, case.Y).grads.weights[0]
    inside = crosscheck_gradients(spec, case.params, case.X, case.Y, Params([g + 0.9 * by_hand]))
    beyond = crosscheck_gradients(spec, case.params, case.X, case.Y, Params([g + 3 * by_hand]))
    assert inside.ok and not beyond.ok, (inside, beyond)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_update_bound_equals_its_formula_and_is_pinned_from_both_sides(dtype):
    """W - lr g: lr times the gradient's bound, plus 2 eps (|W| + lr |g|) + tiny."""
    spec = Spec((1, 1), ("identity",), "squared", bias=False)
    x, w, y, lr = 0.7, 1.3, 0.2, 0.5
    case = _case(spec, [[[w]]], [[x]], [[y]], dtype, lr)
    eps, tiny = float(np.finfo(dtype).eps), float(np.finfo(dtype).tiny)
    ref = reference(spec, case.params, case.X, case.Y, lr=lr)
    tol = tolerance(spec, case.params, case.X, case.Y, lr=lr)
    W64, g = float(np.asarray(w, dtype)), float(ref.grads.weights[0][0, 0])
    by_hand = lr * tol.grads.weights[0][0, 0] + 2 * eps * (abs(W64) + lr * abs(g)) + tiny
    assert tol.update is not None and tol.update.weights[0][0, 0] == pytest.approx(by_hand, rel=1e-12)
    new = ref.updated.weights[0]
    inside = crosscheck_update(spec, case.params, case.X, case.Y, lr, Params([new + 0.9 * by_hand]))
    beyond = crosscheck_update(spec, case.params, case.X, case.Y, lr, Params([new + 3 * by_hand]))
    assert inside.ok and not beyond.ok, (inside, beyond)


# ------------------------------------------------------------------ torch's bce floor: two references


def _floor_case() -> Case:
    # example 0: I = 40, y* = 1 exactly, torch's delta 0 (floored); example 1: I = 20, above the floor
    return _case(BCE, [[[40.0]]], [[1.0], [0.5]], [[0.25], [0.75]])


def _with_row0_delta(case: Case, d0: float) -> Params:
    """grad W = sum_n x_n delta_n with the exact delta at example 1 and ``d0`` at example 0."""
    ref = reference(case.spec, case.params, case.X, case.Y)
    d = ref.exact_delta.copy()
    d[0, 0] = d0
    return Params([case.X.T @ d])


def test_floor_torchs_value_and_the_exact_value_pass_each_as_a_whole():
    case = _floor_case()
    ref = reference(case.spec, case.params, case.X, case.Y)
    assert ref.floored[0, 0] and not ref.floored[1, 0]
    torch_v = check_case(_returning(ref.grads), case)
    exact_v = check_case(manual.gradients, case)
    assert torch_v.kind == "agree" and exact_v.kind == "agree", (torch_v, exact_v)
    assert "follows torch's values" in str(torch_v) and "follows the exact values" in str(exact_v)


@pytest.mark.parametrize("factor", [-1.0, 1.5, 0.5], ids=["exact sign flipped", "exact x1.5", "halfway"])
def test_floor_accepts_nothing_around_or_between_the_two_references(factor):
    """torch's delta at example 0 is 0 (y*(1 - y*) = 0, floored); the exact is y* - y = 0.75. The old
    symmetric band |g - torch| <= |exact - torch| accepted -exact; nothing but the two is right."""
    case = _floor_case()
    ref = reference(case.spec, case.params, case.X, case.Y)
    v = check_case(_returning(_with_row0_delta(case, factor * ref.exact_delta[0, 0])), case)
    assert v.kind == "mismatch", v


# ------------------------------------------------------------------ float32 outputs that round to 1


def _float32_saturated() -> Case:
    # example 0: I = 20, y* rounds to 1 in float32 (float64: 1 - 2e-9, above torch's floor); example 1: I = 1
    return _case(BCE, [[[20.0]]], [[1.0], [0.05]], [[0.25], [0.5]], np.float32)


def test_float32_saturated_row_accepts_the_stable_form():
    case = _float32_saturated()
    assert manual.forward(case.spec, case.params, case.X).prediction[0, 0] == 1.0
    v = check_case(manual.gradients, case)  # y* - y
    assert v.kind == "agree", v
    assert any("bce undetermined in float32" in c and "nothing more is allowed" in c for c in v.checked.conventions)


@pytest.mark.parametrize(
    "fn", [A.everything_times_1p5, A.wrong_sign_x3_past_logit_15], ids=["1.5x everywhere", "-3x saturated row"]
)
def test_float32_saturated_row_rejects_the_wrong_gradients_it_once_accepted(fn):
    v = check_case(fn, _float32_saturated())
    assert not v.passed, v


# ------------------------------------------------------------------ "unstable": verified evidence only


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_finite_wrong_value_at_a_saturated_row_is_a_mismatch_not_unstable(dtype):
    """-3 (y* - y) at |I| > 15: finite, taken in both dtypes, so the re-run shows the same error."""
    case = _case(BCE, [[[30.0]]], [[1.0], [0.05]], [[0.25], [0.5]], dtype)
    v = check_case(A.wrong_sign_x3_past_logit_15, case)
    assert v.kind == "mismatch", v
    assert "overflows" not in str(v)


def test_naive_division_at_y_star_one_is_unstable():
    """The slides' general bce formula divides 0 by 0 where y* = 1 (I = 40 in float64): NaN, verified."""
    case = _case(BCE, [[[40.0]]], [[1.0], [0.05]], [[0.25], [0.5]])
    v = check_case(D.slides_general_naive, case)
    assert v.kind == "unstable", v


@pytest.mark.parametrize("wrong", ["1.5x", "NaN"])
def test_unstable_needs_every_failing_row_saturated(wrong):
    """NaN at the saturated example 0 (y* = 1, the naive division) and, at the unsaturated example 1
    (y = 0.5 exactly, which no fresh draw repeats), 1.5x or NaN: wrong math there, a mismatch."""

    def naive_and_wrong(spec, p, X, Y):
        def out(s, I, O, Y):
            with np.errstate(all="ignore"):
                d = (O - Y) / (O * (1 - O)) * O * (1 - O)
            return np.where(Y == 0.5, 1.5 * d if wrong == "1.5x" else np.nan, d)

        with np.errstate(all="ignore"):
            return D.backprop(spec, p, X, Y, output_delta=out)

    case = _case(BCE, [[[40.0]]], [[1.0], [0.05]], [[0.25], [0.5]])
    assert check_case(D.slides_general_naive, case).kind == "unstable"
    v = check_case(naive_and_wrong, case)
    assert v.kind == "mismatch", v


# ------------------------------------------------------------------ the rounding-level band


@pytest.mark.parametrize("k,kind", [(0.5, "precision"), (3.0, "mismatch")])
def test_precision_band_is_pinned_from_both_sides(k, kind):
    """float32 tanh + squared: one entry moved by tol + k band: inside the band (k = 0.5) finite
    differences cannot separate it (precision); three band-widths away is a mismatch."""
    spec = Spec((3, 4, 2), ("tanh", "identity"), "squared", bias=False)
    rng = np.random.default_rng(5)
    params = Params([rng.uniform(-1, 1, (3, 4)).astype(np.float32), rng.uniform(-1, 1, (4, 2)).astype(np.float32)])
    case = Case(
        spec,
        params,
        rng.uniform(-1, 1, (3, 3)).astype(np.float32),
        rng.uniform(-1, 1, (3, 2)).astype(np.float32),
        0.1,
        0,
        False,
    )
    ref = reference(spec, case.params, case.X, case.Y)
    tol = tolerance(spec, case.params, case.X, case.Y)
    g = ref.grads.weights[1].copy()
    band = rounding_band(g, np.float32, tol.grads.weights[1])
    s = np.abs(g) + tol.grads.weights[1]
    assert band == pytest.approx(1.3e-6 * (s + s.max()), rel=1e-12)  # assert_close's float32 rtol, by hand
    g[0, 0] += tol.grads.weights[1][0, 0] + k * band[0, 0]
    v = check_case(_returning(Params([ref.grads.weights[0], g])), case)
    assert v.kind == kind, v


# ------------------------------------------------------------------ the strategies reach every regime


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_wrong_stable_branch_past_the_floor_is_caught(seed):
    with pytest.raises(DerivationMismatch):
        check_derivation(A.stable_branch_wrong_sign_past_floor, activations=["sigmoid"], losses=["bce"], seed=seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_wrong_branch_where_float32_rounds_to_one_is_caught(seed):
    with pytest.raises(DerivationMismatch):
        check_derivation(
            A.wrong_branch_where_y_star_rounds_to_one,
            activations=["sigmoid"],
            losses=["bce"],
            seed=seed,
            dtype="float32",
        )


def test_exact_times_1p5_past_the_floor_is_caught():
    with pytest.raises(DerivationMismatch):
        check_derivation(A.exact_times_1p5_past_floor, activations=["sigmoid", "softmax"], losses=["bce"], seed=0)


def test_a_loss_of_digits_spread_over_several_saturated_rows_is_unstable_not_a_mismatch():
    """The false-alarm campaign's case 5207 (float32, softmax + bce, logits 16): the slides' general
    formula loses digits in five saturated rows, none beyond its own bound alone, the sum beyond it.
    The evidence is taken on the whole case (its float64 re-run agrees): unstable, not wrong math; a
    sign flipped in the same rows is still a mismatch."""
    import sys
    from pathlib import Path

    import adversaries_campaign as C

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from false_alarm_campaign import draw_case

    from torch_ref.first_order.verdict import classify

    case, _ = draw_case(0, 5207)
    v = classify(D.slides_general_naive, case)
    assert v.kind == "unstable", str(v)
    assert "the re-run in the other float dtype shows it" in str(v)
    assert classify(C.scaled_in(C.saturated, -1.0), case).kind == "mismatch"
