"""The oracle's calling conventions: Reproduce lines that run as printed, bad calls refused up front
with a message that names the problem, and pytest output that shows the report."""

import contextlib
import io
from dataclasses import dataclass

import derivations as D
import numpy as np
import pytest
import torch

import manual
from torch_ref import DerivationMismatch, check_derivation, check_update


def _reproduce(text: str, namespace: dict) -> str:
    code = text.split("Reproduce:\n", 1)[1]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code.replace("\n    ", "\n").strip(), namespace)
    return out.getvalue()


def doubled_list(spec, params, X, Y):
    """Wrong by a factor 2, returned as a plain list (no biases)."""
    return [2 * g for g in manual.gradients(spec, params, X, Y).weights]


def doubled_on_tensors(spec, params, X, Y):
    assert isinstance(X, torch.Tensor)
    return manual.gradients(spec, params, X, Y).map(lambda a: 2 * a)


@dataclass(frozen=True)
class Scaled:
    """A callable object: gradients times a factor."""

    factor: float

    def __call__(self, spec, params, X, Y):
        return manual.gradients(spec, params, X, Y).map(lambda a: self.factor * a)


@pytest.mark.parametrize(
    "fn,options",
    [
        pytest.param(doubled_list, {"bias": False}, id="plain-list"),
        pytest.param(D.sign_flipped_output_delta, {}, id="params"),
        pytest.param(doubled_on_tensors, {"arrays": "torch"}, id="torch-tensors"),
        pytest.param(
            lambda spec, params, X, Y: manual.gradients(spec, params, X, Y).map(lambda a: -a), {}, id="lambda"
        ),
        pytest.param(Scaled(3.0), {}, id="callable-object"),
    ],
)
def test_reproduce_lines_run_as_printed(fn, options):
    with pytest.raises(DerivationMismatch) as info:
        check_derivation(fn, seed=0, max_examples=20, **options)
    printed = _reproduce(str(info.value), {"doubled_list": doubled_list, "doubled_on_tensors": doubled_on_tensors})
    assert printed.startswith("grad_fn disagrees with autograd") and "MISMATCH" in printed


def test_reproduce_lines_of_an_update_run_as_printed():
    with pytest.raises(DerivationMismatch) as info:
        check_update(D.step_adds_gradient, seed=0, max_examples=20)
    assert _reproduce(str(info.value), {}).startswith("step_fn disagrees with autograd")


# ------------------------------------------------------------------------------------------ bad calls


@pytest.mark.parametrize(
    "fn,message",
    [
        pytest.param(42, "grad_fn must be a callable grad_fn\\(spec, params, X, Y\\), got int", id="not-callable"),
        pytest.param(lambda spec, params: None, "grad_fn must accept 4 positional arguments", id="two-arguments"),
        pytest.param(lambda spec, params, X, Y, lr: None, "must accept 4 positional arguments", id="five-arguments"),
    ],
)
def test_bad_grad_fn_is_a_type_error_before_any_draw(fn, message):
    with pytest.raises(TypeError, match=message):
        check_derivation(fn)


def test_bad_step_fn_is_a_type_error_before_any_draw():
    with pytest.raises(TypeError, match=r"step_fn must accept 5 positional arguments \(spec, params, X, Y, lr\)"):
        check_update(manual.gradients)


def test_a_weights_biases_pair_is_accepted():
    def pair(spec, params, X, Y):
        g = manual.gradients(spec, params, X, Y)
        return list(g.weights), None if g.biases is None else list(g.biases)

    check_derivation(pair, seed=0, max_examples=20)


def test_a_plain_list_with_biases_says_what_to_return():
    with pytest.raises(
        DerivationMismatch, match=r"return manual.Params\(weights, biases\) or a \(weights, biases\) pair"
    ):
        check_derivation(
            lambda s, p, X, Y: list(manual.gradients(s, p, X, Y).weights), bias=True, seed=0, max_examples=5
        )


@pytest.mark.parametrize("dtype", [np.float32, np.dtype("float32"), torch.float32, "float32"], ids=str)
def test_dtype_is_accepted_in_every_spelling(dtype):
    assert check_derivation(manual.gradients, dtype=dtype, seed=0, max_examples=5).dtype == "float32"


def test_a_numpy_derivation_given_tensors_is_told_so():
    def numpy_only(spec, params, X, Y):
        X = X.astype(np.float64)  # NumPy's spelling: a torch tensor has no astype
        return manual.gradients(spec, params, X, Y)

    with pytest.raises(DerivationMismatch, match="was given torch tensors on device 'cpu'; a NumPy derivation needs"):
        check_derivation(numpy_only, arrays="torch", seed=0, max_examples=5)


@pytest.mark.parametrize(
    "options,message",
    [
        pytest.param(
            {"activations": ("tanh",), "losses": ("bce", "squared")},
            r"losses \('bce',\) have no valid output",
            id="bce-without-sigmoid",
        ),
        pytest.param(
            {"activations": ("tanh",), "losses": ("ce",)}, r"losses \('ce',\) have no valid output", id="ce-tanh"
        ),
        pytest.param({"strict": "yes"}, "strict must be True or False", id="strict-string"),
    ],
)
def test_options_that_leave_nothing_to_draw_fail_up_front(options, message):
    calls = []
    with pytest.raises(ValueError, match=message):
        check_derivation(lambda s, p, X, Y: calls.append(1), **options)
    assert not calls


