"""Issue 21, training: no infinite bound accepted, nothing compared is not judged, and every term of
the trajectory bound pinned from both sides (a right result just inside passes, a wrong one a few
times beyond fails). The wrong trainers are in :mod:`adversaries_training`."""

from __future__ import annotations

import functools

import adversaries_training as A
import numpy as np
import pytest
import torch

import manual
import torch_ref
import torch_ref.kinds.training as oracle_module
import torch_ref.training.trajectory as T
from torch_ref.numerics.bound import Bound
from torch_ref.strategies import Case, case_from

MOMENTUM = functools.partial(torch.optim.SGD, momentum=0.9)


def _variant(cls: type, **attrs: object) -> type:
    return type(cls.__name__, (cls,), attrs)


def _zero_gradient_case(lr: float, dtype: type = np.float64) -> Case:
    """Targets equal to the outputs of an identity layer on grid values: every gradient is exactly 0,
    so at step 1 the bound is the rounding of the step alone (lr small keeps the delta's own
    rounding allowance, lr times the gradient tolerance, far below it)."""
    spec = manual.Spec((2, 1), ("identity",), "squared")
    W = np.array([[0.75], [-1.25]], dtype)
    X = np.array([[1.0, 0.5], [-0.25, 2.0]], dtype)
    return Case(spec, manual.Params([W]), X, X @ W, lr, 0, True)


# ------------------------------------------------------------------------------ item 4: no infinite bound


