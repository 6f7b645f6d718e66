"""Training loops against torch.optim: manual's optimizers follow it over several steps, the wrong
optimizers people write are caught and diagnosed, and the trajectory bound's arithmetic holds."""

from __future__ import annotations

import contextlib
import functools
import io

import numpy as np
import optimizer_mistakes as M
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import manual
import torch_ref
from torch_ref.numerics.bound import Bound
from torch_ref.strategies import case_from

SGD_CONFIGS = {
    "momentum": dict(momentum=0.9),
    "dampening": dict(momentum=0.9, dampening=0.3),
    "nesterov": dict(momentum=0.9, nesterov=True),
    "weight-decay": dict(weight_decay=0.1),
    "nesterov-decay": dict(momentum=0.8, nesterov=True, weight_decay=0.01),
}
ADAM_CONFIGS = {
    "adam": (dict(), torch.optim.Adam),
    "adam-l2": (dict(weight_decay=0.1), functools.partial(torch.optim.Adam, weight_decay=0.1)),
    "adamw": (dict(weight_decay=0.1, decoupled=True), functools.partial(torch.optim.AdamW, weight_decay=0.1)),
    "adam-betas-eps": (
        dict(betas=(0.8, 0.99), eps=1e-6),
        functools.partial(torch.optim.Adam, betas=(0.8, 0.99), eps=1e-6),
    ),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(SGD_CONFIGS))
def test_manual_sgd_options_follow_torch(name, dtype):
    options = SGD_CONFIGS[name]
    summary = torch_ref.check_training(
        functools.partial(manual.Trainer, **options),
        optimizer=functools.partial(torch.optim.SGD, **options),
        steps=5,
        max_examples=10,
        seed=1,
        dtype=dtype,
    )
    assert summary.examples > 10


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(ADAM_CONFIGS))
def test_manual_adam_follows_torch(name, dtype):
    options, optimizer = ADAM_CONFIGS[name]
    summary = torch_ref.check_training(
        functools.partial(manual.AdamTrainer, **options),
        optimizer=optimizer,
        steps=5,
        max_examples=10,
        seed=1,
        dtype=dtype,
    )
    assert summary.examples > 10


def test_manual_trainer_on_torch_tensors_follows_torch():
    torch_ref.check_training(
        functools.partial(manual.AdamTrainer, weight_decay=0.1, decoupled=True),
        optimizer=functools.partial(torch.optim.AdamW, weight_decay=0.1),
        arrays="torch",
        steps=5,
        max_examples=5,
        seed=2,
    )


def test_the_catalogue_is_large_enough_and_cited():
    assert len(M.CATALOGUE) >= 6
    assert all(m.sources and all(s.startswith("https://") for s in m.sources) for m in M.CATALOGUE.values())


@pytest.mark.parametrize("name", list(M.CATALOGUE))
def test_wrong_optimizer_is_caught_and_diagnosed(name):
    mistake = M.CATALOGUE[name]
    with pytest.raises(torch_ref.DerivationMismatch) as info:
        torch_ref.check_training(mistake.trainer, optimizer=mistake.optimizer, steps=3, max_examples=20, seed=0)
    record = info.value.record
    assert record["what"] == "make_trainer" and record["step"] >= 1 and record["layer"] >= 1
    (diagnosis,) = record["diagnosis"]
    if mistake.diagnosis is None:
        assert diagnosis == "no known optimizer mistake fits"
    else:
        assert mistake.diagnosis in diagnosis, diagnosis


def test_a_right_trainer_against_the_wrong_optimizer_is_not_diagnosed_as_a_mistake():
    """manual's plain SGD checked against SGD with momentum: caught, and the diagnosis says the
    momentum-free update (a buffer not kept) only because that is what it verifiably is."""
    with pytest.raises(torch_ref.DerivationMismatch, match="not kept between steps"):
        torch_ref.check_training(manual.Trainer, optimizer=M.SGD_MOMENTUM, steps=3, max_examples=10, seed=0)


