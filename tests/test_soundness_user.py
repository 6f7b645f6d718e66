"""Issue 21, "From a new user's trial": a user's own entries are never trusted where the oracle
cannot check them, the diagnosis names a factor only where it means something, the pytest fixture
and the command line are reproducible and say what went wrong, and the user-entry check's bound is
pinned from both sides. The wrong entries and derivations are in ``tests/adversaries_user.py``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from adversaries_user import (
    COUPLED_BY_DETACH,
    COUPLED_IN_GRADIENT,
    LAYER_NORM,
    SOFTSIGN_BY_FUNCTION,
    SOFTSIGN_LOSS_BY_FUNCTION,
    derivative_off_by,
    gradient_off_by,
    scaled_output_weights,
    tanh_prime_at_output,
)
from hypothesis import settings

import manual
from manual import Activation, Loss, Spec
from torch_ref import DerivationMismatch, check_case, check_derivation, crosscheck_gradients
from torch_ref.first_order.diagnose import diagnose
from torch_ref.first_order.entry_check import entry_findings
from torch_ref.frontends.cli import main
from torch_ref.numerics.tolerance import _derivative_error
from torch_ref.strategies import case_from
from torch_ref.twin.reference import reference
from torch_ref.twins import loss_twin

SOFTSIGN = Activation("my_softsign", lambda I, xp: I / (1 + xp.abs(I)), lambda I, O, xp: 1 / (1 + xp.abs(I)) ** 2)
MY_RELU = Activation(
    "my_relu", lambda I, xp: xp.where(I > 0, I, 0 * I), lambda I, O, xp: 1.0 * (I > 0), kinks=(0.0,), exact=True
)
LOG_COSH = Loss(
    "my_log_cosh",
    lambda O, Y, xp: xp.sum(xp.abs(O - Y) + xp.log1p(xp.exp(-2 * xp.abs(O - Y))) - np.log(2.0), axis=-1),
    lambda O, Y, xp: xp.tanh(O - Y),
)


# ------------------------------------------------------------------------------ 1. custom autograd.Function


def test_an_activation_through_a_custom_autograd_function_is_refused_not_checked_against_itself():
    """Its backward is the user's: autograd of its forward would check the derivative against itself."""
    with pytest.raises(ValueError, match=r"Activation 'softsign_fn'.*custom torch\.autograd\.Function") as info:
        check_derivation(manual.gradients, activations=(SOFTSIGN_BY_FUNCTION,), losses=("squared",), seed=0)
    assert "_SoftsignWrongBackward" in str(info.value) and "your own backward" in str(info.value)


def test_a_loss_through_a_custom_autograd_function_is_refused():
    with pytest.raises(ValueError, match=r"Loss 'half_squared_fn'.*custom torch\.autograd\.Function"):
        check_derivation(manual.gradients, activations=("tanh",), losses=(SOFTSIGN_LOSS_BY_FUNCTION,), seed=0)


@pytest.mark.parametrize(
    "entry, refusal",
    [(SOFTSIGN_BY_FUNCTION, r"custom torch\.autograd\.Function"), (LAYER_NORM, "couples entries")],
    ids=["custom-function", "not-elementwise"],
)
def test_the_refusals_guard_every_path_to_the_reference(entry, refusal):
    """Not only the oracle's options: a cross-check of one case reaches the twin directly."""
    case = case_from(Spec((2, 3, 1), (entry, "identity"), "squared"), N=2, seed=0)
    with pytest.raises(ValueError, match=refusal):
        crosscheck_gradients(case.spec, case.params, case.X, case.Y)


# ------------------------------------------------------------------------------ 2. elementwise, probed


@pytest.mark.parametrize("where", ["hidden", "output"])
def test_a_layer_norm_declared_as_an_activation_is_refused_at_first_use(where):
    activations = dict(hidden_activations=(LAYER_NORM,)) if where == "hidden" else dict(activations=(LAYER_NORM,))
    with pytest.raises(ValueError, match=r"Activation 'my_layer_norm' gives derivative\(I, O, xp\).*couples") as info:
        check_derivation(manual.gradients, **activations, losses=("squared",), seed=0, max_examples=5)
    assert "(an off-diagonal Jacobian entry)" in str(info.value)


def test_a_coupling_only_autograd_sees_is_refused_by_the_jacobian_probe():
    with pytest.raises(ValueError, match=r"'grad_coupled_tanh'.*dO\[0, 0\]/dI\[0, 1\] = 0\.333333 \(an off-diagonal"):
        check_derivation(manual.gradients, activations=(COUPLED_IN_GRADIENT,), losses=("squared",), seed=0)


def test_a_coupling_autograd_cannot_see_is_refused_by_the_value_probe():
    with pytest.raises(ValueError, match=r"'coupled_tanh'.*changing I\[0, 0\] alone changed O\["):
        check_derivation(manual.gradients, activations=(COUPLED_BY_DETACH,), losses=("squared",), seed=0)


