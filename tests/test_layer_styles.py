"""Right layer backwards in the styles users write (tests/layer_styles.py) pass check_layer and
check_function in float64 and float32; each wrong counterpart raises DerivationMismatch, named where
the built-in's catalogue knows the mistake."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import layer_styles as S
import pytest

import torch_ref

EXAMPLES = 30
NAMES = {"gamma": "weight", "beta": "bias"}


def _batch_norm(backward: Callable[..., Any], **options: Any) -> Any:
    return torch_ref.check_layer(
        backward,
        S.batchnorm_forward,
        reference=S.batchnorm_reference,
        convention="cache",
        shapes={"x": "N D", "gamma": "D", "beta": "D"},
        dims={"N": (2, 6), "D": (1, 5)},  # torch's batch norm refuses N = 1 in training
        constants={"bn_param": S.BN_PARAM},
        **options,
    )


def _layer_norm(backward: Callable[..., Any], **options: Any) -> Any:
    return torch_ref.check_layer(backward, S.layernorm, reference="layer_norm", names=NAMES, **options)


def _layer_norm_shapes(backward: Callable[..., Any], **options: Any) -> Any:
    return torch_ref.check_layer(
        backward,
        S.layernorm,
        reference=S.layer_norm_reference,
        shapes={"x": "N D", "gamma": "D", "beta": "D"},
        dims={"N": (1, 5), "D": (1, 6)},
        **options,
    )


def _softmax(backward: Callable[..., Any], **options: Any) -> Any:
    return torch_ref.check_layer(backward, "softmax", **options)


def _affine(backward: Callable[..., Any], **options: Any) -> Any:
    return torch_ref.check_layer(
        backward,
        S.affine_forward,
        reference=S.affine_reference,
        convention="cache",
        shapes={"x": "N H W", "w": "D M", "b": "M"},
        dims={"N": (1, 5), "H": 2, "W": 3, "D": 6, "M": (1, 5)},  # D = H W: x flattened
        **options,
    )


_SILU = {"shapes": {"x": "N D"}, "dims": {"N": (1, 4), "D": (1, 5)}}
_LN_FN = {
    "shapes": {"x": "N D", "weight": "D", "bias": "D"},
    "dims": {"N": (1, 4), "D": (1, 5)},
    "constants": {"eps": 1e-5},
}


def _function(fn: Any, **options: Any) -> Any:
    return torch_ref.check_function(fn, **options)


RIGHT = [
    pytest.param(lambda **o: _batch_norm(S.batchnorm_backward, **o), id="batch_norm-cache-staged"),
    pytest.param(lambda **o: _batch_norm(S.batchnorm_backward_alt, **o), id="batch_norm-cache-one-line"),
    pytest.param(lambda **o: _layer_norm(S.layernorm_backward, **o), id="layer_norm-names-builtin"),
    pytest.param(lambda **o: _layer_norm_shapes(S.layernorm_backward, **o), id="layer_norm-shapes-reference"),
    pytest.param(lambda **o: _softmax(S.softmax_backward, **o), id="softmax-sum"),
    pytest.param(lambda **o: _softmax(S.softmax_backward_jacobian, **o), id="softmax-jacobian"),
    pytest.param(lambda **o: _affine(S.affine_backward, **o), id="affine-cache-shapes"),
    pytest.param(lambda **o: _function(S.SiLU, **_SILU, **o), id="function-silu-fd"),
    pytest.param(lambda **o: _function(S.SiLU, reference=S.silu_reference, **_SILU, **o), id="function-silu-ref"),
    pytest.param(lambda **o: _function(S.LayerNormFunction, **_LN_FN, **o), id="function-layer_norm-fd"),
    pytest.param(
        lambda **o: _function(S.LayerNormFunction, reference=S.layer_norm_function_reference, **_LN_FN, **o),
        id="function-layer_norm-ref",
    ),
]

# each wrong style, and the Diagnosis it must get ("" where only the generic patterns speak)
WRONG = [
    pytest.param(lambda **o: _batch_norm(S.batchnorm_backward_constants, **o), "", id="batch_norm-constants"),
    pytest.param(lambda **o: _batch_norm(S.batchnorm_backward_bessel, **o), "", id="batch_norm-bessel"),
    pytest.param(
        lambda **o: _layer_norm(S.layernorm_backward_constants, **o),
        "Diagnosis: row statistics treated as constants",
        id="layer_norm-constants",
    ),
    pytest.param(
        lambda **o: _softmax(S.softmax_backward_diagonal, **o),
        "Diagnosis: softmax Jacobian taken as its diagonal",
        id="softmax-diagonal",
    ),
    pytest.param(
        lambda **o: _affine(S.affine_backward_bias_averaged, **o),
        "Diagnosis: b equals autograd's times 0.5",
        id="affine-bias-averaged",
    ),
    pytest.param(lambda **o: _function(S.SiLUWrong, **_SILU, **o), "", id="function-silu-fd"),
    pytest.param(
        lambda **o: _function(S.SiLUWrong, reference=S.silu_reference, **_SILU, **o), "", id="function-silu-ref"
    ),
    pytest.param(lambda **o: _function(S.LayerNormFunctionWrong, **_LN_FN, **o), "", id="function-layer_norm-fd"),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("check", RIGHT)
def test_every_right_style_passes(check: Callable[..., Any], dtype: str) -> None:
    summary = check(dtype=dtype, max_examples=EXAMPLES, seed=0)
    assert summary.examples >= EXAMPLES * 2 // 3, summary  # the rest not judged (float32's rounding), never failed
    assert summary.worst_share <= 1.0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("check", "diagnosis"), WRONG)
def test_every_wrong_style_is_caught(check: Callable[..., Any], diagnosis: str, dtype: str) -> None:
    with pytest.raises(torch_ref.DerivationMismatch) as info:
        check(dtype=dtype, max_examples=EXAMPLES, seed=0)
    assert diagnosis in str(info.value), str(info.value)


@pytest.mark.parametrize("check", [p for p in RIGHT if not str(p.id).startswith("function")])
def test_the_array_api_styles_pass_on_torch_tensors(check: Callable[..., Any]) -> None:
    check(dtype="float32", arrays="torch", max_examples=10, seed=1)


def test_the_docs_catalogue_is_the_modules_own() -> None:
    page = Path(__file__).resolve().parents[1] / "docs" / "layers.md"
    assert S.catalogue_table() in page.read_text(encoding="utf-8"), "regenerate with layer_styles.catalogue_table()"
