"""A failing layer check's report: its Reproduce lines run as printed and fail the same way, in both
calling conventions and with names mapped; the fixture takes the forward positionally."""

from __future__ import annotations

import textwrap

import layer_styles as S
import pytest

import torch_ref
from torch_ref.layers.table import info


def _reproduce(report: str) -> str:
    lines = report.splitlines()
    start = lines.index("Reproduce:")
    return textwrap.dedent("\n".join(lines[start + 1 :]))


def _runs_and_fails_again(report: str) -> None:
    code = _reproduce(report)
    with pytest.raises(torch_ref.DerivationMismatch):
        exec(compile(code, "<reproduce>", "exec"), {})


def test_the_reproduce_lines_of_a_built_in_with_names_run_and_fail_again() -> None:
    with pytest.raises(torch_ref.DerivationMismatch) as caught:
        torch_ref.check_layer(
            S.layernorm_backward_constants,
            "layer_norm",
            names={"gamma": "weight", "beta": "bias"},
            max_examples=10,
            seed=0,
        )
    assert "names={'gamma': 'weight', 'beta': 'bias'}" in str(caught.value)
    _runs_and_fails_again(str(caught.value))


def test_the_reproduce_lines_of_the_cache_convention_run_and_fail_again() -> None:
    with pytest.raises(torch_ref.DerivationMismatch) as caught:
        torch_ref.check_layer(
            S.batchnorm_backward_constants,
            S.batchnorm_forward,
            reference=S.batchnorm_reference,
            convention="cache",
            shapes={"x": "N D", "gamma": "D", "beta": "D"},
            dims={"N": (2, 4), "D": (1, 3)},
            constants={"bn_param": S.BN_PARAM},
            max_examples=10,
            seed=0,
        )
    report = str(caught.value)
    assert "out, cache = batchnorm_forward(x, params['gamma'], params['beta'], bn_param=params['bn_param'])" in report
    _runs_and_fails_again(report)


def test_the_reproduce_lines_of_a_function_run_and_fail_again() -> None:
    draw = lambda rng: (rng.standard_normal((2, 3)), {})
    with pytest.raises(torch_ref.DerivationMismatch) as caught:
        torch_ref.check_function(S.SiLUWrong, inputs=draw, max_examples=10, seed=0)
    report = str(caught.value)
    assert "torch_ref.check_function(SiLUWrong" in report
    code = _reproduce(report).replace("lambda rng: (x, params)", "lambda rng: (x, params)")
    with pytest.raises(torch_ref.DerivationMismatch):
        exec(compile(code, "<reproduce>", "exec"), {})


def test_a_mistake_of_the_catalogue_is_named_with_its_formula() -> None:
    mistake = next(m for m in info("max_pool2d").mistakes if m.regime == "ties" and "every" in m.name)
    strategy = info("max_pool2d").draw(__import__("numpy").dtype("float64")).filter(lambda c: "ties" in c.regimes)
    with pytest.raises(torch_ref.DerivationMismatch) as caught:
        torch_ref.check_layer(mistake.backward, "max_pool2d", inputs=strategy, max_examples=10, seed=0)
    assert f"Diagnosis: {mistake.name}: {mistake.formula}" in str(caught.value)


def test_the_fixture_takes_the_forward_positionally(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import manual

        def test_layer(derivation_oracle):
            summary = derivation_oracle.check_layer(manual.LAYERS["softmax"].backward, "softmax", max_examples=5)
            assert summary.kind == "layer" and summary.examples == 5
        """
    )
    pytester.runpytest("-p", "no:randomly", "--oracle-seed", "0").assert_outcomes(passed=1)