def test_default_losses_narrow_to_what_the_activations_serve():
    summary = check_derivation(manual.gradients, activations=("tanh", "identity"), seed=0, max_examples=10)
    serving = {name for name, loss in manual.LOSSES.items() if loss.accepts(manual.ACTIVATIONS["tanh"])}
    assert {loss for _, loss in summary.pairs} == serving and "bce" not in serving


# ------------------------------------------------------------------------------------------ pytest


def test_failing_fixture_check_shows_the_report_not_the_oracle(pytester):
    pytester.makepyfile("""
        import manual

        def test_wrong(derivation_oracle):
            derivation_oracle.check_derivation(lambda s, p, X, Y: manual.gradients(s, p, X, Y).map(lambda a: 2 * a),
                                               seed=0)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:benchmark", "--oracle-examples=10")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "Minimal case" in text and "Reproduce" in text
    assert "torch_ref/" not in text and "hypothesis/" not in text and "_run" not in text  # no frame of the oracle


@pytest.mark.parametrize(
    "args,message",
    [
        pytest.param(["--oracle-examples=0"], "--oracle-examples must be >= 1", id="examples-zero"),
        pytest.param(["--oracle-device=tpu:9"], "--oracle-device 'tpu:9' is not available", id="device-unknown"),
        pytest.param(["--oracle-dtype=float16"], "invalid choice", id="dtype-float16"),
    ],
)
def test_bad_oracle_options_are_usage_errors_at_start_up(pytester, args, message):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:benchmark", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_check_case_refuses_an_update_with_no_learning_rate():
    from torch_ref import check_case
    from torch_ref.strategies import case_from

    case = case_from(manual.Spec((2, 1), ("sigmoid",), "bce"), N=2, seed=0, lr=0.0)
    with pytest.raises(ValueError, match=r"needs case.lr > 0 .* got lr=0.0"):
        check_case(D.step_adds_gradient, case, update=True)


HELPER_SCALE = 2.0


def test_reproduce_heading_says_where_the_lines_run(monkeypatch):
    import sys

    from torch_ref.engine.naming import naming

    assert naming(doubled_list, "grad_fn", ()).where == "anywhere"  # importable from this module
    assert naming(lambda s, p, X, Y: np.zeros(1), "grad_fn", ()).where == "anywhere"  # only np
    uses_a_global = lambda s, p, X, Y: HELPER_SCALE * manual.gradients(s, p, X, Y)
    assert naming(uses_a_global, "grad_fn", ("uses_a_global",)).where == "defined"
    assert naming(uses_a_global, "grad_fn", ()).where == "bind"
    # a function of the user's script: reachable only as __main__.my_gradients
    script_function = type(doubled_list)(doubled_list.__code__, {"__name__": "__main__"}, "my_gradients")
    script_function.__module__, script_function.__qualname__ = "__main__", "my_gradients"
    monkeypatch.setattr(sys.modules["__main__"], "my_gradients", script_function, raising=False)
    found = naming(script_function, "grad_fn", ())
    assert (found.where, found.expression, found.setup) == ("defined", "my_gradients", ())


def test_check_case_explains_a_mismatch_like_the_report():
    from torch_ref import check_case
    from torch_ref.strategies import case_from

    text = str(
        check_case(
            D.missing_hidden_activation_derivative,
            case_from(manual.Spec((2, 3, 1), ("tanh", "sigmoid"), "bce"), N=3, seed=0),
        )
    )
    assert "Parts from autograd at layer 1 of 2" in text and "Diagnosis: the activation derivative A'" in text
    assert "Blame: finite differences in float64" in text and "ReLU" not in text


def test_check_case_and_case_from_refuse_bad_arguments():
    from torch_ref import check_case
    from torch_ref.strategies import case_from

    spec = manual.Spec((2, 1), ("sigmoid",), "bce")
    with pytest.raises(TypeError, match=r"case must be a torch_ref.strategies.Case .* got tuple"):
        check_case(manual.gradients, (spec, None))
    with pytest.raises(ValueError, match=r"N must be an int >= 1 .* got 0"):
        case_from(spec, N=0, seed=0)


def test_a_step_fn_that_returns_nothing_is_told_what_to_return():
    def forgets_to_return(spec, params, X, Y, lr):
        manual.sgd_step(spec, params, X, Y, lr)

    with pytest.raises(DerivationMismatch, match="returned something that is not updated weights"):
        check_update(forgets_to_return, seed=0, max_examples=5)


def test_precision_warning_points_at_the_callers_line():
    from torch_ref import PrecisionWarning

    with pytest.warns(PrecisionWarning) as record:
        check_derivation(D.weights_recovered_from_a_step, seed=0, max_examples=10)
    assert record[0].filename == __file__