def test_adams_quotient_has_a_finite_bound_when_its_divisors_error_exceeds_it():
    """sqrt(v_hat) + eps with an error of 1e-6 > its value 1e-8 + 1e-9: the divisor is at least eps,
    and the quotient at most rho in magnitude, whatever the errors."""
    unit = float(np.finfo(np.float32).eps)
    m = Bound(np.array([1e-9]), [1e-6], unit)
    divisor = Bound(np.array([1e-9 + 1e-8]), [1e-6], unit)
    assert np.isinf((m / divisor).err).all()  # the plain interval arithmetic has no bound
    q = m / divisor.at_least(1e-8)
    assert np.isfinite(q.err).all() and q.err[0] <= (1e-6 + 0.1 * 1e-6) / (1e-8 * (1 - 2 * unit)) * (1 + 1e-12)
    assert q.within(1.0).err[0] <= 1.0 + abs(q.val[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_moving_entries_with_a_tiny_gradient_by_5_fails(dtype):
    case = case_from(manual.Spec((2, 3, 2), ("sigmoid", "softmax"), "ce"), N=2, seed=5, lr=0.1, gain=16.0, dtype=dtype)
    v = T.check_training_case(A.AdamMovesTinyGradientEntries, case, optimizer=torch.optim.Adam, steps=3)
    assert v.kind == "mismatch" and not v.passed, str(v)
    assert v.checked.worst_share > 3  # a few times beyond the bound, not at its edge


def test_sgd_with_one_and_a_half_steps_on_a_float32_row_within_rounding_of_1_fails():
    """Issue 21, item 4's second example: the row with I = 18 has y* within float32 rounding of 1."""
    spec = manual.Spec((2, 1), ("sigmoid",), "bce")
    W = np.array([[4.0], [2.0]], dtype=np.float32)
    X = np.array([[4.0, 1.0], [0.5, -0.25]], dtype=np.float32)
    Y = np.array([[0.75], [0.25]], dtype=np.float32)
    case = Case(spec, manual.Params([W]), X, Y, 0.1, 0, False)
    v = T.check_training_case(A.SGDTooFar, case, steps=1)
    assert v.kind == "mismatch" and v.step == 1, str(v)
    assert T.check_training_case(manual.Trainer, case, steps=1).kind == "agree"


def test_an_entry_with_no_finite_bound_is_not_judged_and_never_passes(monkeypatch):
    """A gradient tolerance made infinite at W1[0, 0]: that entry is compared with nothing; the case
    is not judged (not a pass), its row says so; a wrong step elsewhere is still a mismatch."""
    from adversaries_pins import unbounded_at_one_entry

    monkeypatch.setattr(T, "tolerance", unbounded_at_one_entry(T.tolerance))
    case = case_from(manual.Spec((2, 3, 1), ("tanh", "identity"), "squared"), N=3, seed=1, lr=0.1)
    v = T.check_training_case(manual.Trainer, case, steps=2)
    assert v.kind == "not judged" and not v.passed, str(v)
    assert "not judged" in str(v) and "follows" not in str(v) and "W1 1" in v.detail
    assert "1 of 6 entries not judged" in str(v.comparison)
    assert T.check_training_case(A.SGDTooFar, case, steps=2).kind == "mismatch"


# ------------------------------------------------------------------------------ item 5: nothing compared


def _leaves_the_range_at_once() -> Case:
    """float32, I = 1e20 at the first step: beyond sqrt(float32 max) = 1.8e19."""
    spec = manual.Spec((1, 1), ("identity",), "squared")
    return Case(
        spec,
        manual.Params([np.array([[1e10]], np.float32)]),
        np.array([[1e10]], np.float32),
        np.zeros((1, 1), np.float32),
        0.1,
        0,
        False,
    )


def test_a_case_with_nothing_compared_is_not_judged():
    v = T.check_training_case(manual.Trainer, _leaves_the_range_at_once(), steps=1)
    assert v.kind == "not judged" and not v.passed and v.comparison is None, str(v)
    assert "Step 1 not judged" in str(v) and "within the derived trajectory bound" not in str(v)


def _some_not_judged(share: int):
    """check_training_case, with all but one case in ``share`` made not judged (nothing compared)."""
    real = T.check_training_case
    count = {"n": 0}

    def judge(fn, case, **kw):
        count["n"] += 1
        if count["n"] % share:
            return real(fn, _leaves_the_range_at_once(), **{**kw, "steps": 1})
        return real(fn, case, **kw)

    return judge


@pytest.mark.parametrize(
    ("share", "message"), [(2, "not judged on most cases"), (10**9, "drawn cases could be judged")]
)
def test_an_oracle_run_where_most_cases_are_not_judged_fails(monkeypatch, share, message):
    monkeypatch.setattr(oracle_module, "check_training_case", _some_not_judged(share))
    with pytest.raises(torch_ref.NotJudged, match=message) as info:
        torch_ref.check_training(manual.Trainer, steps=1, max_examples=6, seed=0)
    record = info.value.record
    assert record["passed"] is False and record["verdict"] == "not judged" and record["not_judged"] > record["judged"]
    assert "leaves the dtype's range at step 1" in str(info.value)


def test_an_oracle_run_with_a_few_cases_not_judged_passes_and_counts_them(monkeypatch):
    real = T.check_training_case
    count = {"n": 0}

    def judge(fn, case, **kw):
        count["n"] += 1
        if count["n"] % 4 == 0:  # one case in four not judged
            return real(fn, _leaves_the_range_at_once(), **{**kw, "steps": 1})
        return real(fn, case, **kw)

    monkeypatch.setattr(oracle_module, "check_training_case", judge)
    summary = torch_ref.check_training(manual.Trainer, steps=1, max_examples=8, seed=0)
    assert summary.not_judged >= 1 and summary.to_dict()["not_judged"] == summary.not_judged
    assert summary.examples > summary.not_judged and f"{summary.not_judged} not judged" in str(summary)


# ------------------------------------------------------------------------------ steps and batches


def test_with_steps_1_the_only_step_is_compared():
    case = case_from(manual.Spec((2, 3, 1), ("tanh", "identity"), "squared"), N=3, seed=1, lr=0.1)
    v = T.check_training_case(A.SGDTooFar, case, steps=1)
    assert v.kind == "mismatch" and v.step == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_last_step_is_compared(dtype):
    case = case_from(manual.Spec((2, 3, 1), ("tanh", "identity"), "squared"), N=3, seed=1, lr=0.1, dtype=dtype)
    v = T.check_training_case(A.LastStepTooFar, case, steps=3)
    assert v.kind == "mismatch" and v.step == 3, str(v)
    assert T.check_training_case(manual.Trainer, case, steps=3).kind == "agree"


def test_a_trainer_that_reuses_the_first_batch_fails():
    case = case_from(manual.Spec((2, 3, 1), ("tanh", "identity"), "squared"), N=3, seed=1, lr=0.1)
    v = T.check_training_case(A.FirstBatchForever, case, steps=3)
    assert v.kind == "mismatch" and v.step == 2, str(v)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_wrong_step_while_the_trajectory_diverges_fails(dtype):
    """The diverging case of test_training (torch's float32 run leaves the range after step 3)."""
    spec = manual.Spec((2, 2, 2, 2), ("identity",) * 3, "squared")
    case = case_from(spec, N=3, seed=0, grid=True, gain=0.5, lr=0.5, dtype=dtype)
    v = T.check_training_case(A.TooFarWhileDiverging, case, optimizer=MOMENTUM, steps=5)
    assert v.kind == "mismatch", str(v)
    right = T.check_training_case(functools.partial(manual.Trainer, momentum=0.9), case, optimizer=MOMENTUM, steps=5)
    assert right.kind == "agree"


# ------------------------------------------------------------------------------ the bound's terms, both sides


@pytest.mark.parametrize(
    ("dtype", "c", "kind"),
    [
        (np.float64, 0.5, "agree"),
        (np.float64, 1.5, "mismatch"),
        (np.float64, 4.0, "mismatch"),
        (np.float32, 0.25, "agree"),
        (np.float32, 1.0, "mismatch"),
        (np.float32, 4.0, "mismatch"),
    ],
)
def test_the_rounding_term_is_pinned_from_both_sides(dtype, c, kind):
    """Zero gradients and a small lr: the bound is the step's rounding in the case's dtype (float32's
    eps 0.25 times 2 |W| is one rounding of a float32 result; the float64 values are exact)."""
    v = T.check_training_case(_variant(A.WeightsOffByRounding, c=c), _zero_gradient_case(1e-3, dtype), steps=1)
    assert v.kind == kind, str(v)


@pytest.mark.parametrize(("c", "kind"), [(0.5, "agree"), (4.0, "mismatch")])
def test_the_gradient_tolerance_term_is_pinned_from_both_sides(c, kind):
    """lr = 1 on a case whose step's bound is lr times the gradient tolerance, nearly all of it."""
    case = case_from(manual.Spec((3, 4, 2), ("tanh", "identity"), "squared"), N=5, seed=3, lr=1.0, gain=0.3)
    v = T.check_training_case(_variant(A.GradientOffByTolerance, c=c), case, steps=1)
    assert v.kind == kind, str(v)


# ------------------------------------------------------------------------------ the share reported


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_right_trainers_share_is_what_each_step_adds_and_reads_below_1(dtype):
    """The share was |W - V| / bound, above 0.9 on this right run (dead ReLU units: entries a step
    leaves alone keep the distance carried); it is now the share of what the step adds."""
    spec = manual.Spec((3, 4, 2), ("relu", "identity"), "squared", bias=True)
    case = case_from(spec, N=4, seed=1, lr=0.5, dtype=dtype)
    v = T.check_training_case(manual.Trainer, case, steps=6)
    assert v.kind == "agree" and v.checked.worst_share < 0.5, str(v)
    assert "of what this step adds to the bound" in str(v)


# ------------------------------------------------------------------------------ torch's bce floor


def test_past_torchs_floor_a_trainer_may_follow_the_exact_gradient_trajectory():
    """float64, I = 48: torch's BCELoss floor shrinks its gradient; manual's follows the exact one."""
    spec = manual.Spec((1, 1), ("sigmoid",), "bce")
    case = case_from(spec, N=1, seed=0, grid=True, gain=0.5, lr=0.01, dtype=np.float64, logits=45.0)
    v = T.check_training_case(manual.Trainer, case, steps=3)
    assert v.kind == "agree" and any("exact objective's gradients" in f for f in v.findings), str(v)
    wrong = T.check_training_case(A.SGDTooFar, case, steps=3)
    assert wrong.kind == "mismatch" and any("exact-gradient trajectory too" in f for f in wrong.findings), str(wrong)


# ------------------------------------------------------------------------------ before shrinking


def _wrong_beyond_one_layer(spec, params, X, Y):
    """Right on one layer; beyond it off by a factor that grows with |X|: the simplest case drawn
    first agrees, the first failing case found parts by more than the minimal one it shrinks to."""
    g = manual.gradients(spec, params, X, Y)
    return g if spec.depth < 2 else g.map(lambda a: a * (1 + 0.1 * float(np.max(np.abs(X)))))


def test_a_failure_reports_the_largest_relative_difference_before_shrinking():
    with pytest.raises(torch_ref.DerivationMismatch) as info:
        torch_ref.check_derivation(_wrong_beyond_one_layer, max_examples=30, seed=0)
    record, report = info.value.record, str(info.value)
    seen = record["before_shrinking"]
    assert seen is not None and seen["array"].startswith(("W", "b")) and seen["spec"] != record["case"]["spec"]
    assert f"largest relative difference of {seen['largest_relative_difference']:.3g}" in report, report


def test_no_before_shrinking_where_the_first_failing_case_is_the_minimal_one():
    # the simplest case is drawn first; a derivation wrong there is reported on it, and nothing else
    with pytest.raises(torch_ref.DerivationMismatch) as info:
        torch_ref.check_training(A.SGDTooFar, steps=2, max_examples=20, seed=0)
    assert info.value.record["before_shrinking"] is None and "Before shrinking" not in str(info.value)