def test_a_variant_whose_bound_cannot_tell_it_from_torch_is_not_named(monkeypatch):
    """Were a known mistake's bound too wide to tell it from torch's own rule where the trainer parts
    (here Nesterov's, made 1e300: finite, since an infinite bound is never a fit at all), it would
    "fit" any trajectory: it is not named."""
    import torch_ref.training.trajectory as T

    along = T._along

    def vacuous_for_variants(rule, V, points, case, data, W, grads=None):
        allowed = along(rule, V, points, case, data, W, grads)
        if rule == variant_of_interest[0]:
            return [[np.full_like(a, 1e300) for a in step] for step in allowed]
        return allowed

    variant_of_interest: list = []
    monkeypatch.setattr(T, "_along", vacuous_for_variants)
    case = case_from(manual.Spec((2, 3, 1), ("tanh", "identity"), "squared"), N=3, seed=0, lr=0.1)
    reference_rule = T.rule_of(M.SGD_MOMENTUM([torch.zeros(1, requires_grad=True)], 0.1))
    nesterov = next(rule for rule, _ in T.variants(reference_rule) if rule.nesterov)  # not what the trainer does
    variant_of_interest.append(nesterov)
    v = torch_ref.check_training_case(M.PaddleNesterov, case, optimizer=M.SGD_MOMENTUM, steps=3)
    assert v.kind == "mismatch" and v.findings == ("Diagnosis: no known optimizer mistake fits",), v.findings


def test_training_reproduce_lines_run_as_printed():
    with pytest.raises(torch_ref.DerivationMismatch) as info:
        torch_ref.check_training(M.EmaMomentum, optimizer=M.SGD_MOMENTUM, steps=3, max_examples=10, seed=0)
    code = "\n".join(info.value.record["reproduce"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {"EmaMomentum": M.EmaMomentum, "SGD_MOMENTUM": M.SGD_MOMENTUM})
    assert "parts from torch.optim.SGD" in out.getvalue() and "momentum as an average" in out.getvalue()


def test_steps_past_the_dtype_range_are_not_compared():
    """A diverging float32 run: torch's float64 trajectory reaches 1e23, where a right float32 trainer
    overflows; those steps are left out, and the report says so."""
    spec = manual.Spec((2, 2, 2, 2), ("identity",) * 3, "squared")
    case = case_from(spec, N=3, seed=0, grid=True, gain=0.5, lr=0.5, dtype=np.float32)
    v = torch_ref.check_training_case(
        functools.partial(manual.Trainer, momentum=0.9),
        case,
        optimizer=functools.partial(torch.optim.SGD, momentum=0.9),
        steps=5,
    )
    assert v.kind == "agree" and v.step == 3
    assert "Steps 4-5 not compared" in str(v) and "float32" in str(v)


def test_training_case_reports_agreement():
    case = case_from(manual.Spec((2, 3, 1), ("tanh", "sigmoid"), "bce", bias=True), N=4, seed=0, lr=0.5)
    v = torch_ref.check_training_case(manual.Trainer, case, steps=6)
    assert v.kind == "agree" and v.step == 6 and "within the derived trajectory bound" in str(v)


class _Crashes(M.HandTrainer):
    def update(self, k, p, g):
        raise RuntimeError("boom")


class _WrongShape(M.HandTrainer):
    def step(self, X, Y):
        pass

    @property
    def params(self):
        return manual.Params([W.T for W in self.P])


@pytest.mark.parametrize(
    ("trainer", "kind", "text"),
    [(_Crashes, "crash", "boom"), (_WrongShape, "shape", "expected")],
    ids=["crash", "shape"],
)
def test_broken_trainers_are_reported(trainer, kind, text):
    case = case_from(manual.Spec((2, 3, 1), ("tanh", "identity"), "squared"), N=2, seed=0)
    v = torch_ref.check_training_case(trainer, case)
    assert v.kind == kind and text in v.detail


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        pytest.param(
            dict(optimizer=lambda p, lr: torch.optim.RMSprop(p, lr)),
            ValueError,
            "trajectory tolerance for",
            id="rmsprop",
        ),
        pytest.param(dict(optimizer=lambda p, lr: torch.optim.SGD(p, 0.5)), ValueError, "pass lr on", id="lr-dropped"),
        pytest.param(dict(optimizer=lambda p, lr: 3), ValueError, "must return a torch.optim.Optimizer", id="not-opt"),
        pytest.param(
            dict(optimizer=functools.partial(torch.optim.Adam, amsgrad=True)), ValueError, "amsgrad", id="amsgrad"
        ),
        pytest.param(dict(steps=0), ValueError, "steps must be", id="steps"),
    ],
)
def test_bad_training_calls_are_refused(call, error, message):
    with pytest.raises(error, match=message):
        torch_ref.check_training(manual.Trainer, max_examples=2, seed=0, **call)


