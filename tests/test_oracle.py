"""The oracle catches every catalogued wrong derivation with default settings, passes correct ones
written differently, and reports failures on one screen."""

import json
import re

import derivations as D
import pytest

import manual
from torch_ref import DerivationMismatch, check_derivation, check_update

# the slides' activations and losses: tests that pin one minimal case draw from the space they were
# written for
SLIDES_ACTIVATIONS = ("identity", "relu", "sigmoid", "tanh", "softmax")
SLIDES_LOSSES = ("squared", "bce", "ce")

# the pattern each catalogued mistake must be diagnosed as (on the minimal case found with seed=0)
PATTERNS = {
    D.missing_hidden_activation_derivative: "is missing",
    D.sign_flipped_output_delta: "sign flip",
    D.forgot_half_in_squared_loss: "factor 2",
    D.mean_not_divided_by_N: "the mean's 1/N missing",
    D.W_instead_of_W_transpose: "multiplies by W where the slides have W^T",
    D.sigmoid_derivative_on_I: "evaluated on I",
    D.relu_subgradient_one_at_zero: "at its kink I = 0 is taken as 1",
    D.bias_gradient_from_first_example: "first example",
    D.softmax_jacobian_taken_diagonal: "taken as diagonal",
    D.shortcut_applied_to_every_pair: "shortcut y* - y",
    D.output_derivative_applied_twice: "multiplies y* - y by A' again",
    D.zero_bias_gradients: "zero where autograd is not",
    D.derivative_on_the_output: "evaluated on the layer's output O where it needs I",
    D.bias_gradient_before_derivative: "grad b is summed before the activation derivative A' is applied",
}


@pytest.mark.parametrize("grad_fn", D.WRONG_GRADIENTS, ids=lambda f: f.__name__)
def test_wrong_derivation_is_caught_and_diagnosed(grad_fn):
    """Caught with default options; the diagnosis names the catalogued pattern where there is one,
    and is never a sentence cut short ("zero where autograd is not: " with nothing after it)."""
    with pytest.raises(DerivationMismatch) as info:
        check_derivation(grad_fn, seed=0)
    diagnosis = next(line for line in str(info.value).splitlines() if line.startswith("Diagnosis:"))
    assert not diagnosis.rstrip().endswith(":"), diagnosis
    if grad_fn in PATTERNS:
        assert PATTERNS[grad_fn] in diagnosis


@pytest.mark.parametrize("step_fn", D.WRONG_UPDATES, ids=lambda f: f.__name__)
def test_wrong_update_is_caught(step_fn):
    with pytest.raises(DerivationMismatch):
        check_update(step_fn)


@pytest.mark.parametrize("grad_fn", D.RIGHT_GRADIENTS, ids=lambda f: f.__name__)
def test_correct_derivation_passes(grad_fn):
    summary = check_derivation(grad_fn)
    assert summary.examples >= 100
    assert {"identity", "relu", "sigmoid", "softmax", "tanh"} <= summary.activations
    assert summary.kink and summary.square and summary.bias == {False, True}
    assert summary.reductions == {"sum", "mean"} and 1 in summary.batch_sizes


def test_correct_update_passes():
    def per_layer_step(spec, params, X, Y, lr):
        g = D.one_example_at_a_time_column_vectors(spec, params, X, Y)
        return manual.Params(
            [W - lr * G for W, G in zip(params.weights, g.weights)],
            None if params.biases is None else [b - lr * G for b, G in zip(params.biases, g.biases)],
        )

    check_update(manual.sgd_step)
    check_update(per_layer_step)


def test_report_names_case_layer_pattern_and_fits_one_screen():
    with pytest.raises(DerivationMismatch) as info:
        check_derivation(
            D.missing_hidden_activation_derivative, activations=SLIDES_ACTIVATIONS, losses=SLIDES_LOSSES, seed=3
        )
    text = str(info.value)
    lines = text.splitlines()
    assert len(lines) <= 30 and max(map(len, lines)) <= 200
    assert lines[1].startswith("Minimal case: ")
    parts = re.search(
        r"Parts from autograd at layer (\d) of (\d) \(the (output layer|\w+ counting from the output)\)", text
    )
    assert parts is not None, text
    layer = parts.group(1)
    assert f"A' of layer {layer} (relu) is missing" in text  # the pattern, at the layer where it parts
    # finite-difference blame: autograd right, or no separation where the minimal case sits on a ReLU kink
    assert "autograd is right" in text or "a kink may lie here" in text, text
    assert "case_from(" in text  # the reproduction


def test_reproduction_lines_rebuild_the_failing_case():
    with pytest.raises(DerivationMismatch) as info:
        check_derivation(D.sign_flipped_output_delta, seed=1)
    code = str(info.value).split("Reproduce:\n", 1)[1]
    namespace = {"sign_flipped_output_delta": D.sign_flipped_output_delta}
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code.replace("\n    ", "\n").strip(), namespace)
    assert "MISMATCH" in out.getvalue()


def test_crash_inside_grad_fn_is_reported_as_a_mismatch():
    def crashes(spec, params, X, Y):
        return 1 / 0

    with pytest.raises(DerivationMismatch, match="grad_fn raised ZeroDivisionError"):
        check_derivation(crashes, max_examples=5)


def test_wrong_return_type_and_count_are_reported():
    with pytest.raises(DerivationMismatch, match="returned float"):
        check_derivation(lambda s, p, X, Y: 0.0, max_examples=5)
    with pytest.raises(DerivationMismatch, match=r"weight array\(s\) for a network of"):
        check_derivation(
            lambda s, p, X, Y: manual.Params(
                manual.gradients(s, p, X, Y).weights[:-1] or [], manual.gradients(s, p, X, Y).biases
            ),
            max_examples=5,
            depths=2,
        )