def test_right_elementwise_entries_pass_the_probe_kinks_included():
    assert check_derivation(
        manual.gradients, activations=(SOFTSIGN, MY_RELU), losses=(LOG_COSH,), seed=0, max_examples=20
    )


# ------------------------------------------------------------------------------ 3. the diagnosis


@pytest.mark.parametrize(
    "spec, gain, expected",
    [
        pytest.param(
            Spec((1, 1), ("tanh",), "squared"),
            1.0,
            "A' of the output layer (tanh) is evaluated on the layer's output O where it needs I",
            id="output-layer",
        ),
        pytest.param(
            Spec((3, 4, 2), ("tanh", "tanh"), "squared"),
            0.5,
            "A' of every tanh layer (layers 1, 2) is evaluated on the layer's output O where it needs I",
            id="every-layer",
        ),
        pytest.param(
            Spec((2, 3, 1), ("identity", "tanh"), "squared"),
            0.5,
            "A' of the output layer (tanh) is evaluated on the layer's output O where it needs I",
            id="identity-below",
        ),
    ],
)
def test_tanh_prime_at_the_output_is_named_and_verified_on_the_case(spec, gain, expected):
    case = case_from(spec, N=3, seed=2, gain=gain)
    verdict = check_case(tanh_prime_at_output, case)
    assert verdict.kind == "mismatch", str(verdict)
    found = diagnose(verdict)
    assert any(expected in d for d in found), found
    assert not any(" x1" in d for d in found), found  # no "W1 x1": a factor near 1 is no pattern


def test_the_oracle_names_tanh_prime_at_the_output():
    with pytest.raises(DerivationMismatch, match=r"Diagnosis: A' of .*tanh.* evaluated on the layer's output O"):
        check_derivation(tanh_prime_at_output, activations=("tanh",), losses=("squared",), seed=0, max_examples=50)


def test_a_factor_near_1_is_not_named_the_relative_size_is_given():
    case = case_from(Spec((3, 4, 2), ("tanh", "identity"), "squared"), N=4, seed=0)
    found = diagnose(check_case(scaled_output_weights(1.00001), case))
    assert found == [
        "no known pattern fits W2; largest difference from autograd, relative to autograd's largest entry: W2 1e-05"
    ]


@pytest.mark.parametrize(
    "factor, text",
    [(1.5, "constant factors per array: W2 x3/2"), (-0.5, "constant factors per array: W2 x-1/2")],
)
def test_a_small_ratio_is_named_when_the_scaled_derivation_fits(factor, text):
    case = case_from(Spec((3, 4, 2), ("tanh", "identity"), "squared"), N=4, seed=0)
    assert diagnose(check_case(scaled_output_weights(factor), case)) == [text]


def test_a_ratio_with_large_terms_is_not_named():
    case = case_from(Spec((3, 4, 2), ("tanh", "identity"), "squared"), N=4, seed=0)
    (found,) = diagnose(check_case(scaled_output_weights(37 / 41), case))
    assert found.startswith("no known pattern fits W2") and "x" not in found.split(";")[0], found


# ------------------------------------------------------------------------------ 4. fixture seed, CLI


_SEEDED = """
def test_seed(derivation_oracle):
    assert derivation_oracle.defaults["seed"] == {seed}
"""

_CI_VARS = ("CI", "TF_BUILD", "BUILDKITE", "CIRCLECI", "CIRRUS_CI", "CODEBUILD_BUILD_ID", "GITHUB_ACTIONS")
_CI_VARS += ("GITLAB_CI", "HEROKU_TEST_RUN_ID", "TEAMCITY_VERSION")


def test_oracle_seed_option_reaches_every_check(pytester, monkeypatch):
    for var in _CI_VARS:
        monkeypatch.delenv(var, raising=False)
    pytester.makepyfile(_SEEDED.format(seed=7))
    result = pytester.runpytest("-p", "no:cacheprovider", "--oracle-seed=7")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["oracle seed: 7 (--oracle-seed)"])