def test_make_trainer_signature_is_checked_first():
    with pytest.raises(TypeError, match="lr=lr"):
        torch_ref.check_training(lambda spec, params: None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(nesterov=True), "nesterov=True needs momentum > 0"),
        (dict(momentum=0.9, dampening=0.1, nesterov=True), "dampening 0"),
        (dict(momentum=-0.1), "momentum must lie"),
        (dict(dampening=1.5), "dampening must lie"),
        (dict(weight_decay=float("nan")), "weight_decay must lie"),
    ],
)
def test_manual_trainer_refuses_bad_options(options, message):
    spec = manual.Spec((2, 1), ("identity",), "squared")
    with pytest.raises(ValueError, match=message):
        manual.Trainer(spec, manual.init_params(spec, np.random.default_rng(0)), lr=0.1, **options)


def test_manual_adam_refuses_bad_options():
    spec = manual.Spec((2, 1), ("identity",), "squared")
    params = manual.init_params(spec, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"betas\[1\] must lie"):
        manual.AdamTrainer(spec, params, lr=0.1, betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="betas must be a pair"):
        manual.AdamTrainer(spec, params, lr=0.1, betas=0.9)


# ------------------------------------------------------------------------------------------ the bound

_values = st.floats(-4, 4, allow_nan=False, allow_subnormal=False)
_errors = st.floats(0, 0.5, allow_nan=False)


def _within(b: Bound, rng: np.random.Generator, n: int = 64) -> np.ndarray:
    return b.val + b.err * rng.uniform(-1, 1, size=(n, *b.val.shape))


@given(a=_values, ea=_errors, c=_values, ec=_errors, seed=st.integers(0, 2**16))
def test_bound_arithmetic_contains_every_perturbed_result(a, ea, c, ec, seed):
    """For values anywhere within their bounds, each result lies within the result's bound."""
    rng = np.random.default_rng(seed)
    unit = float(np.finfo(np.float64).eps)  # covers the rounding of the sampled results themselves
    x, y = Bound(np.array([a]), [ea], unit), Bound(np.array([c]), [ec], unit)
    xs, ys = _within(x, rng), _within(y, rng)
    cases = [(x + y, xs + ys), (x - y, xs - ys), (x * y, xs * ys), (3.0 * x, 3.0 * xs), (1.0 - x, 1.0 - xs)]
    if abs(c) - ec > 1e-6:  # a denominator interval clear of 0 (else the bound is inf by design)
        cases.append((x / y, xs / ys))
    if a - ea >= 0:
        cases.append((x.sqrt(), np.sqrt(xs)))
    for bound, samples in cases:
        assert np.all(np.abs(samples - bound.val) <= bound.err * (1 + 1e-12) + 1e-300)


def test_bound_division_by_an_interval_holding_zero_is_unbounded():
    q = Bound(np.array([1.0]), [0.0], 0.0) / Bound(np.array([1e-3]), [1e-2], 0.0)
    assert np.isinf(q.err).all()


@pytest.mark.parametrize(
    ("trainer", "optimizer", "named"),
    [
        (manual.Trainer, torch.optim.Adam, "plain SGD (w - lr g) where the optimizer is Adam"),
        (manual.AdamTrainer, None, "Adam (betas (0.9, 0.999), eps 1e-08) where the optimizer is SGD"),
    ],
)
def test_a_trainer_checked_against_the_other_optimizer_is_named_so(trainer, optimizer, named):
    with pytest.raises(torch_ref.DerivationMismatch) as caught:
        torch_ref.check_training(trainer, optimizer=optimizer, max_examples=10, seed=0)
    assert any(named in d for d in caught.value.record["diagnosis"]), caught.value.record["diagnosis"]