def test_transpose_is_diagnosed_as_such():
    with pytest.raises(DerivationMismatch, match="transpose"):
        check_derivation(D.transposed_weight_gradient, widths=(2, 4), depths=1, seed=0)


def test_narrowed_options_only_draw_what_they_allow():
    summary = check_derivation(
        manual.gradients,
        activations=("sigmoid",),
        losses=("bce",),
        depths=(1, 2),
        bias=False,
        reductions=("sum",),
        max_examples=20,
        seed=0,
    )
    assert summary.activations == {"sigmoid"} and summary.pairs == {("sigmoid", "bce")}
    assert summary.bias == {False} and summary.reductions == {"sum"}
    assert all(s.depth <= 2 for s in summary.specs)


def test_float32_and_torch_tensors():
    summary = check_derivation(manual.gradients, dtype="float32", arrays="torch", max_examples=20, seed=0)
    assert summary.dtype == "float32"


def test_same_seed_same_minimal_case():
    messages = []
    for _ in range(2):
        with pytest.raises(DerivationMismatch) as info:
            check_derivation(D.tanh_derivative_without_square, seed=5)
        messages.append(str(info.value).splitlines()[1])
    assert messages[0] == messages[1]


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"max_examples": 0}, id="max_examples-zero"),
        pytest.param({"seed": 1.5}, id="seed-float"),
        pytest.param({"dtype": "float16"}, id="dtype-float16"),
        pytest.param({"device": "tpu:9"}, id="device-unknown"),
        pytest.param({"arrays": "jax"}, id="arrays-unknown"),
        pytest.param({"device": "cuda", "arrays": "numpy"}, id="numpy-off-cpu"),
        pytest.param({"activations": ("swish",)}, id="activation-unknown"),
        pytest.param({"activations": ()}, id="activations-empty"),
        pytest.param({"losses": ("hinge",)}, id="loss-unknown"),
        pytest.param({"losses": ("bce",), "activations": ("tanh",)}, id="no-valid-output"),
        pytest.param({"depths": (0, 2)}, id="depth-zero"),
        pytest.param({"depths": (3, 2)}, id="depths-reversed"),
        pytest.param({"widths": (1.5, 2)}, id="width-float"),
        pytest.param({"batch": 0}, id="batch-zero"),
        pytest.param({"bias": "yes"}, id="bias-string"),
        pytest.param({"reductions": ("median",)}, id="reduction-unknown"),
        pytest.param({"depths": (2, 3), "activations": ("softmax",), "losses": ("ce",)}, id="no-hidden-activation"),
    ],
)
def test_invalid_options_are_value_errors(options):
    with pytest.raises(ValueError, match=next(iter(options))):
        check_derivation(manual.gradients, **options)


def test_pytest_plugin_fixture_and_options(pytester):
    pytester.makepyfile("""
        import manual

        def test_right(derivation_oracle):
            s = derivation_oracle.check_derivation(manual.gradients, seed=0)
            assert s.dtype == "float32" and s.examples >= 7

        def test_wrong(derivation_oracle):
            def wrong(spec, params, X, Y):
                return manual.gradients(spec, params, X, Y).map(lambda a: 2 * a)
            derivation_oracle.check_derivation(wrong)
    """)
    result = pytester.runpytest(
        "--oracle-dtype=float32", "--oracle-examples=7", "-p", "no:cacheprovider", "-p", "no:benchmark"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*DerivationMismatch*", "*Minimal case*"])


_PLUGIN_TESTS = """
import manual

def test_right(derivation_oracle):
    derivation_oracle.check_input_gradient(manual.input_gradient, max_examples=3, seed=0, losses=("squared",))

def test_wrong(derivation_oracle):
    derivation_oracle.check_deltas(
        lambda s, p, X, Y: [2 * d for d in manual.deltas(s, p, X, Y)], max_examples=3, seed=0, losses=("squared",)
    )
"""


@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["serial", "xdist"])
def test_plugin_summary_and_oracle_report(pytester, workers):
    """Every check's outcome reaches pytest's terminal summary without -s, and --oracle-report
    writes them all, also when xdist workers ran the checks."""
    pytester.makepyfile(_PLUGIN_TESTS)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-p", "no:benchmark", "--oracle-report", "oracle.json", "--oracle-html", "oracle.html",
        *workers,
    )  # fmt: skip
    result.assert_outcomes(passed=1, failed=1)
    for line in (
        "*= derivation oracle =*",
        "*test_right: check passed; input: * examples on *",
        "*test_wrong: check failed (deltas: mismatch) on *, N=*Diagnosis: *times 2*",
    ):  # one by one: xdist reports the tests in the order they finish
        result.stdout.fnmatch_lines([line])
    records = json.loads((pytester.path / "oracle.json").read_text())
    assert sorted(r["passed"] for r in records) == [False, True]
    assert all(r["test"].startswith("test_plugin_summary_and_oracle_report") for r in records)
    html = (pytester.path / "oracle.html").read_text()  # both checks on one page, the failure first
    assert "1 failed, 0 not judged, 1 passed" in html
    assert html.index("test_wrong: mismatch</h2>") < html.index("test_right: passed</h2>")


@pytest.mark.parametrize("option", ["--oracle-report", "--oracle-html"])
def test_oracle_report_path_is_checked_at_start_up(pytester, option):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", option, "no/such/folder/r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option}*not a file path in an existing folder*"])
