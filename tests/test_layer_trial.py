"""What a new user's trial of the layer check met, kept as tests: a right custom Function whose forward
cancels (GELU's 1 + erf) is no false alarm; a built-in's draw narrowed to what a layer supports; a
built-in's constants by its names; the report at a tie, at a partial match, at swapped gradients."""

from __future__ import annotations

import math

import pytest
import torch

import manual
import torch_ref
from manual._xp import namespace
from torch_ref.layers.table import info


def _gelu(z: torch.Tensor) -> torch.Tensor:
    return z * 0.5 * (1 + torch.erf(z / math.sqrt(2)))


class LinearGELU(torch.autograd.Function):
    """GELU(x W + b), the textbook formula, with its backward by hand."""

    @staticmethod
    def forward(ctx, x, W, b):
        z = x @ W + b
        ctx.save_for_backward(x, W, z)
        return _gelu(z)

    @staticmethod
    def backward(ctx, g):
        x, W, z = ctx.saved_tensors
        phi = torch.exp(-z * z / 2) / math.sqrt(2 * math.pi)
        delta = g * (0.5 * (1 + torch.erf(z / math.sqrt(2))) + z * phi)
        return delta @ W.T, x.T @ delta, delta.sum(0)


class LinearGELUBiasMean(LinearGELU):
    @staticmethod
    def backward(ctx, g):
        dx, dW, db = LinearGELU.backward(ctx, g)
        return dx, dW, db / g.shape[0]


LINEAR = {"shapes": {"x": "N I", "W": "I O", "b": "O"}, "dims": {"N": (1, 4), "I": (1, 4), "O": (1, 4)}}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reference", [None, lambda x, W, b: torch.nn.functional.gelu(x @ W + b)], ids=["fd", "ref"])
def test_a_right_function_whose_forward_cancels_is_no_false_alarm(dtype, reference) -> None:
    for seed in range(3):
        torch_ref.check_function(LinearGELU, reference=reference, dtype=dtype, max_examples=30, seed=seed, **LINEAR)
    with pytest.raises(torch_ref.DerivationMismatch, match=r"Diagnosis: b equals .* times 0\.5"):
        torch_ref.check_function(
            LinearGELUBiasMean, reference=reference, dtype=dtype, max_examples=30, seed=0, **LINEAR
        )


def test_finite_differences_are_named_as_the_reference_they_are() -> None:
    with pytest.raises(torch_ref.DerivationMismatch) as caught:
        torch_ref.check_function(LinearGELUBiasMean, max_examples=30, seed=0, **LINEAR)
    report = str(caught.value)
    assert "equals finite differences' times 0.5" in report and "autograd" not in report.split("Reproduce:")[0]


def conv_no_groups(x, weight, bias, *, stride=1, padding=0, dilation=1, groups=1):
    if groups != 1 or dilation != 1:
        raise NotImplementedError("this conv supports neither groups nor dilation")
    return manual.LAYERS["conv2d"].forward(x, weight, bias, stride=stride, padding=padding)


def conv_no_groups_backward(dout, x, weight, bias, *, stride=1, padding=0, dilation=1, groups=1):
    return manual.LAYERS["conv2d"].backward(dout, x, weight, bias, stride=stride, padding=padding)


def test_a_built_ins_draw_narrowed_to_what_a_layer_supports() -> None:
    cases = torch_ref.layer_cases("conv2d", where=lambda c: c.constants["groups"] == 1 and c.constants["dilation"] == 1)
    summary = torch_ref.check_layer(
        conv_no_groups_backward, conv_no_groups, reference="conv2d", inputs=cases, max_examples=20, seed=0
    )
    assert summary.examples == 20


def test_a_built_ins_constants_go_by_its_names() -> None:
    with pytest.raises(ValueError, match=r"layer_norm takes the constants \['eps'\] .* not \['ln_param'\]"):
        torch_ref.check_layer(manual.LAYERS["layer_norm"].backward, "layer_norm", constants={"ln_param": {"eps": 1e-5}})


def test_constants_over_a_draw_its_shapes_depend_on_are_refused_with_the_case() -> None:
    with pytest.raises(ValueError, match=r"cannot run on the drawn case .*constants= gave \['groups'\]"):
        torch_ref.check_layer(
            manual.LAYERS["conv2d"].backward, "conv2d", constants={"groups": 3}, max_examples=20, seed=0
        )


def test_at_a_tie_the_blame_says_finite_differences_cannot_decide() -> None:
    mistake = next(m for m in info("max_pool2d").mistakes if "every tied" in m.name)
    ties = torch_ref.layer_cases("max_pool2d", where=lambda c: "ties" in c.regimes)
    with pytest.raises(torch_ref.DerivationMismatch) as caught:
        torch_ref.check_layer(mistake.backward, "max_pool2d", inputs=ties, max_examples=20, seed=0)
    assert "is not differentiable at x[" in str(caught.value) and "a kink or a tie" in str(caught.value)


def test_a_mistake_that_explains_one_failing_array_is_named_for_that_array() -> None:
    stride_ignored = next(m for m in info("conv2d").mistakes if m.name.startswith("stride ignored")).backward

    def both_wrong(dout, x, weight, bias, **constants):
        grads = stride_ignored(dout, x, weight, bias, **constants)
        return {**grads, "bias": 2 * grads["bias"]}

    strided = torch_ref.layer_cases("conv2d", where=lambda c: "stride>1" in c.regimes)
    with pytest.raises(torch_ref.DerivationMismatch) as caught:
        torch_ref.check_layer(both_wrong, "conv2d", inputs=strided, max_examples=20, seed=0)
    assert "Diagnosis: x: as 'stride ignored in the backward" in str(caught.value)


def test_swapped_gradients_are_named_before_all_zeros() -> None:
    def swapped(dout, x, weight, bias, eps):
        grads = manual.LAYERS["layer_norm"].backward(dout, x, weight, bias, eps=eps)
        return {**grads, "weight": grads["bias"], "bias": grads["weight"]}

    d1 = torch_ref.layer_cases("layer_norm", where=lambda c: "D=1" in c.regimes)
    with pytest.raises(torch_ref.DerivationMismatch) as caught:
        torch_ref.check_layer(swapped, "layer_norm", inputs=d1, max_examples=10, seed=0)
    assert "the two swapped" in str(caught.value) and "all zeros" not in str(caught.value)


def test_a_forward_called_against_its_signature_says_how_it_was_called() -> None:
    def forward(x, gamma, beta, ln_param):  # CS231n's, which takes its constants in a dict
        xp = namespace(x)
        return xp.asarray(x)

    with pytest.raises(
        torch_ref.DerivationMismatch, match=r"forward was called as forward\(x, gamma=\.\.\., beta=\.\.\., eps=\.\.\.\)"
    ):
        torch_ref.check_layer(
            manual.LAYERS["layer_norm"].backward,
            forward,
            reference="layer_norm",
            names={"gamma": "weight", "beta": "bias"},
            max_examples=3,
            seed=0,
        )
