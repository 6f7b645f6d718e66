"""A user's own activation and loss: checked against autograd of their own forward/value, taken by
every part of the project (Spec, oracle, strategies, crosscheck, Trainer), and the registry's errors."""

import re

import numpy as np
import pytest
from hypothesis import given, settings

import manual
import torch_ref
from manual import Activation, Loss, Spec
from torch_ref import DerivationMismatch, check_derivation
from torch_ref.strategies import case_from, specs


def _mish(I, xp):
    return I * xp.tanh(xp.log1p(xp.exp(xp.clip(I, max=30.0))) + xp.clip(I - 30.0, min=0.0))


def _mish_derivative(I, O, xp):
    sp = xp.log1p(xp.exp(xp.clip(I, max=30.0))) + xp.clip(I - 30.0, min=0.0)
    t = xp.tanh(sp)
    s = 1 / (1 + xp.exp(-I))
    return t + I * (1 - t * t) * s  # d/dI [I tanh(softplus(I))]


def _mish_missing_sigmoid(I, O, xp):
    t = xp.tanh(xp.log1p(xp.exp(xp.clip(I, max=30.0))) + xp.clip(I - 30.0, min=0.0))
    return t + I * (1 - t * t)  # softplus' derivative sigmoid(I) forgotten


def _log_cosh(O, Y, xp):
    d = O - Y
    return xp.sum(xp.abs(d) + xp.log1p(xp.exp(-2 * xp.abs(d))) - np.log(2.0), axis=-1)  # log cosh, stable


def _log_cosh_gradient(O, Y, xp):
    return xp.tanh(O - Y)


MISH = Activation("my_mish", _mish, _mish_derivative, description="I tanh(softplus(I))")
MISH_WRONG = Activation("my_mish", _mish, _mish_missing_sigmoid)
LOG_COSH = Loss("my_log_cosh", _log_cosh, _log_cosh_gradient)
LOG_COSH_WRONG = Loss("my_log_cosh", _log_cosh, lambda O, Y, xp: xp.tanh(Y - O))  # the sign of d flipped


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_right_user_entries_pass_against_autograd_of_their_own_functions(dtype):
    summary = check_derivation(
        manual.gradients,
        activations=(MISH, "identity", "softmax"),
        losses=(LOG_COSH, "ce"),
        dtype=dtype,
        seed=0,
        max_examples=40,
        strict=True,
    )
    assert "my_mish" in summary.activations and ("my_mish", "my_log_cosh") in summary.pairs


def test_wrong_user_derivative_is_caught_naming_the_layer():
    with pytest.raises(DerivationMismatch) as info:
        check_derivation(manual.gradients, activations=(MISH_WRONG, "tanh"), losses=("squared",), depths=2, seed=0)
    text = str(info.value)
    assert re.search(
        r"Diagnosis: layer [12]'s activation 'my_mish' \(your entry\) has a derivative that disagrees "
        r"with autograd of its own forward",
        text,
    ), text
    # the Reproduce lines use the caller's own variable for the entry that was checked
    assert "run these where MISH_WRONG is defined" in text and "(MISH_WRONG, MISH_WRONG)" in text


def test_wrong_user_loss_gradient_is_caught_and_named():
    with pytest.raises(DerivationMismatch) as info:
        check_derivation(manual.gradients, activations=("tanh",), losses=(LOG_COSH_WRONG,), seed=0)
    text = str(info.value)
    assert (
        "Diagnosis: the loss 'my_log_cosh' (your entry) has a gradient that disagrees with autograd of its own value"
        in text
    ), text
    assert "autograd is right" in text  # finite differences of the user's own value agree with autograd