def test_oracle_seed_is_fixed_under_ci_and_drawn_and_shown_otherwise(pytester, monkeypatch):
    for var in _CI_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(_SEEDED.format(seed=0))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["oracle seed: 0 (CI: every run draws the same networks*)"])
    monkeypatch.delenv("CI")
    # this suite's own profile derandomizes (conftest.py), and so does the fixture under it
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["oracle seed: 0 (the Hypothesis profile derandomizes*)"])
    previous = settings._current_profile
    settings.register_profile("p3_afresh", derandomize=False)
    settings.load_profile("p3_afresh")
    try:
        pytester.makepyfile("def test_seed(derivation_oracle):\n    assert derivation_oracle.defaults['seed'] >= 0\n")
        result = pytester.runpytest("-p", "no:cacheprovider")
    finally:
        settings.load_profile(previous)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["oracle seed: * (drawn for this run; --oracle-seed * repeats it)"])


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "my_backprop.py").write_text(
        textwrap.dedent(
            """
            import manual

            def right(spec, params, X, Y):
                return manual.gradients(spec, params, X, Y)
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    "args, message",
    [
        (["my_backprop:nope"], "has no 'nope'"),
        (["my_backprop:right", "--kind", "sideways"], "invalid choice: 'sideways'"),
        (["my_backprop:right", "--widths", "0"], "widths must be"),
        (["my_backprop:right", "--activations", "tanhh"], "unknown activation 'tanhh'"),
    ],
    ids=["function", "argparse", "options", "entry"],
)
def test_a_usage_error_is_written_to_json_too(workdir, args, message, capsys):
    assert main(["check", *args, "--json", "out.json"]) == 2
    record = json.loads((workdir / "out.json").read_text())
    assert record["passed"] is False and record["verdict"] == "usage error" and message in record["error"]
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, hint",
    [
        (["my_backprop:rigth"], "did you mean 'right'?"),
        (["my_backprp:right"], "did you mean 'my_backprop'?"),
        (["my_backprp.py:right"], "did you mean 'my_backprop.py'?"),
        (["my_backprop:right", "--activations", "tanhh"], "did you mean 'tanh'?"),
        (["my_backprop:right", "--losses", "sqaured"], "did you mean 'squared'?"),
        (["my_backprop:right", "--reductions", "mena"], "did you mean 'mean'?"),
    ],
    ids=["function", "module", "file", "activation", "loss", "reduction"],
)
def test_a_misspelt_name_gets_a_did_you_mean(workdir, args, hint, capsys):
    assert main(["check", *args]) == 2
    assert hint in capsys.readouterr().err


def test_the_oracle_options_suggest_a_close_name():
    with pytest.raises(ValueError, match=r"unknown loss 'sqaured' \(did you mean 'squared'\?\)"):
        check_derivation(manual.gradients, losses=("sqaured",))
    with pytest.raises(ValueError, match=r"unknown activation 'sigmod' \(did you mean 'sigmoid'\?\)"):
        Spec((2, 1), ("sigmod",), "bce")


# ------------------------------------------------------------------------------ 5. the entry check, pinned


def _mish(I, xp):
    return I * xp.tanh(xp.log1p(xp.exp(xp.clip(I, max=30.0))) + xp.clip(I - 30.0, min=0.0))


def _mish_derivative(I, O, xp):
    sp = xp.log1p(xp.exp(xp.clip(I, max=30.0))) + xp.clip(I - 30.0, min=0.0)
    t = xp.tanh(sp)
    return t + I * (1 - t * t) / (1 + xp.exp(-I))


MISH = Activation("my_mish", _mish, _mish_derivative)
# the entry check's c eps, written out here (not imported) so that the test pins it: c = 64 for the
# few operations of one formula, in float64 at the reference's own points (torch_ref.first_order.entry_check)
_C = 64 * float(np.finfo(np.float64).eps)
_PIN = Spec((3, 4, 2), (MISH, "identity"), "squared", bias=True)


def _activation_room():
    case = case_from(_PIN, N=3, seed=1)
    ref = reference(_PIN, case.params, case.X, case.Y)
    return case, _C * _derivative_error(MISH, ref, 0, np.zeros_like(ref.I[0]), 0.0)


@pytest.mark.parametrize("share", [-0.9, 0.9])
def test_a_derivative_just_inside_the_entry_bound_is_not_named(share):
    case, room = _activation_room()
    assert entry_findings(reference(_PIN, case.params, case.X, case.Y)) == []  # the right one, as it is
    near = derivative_off_by(MISH, share * room)
    spec = Spec(_PIN.sizes, (near, "identity"), "squared", bias=True)
    assert entry_findings(reference(spec, case.params, case.X, case.Y)) == []


@pytest.mark.parametrize("share", [-4.0, 4.0])
def test_a_derivative_a_few_times_beyond_the_entry_bound_is_named(share):
    case, room = _activation_room()
    beyond = derivative_off_by(MISH, share * room)
    spec = Spec(_PIN.sizes, (beyond, "identity"), "squared", bias=True)
    found = entry_findings(reference(spec, case.params, case.X, case.Y))
    assert len(found) == 1, found
    assert f"disagrees with autograd of its own forward at {room.size} of {room.size} inputs" in found[0]


def _gradient_room():
    spec = Spec((3, 2), ("identity",), LOG_COSH)
    case = case_from(spec, N=3, seed=1)
    ref = reference(spec, case.params, case.X, case.Y)
    _, G, _ = loss_twin(LOG_COSH).terms.gradient(ref.O[-1], ref.Y, np.zeros_like(ref.O[-1]))
    return case, _C * G


@pytest.mark.parametrize("share, named", [(0.9, False), (-0.9, False), (4.0, True), (-4.0, True)])
def test_the_loss_gradient_bound_is_pinned_from_both_sides(share, named):
    case, room = _gradient_room()
    spec = Spec((3, 2), ("identity",), gradient_off_by(LOG_COSH, share * room))
    found = entry_findings(reference(spec, case.params, case.X, case.Y))
    assert bool(found) == named, found
    if named:
        assert f"disagrees with autograd of its own value at {room.size} of {room.size} outputs" in found[0]