def test_a_derivation_of_a_user_entry_is_checked_against_the_entry_not_a_builtin():
    """A grad_fn that differentiates mish by hand is held to autograd of mish's forward."""

    def grad_fn(spec, p, X, Y):
        return manual.gradients(
            Spec(
                spec.sizes,
                [MISH_WRONG if a == "my_mish" else a for a in spec.activations],
                spec.loss,
                bias=spec.bias,
                reduction=spec.reduction,
            ),
            p,
            X,
            Y,
        )

    assert check_derivation(manual.gradients, activations=(MISH,), losses=("squared",), seed=1, max_examples=10)
    with pytest.raises(DerivationMismatch, match="disagrees with autograd"):
        check_derivation(grad_fn, activations=(MISH,), losses=("squared",), seed=1, max_examples=10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_trainer_and_crosschecks_take_user_entries(dtype):
    spec = Spec((3, 5, 2), (MISH, "identity"), LOG_COSH, bias=True)
    case = case_from(spec, N=4, seed=3, dtype=dtype)
    for check in (torch_ref.crosscheck_gradients, torch_ref.crosscheck_deltas, torch_ref.crosscheck_objective):
        result = check(spec, case.params, case.X, case.Y)
        assert result.ok, result
    trainer = manual.Trainer(spec, case.params, lr=0.1)
    trainer.step(case.X, case.Y)
    step = manual.sgd_step(spec, case.params, case.X, case.Y, 0.1)
    for (name, a), (_, b) in zip(trainer.params.arrays(), step.arrays()):
        np.testing.assert_allclose(a, b, rtol=0, atol=64 * np.finfo(dtype).eps, err_msg=name)
    assert torch_ref.crosscheck_update(spec, case.params, case.X, case.Y, 0.1).ok


@settings(max_examples=20)
@given(spec=specs(activations=(MISH, "relu"), losses=(LOG_COSH,), depths=(1, 3)))
def test_strategies_draw_user_entries(spec):
    assert spec.loss is LOG_COSH and all(a in (MISH, manual.ACTIVATIONS["relu"]) for a in spec.activations)
    assert str(spec).endswith("my_log_cosh/" + spec.reduction) or ", bias" in str(spec)


def test_onehot_targets_are_drawn_and_validated():
    hinge_like = Loss(
        "onehot_squared", lambda O, Y, xp: xp.sum((O - Y) ** 2, axis=-1) / 2, lambda O, Y, xp: O - Y, targets="onehot"
    )
    spec = Spec((2, 3), ("sigmoid",), hinge_like)
    case = case_from(spec, N=6, seed=0)
    assert set(np.unique(case.Y)) <= {0.0, 1.0} and (case.Y.sum(axis=1) == 1).all()
    manual.gradients(spec, case.params, case.X, case.Y)
    with pytest.raises(ValueError, match="one-hot rows"):
        manual.gradients(spec, case.params, case.X, np.full((6, 3), 1 / 3))
    with pytest.raises(ValueError, match=r"exactly one 1 per row for loss .onehot_squared.; row 0 has 2"):
        manual.gradients(spec, case.params, case.X, np.array([[1.0, 1.0, 0.0]] * 6))


# ------------------------------------------------------------------------------------------ the registry


def test_spec_takes_names_or_entries_and_shows_names():
    by_name = Spec((2, 3, 1), ("tanh", "sigmoid"), "bce")
    by_entry = Spec((2, 3, 1), (manual.ACTIVATIONS["tanh"], manual.ACTIVATIONS["sigmoid"]), manual.LOSSES["bce"])
    assert by_name == by_entry and hash(by_name) == hash(by_entry)
    assert str(by_name) == "2-3-1 [tanh,sigmoid] bce/sum"
    assert by_name.activations[0] is manual.ACTIVATIONS["tanh"] and by_name.loss == "bce"
    assert str(Spec((2, 1), (MISH,), LOG_COSH)) == "2-1 [my_mish] my_log_cosh/sum"


@pytest.mark.parametrize(
    "make, error, pattern",
    [
        pytest.param(
            lambda: Spec((2, 1), ("swish",), "squared"),
            ValueError,
            rf"unknown activation 'swish'; registered: {', '.join(manual.ACTIVATIONS)} "
            r"\(or pass a manual.Activation of your own\)",
            id="unknown-activation",
        ),
        pytest.param(
            lambda: Spec((2, 1), ("tanh",), "hinge"),
            ValueError,
            rf"unknown loss 'hinge'; registered: {', '.join(manual.LOSSES)}",
            id="unknown-loss",
        ),
        pytest.param(
            lambda: Spec((2, 1), (Activation("tanh", _mish, _mish_derivative),), "squared"),
            ValueError,
            "may not take the built-in name 'tanh'",
            id="user-entry-with-a-builtin-name",
        ),
        pytest.param(
            lambda: Spec((2, 1), (3,), "squared"),
            TypeError,
            "must be an activation name or a manual.Activation",
            id="not-an-entry",
        ),
        pytest.param(
            lambda: Spec((2, 1), ("softmax",), "huber"),
            ValueError,
            "loss 'huber' does not accept output activation 'softmax'",
            id="huber-softmax",
        ),
        pytest.param(
            lambda: Spec((2, 1), (MISH,), "bce"),
            ValueError,
            "loss 'bce' does not accept output activation 'my_mish'; it accepts sigmoid, softmax",
            id="bce-user",
        ),
        pytest.param(lambda: Activation("x", _mish, None), ValueError, "give derivative", id="no-derivative"),
        pytest.param(
            lambda: Activation("x", _mish, _mish_derivative, in_place=abs),
            ValueError,
            "needs through_output=True",
            id="in-place-without-output-form",
        ),
        pytest.param(lambda: Activation("x y", _mish, _mish_derivative), ValueError, "identifier", id="bad-name"),
        pytest.param(
            lambda: Activation("x", _mish, _mish_derivative, kinks=("0",)), TypeError, "kinks", id="bad-kinks"
        ),
        pytest.param(
            lambda: Loss("x", _log_cosh, _log_cosh_gradient, targets="labels"),
            ValueError,
            r"targets must be one of \('real', 'unit', 'simplex', 'onehot'\)",
            id="bad-targets",
        ),
        pytest.param(lambda: Loss("x", _log_cosh, "grad"), TypeError, "gradient", id="gradient-not-callable"),
        pytest.param(
            lambda: Activation("noxp", lambda I: I, _mish_derivative),
            TypeError,
            r"forward must take \(I, xp\), positionally; got a callable with signature \(I\)",
            id="forward-without-xp",
        ),
        pytest.param(
            lambda: Activation("noO", _mish, lambda I, xp: I),
            TypeError,
            r"derivative must take \(I, O, xp\)",
            id="derivative-without-O",
        ),
        pytest.param(
            lambda: Loss("x", _log_cosh, lambda O, Y: O - Y),
            TypeError,
            r"gradient must take \(O, Y, xp\)",
            id="gradient-without-xp",
        ),
    ],
)
def test_registry_errors_name_the_problem(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def _softsign(I, xp):
    return I / (1 + xp.abs(I))


@pytest.mark.parametrize(
    "entries, pattern",
    [
        pytest.param(
            dict(losses=(Loss("per_output", lambda O, Y, xp: 0.5 * (O - Y) ** 2, lambda O, Y, xp: O - Y),)),
            r"Loss 'per_output': value\(O, Y, xp\) must return the per-example loss, shape \(N,\)",
            id="loss-value-per-output",
        ),
        pytest.param(
            dict(activations=(Activation("npy", lambda I, xp: np.tanh(I), lambda I, O, xp: 1 - O * O),)),
            r"Activation 'npy': forward\(I, xp\) failed on torch tensors.*not NumPy's",
            id="numpy-inside-forward",
        ),
        pytest.param(
            dict(activations=(MISH, Activation("my_mish", _mish, _mish_missing_sigmoid))),
            "activations holds two different entries named 'my_mish'",
            id="two-entries-one-name",
        ),
    ],
)
def test_a_malformed_user_entry_is_an_error_naming_it(entries, pattern):
    with pytest.raises(ValueError, match=pattern):
        check_derivation(manual.gradients, **({"losses": ("squared",)} | entries), seed=0, max_examples=5)


def test_a_derivative_of_the_wrong_shape_is_named_not_a_crash_of_the_report():
    summed = Activation("summed", _softsign, lambda I, O, xp: xp.sum(I, axis=-1))
    with pytest.raises(DerivationMismatch, match=r"'summed' \(your entry\) has a derivative of shape"):
        check_derivation(manual.gradients, activations=(summed,), losses=("squared",), seed=0, max_examples=5)


def test_oracle_options_take_entries_and_reject_unknown_names():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        check_derivation(manual.gradients, activations=("swish",))
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        check_derivation(manual.gradients, losses=("hinge",))


def test_a_builtin_without_a_twin_is_an_error_not_a_default(monkeypatch):
    orphan = Activation("orphan", _mish, _mish_derivative)
    monkeypatch.setattr(manual, "ACTIVATIONS", {**manual.ACTIVATIONS, "orphan": orphan})
    with pytest.raises(ValueError, match="built-in activation 'orphan' has no torch twin"):
        torch_ref.twins.activation_twin(orphan)


def test_an_entry_equals_its_name_so_name_based_derivations_keep_working():
    spec = Spec((2, 3, 1), ("relu", "sigmoid"), "bce")
    assert spec.activations[0] == "relu" and spec.activations[0] != "tanh" and "relu" in spec.activations
    assert spec.loss == "bce" and f"{spec.loss}" == "bce"
    assert MISH != Activation("my_mish", _mish, _mish_derivative)  # two entries are never equal


def test_a_spec_pickles_to_an_equal_spec():
    """Built-ins unpickle as the registry's own entries (by name), user entries field by field."""
    import pickle

    spec = Spec((2, 3, 4, 1), ("gelu", MISH, "sigmoid"), "bce", bias=True)
    again = pickle.loads(pickle.dumps(spec))
    assert again.activations[0] is manual.ACTIVATIONS["gelu"] and again.loss is manual.LOSSES["bce"]
    assert again.activations[1].name == "my_mish" and again.activations[1].derivative is _mish_derivative
