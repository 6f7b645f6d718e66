"""check_network and its siblings on networks of layers: right code passes in both dtypes, every
whole-network mistake is caught with its block and layer named, the bound is pinned from both sides,
a check that compares nothing never passes, and the Reproduce lines run."""

from __future__ import annotations

import re

import network_mistakes as wrong
import numpy as np
import pytest
from hypothesis import strategies as st

import torch_ref
import torch_ref.networks.draw
from manual.network import (
    Network,
    NetworkTrainer,
    Residual,
    conv2d,
    dropout,
    embedding,
    layer_norm,
    linear,
    max_pool2d,
    self_attention,
)
from torch_ref.networks.judge import judge, reference_of


def right(net, params, X, Y, masks=None):
    return net.gradients(params, X, Y, masks=masks)


def gpt(blocks: int = 2, D: int = 4, V: int = 5) -> Network:
    layers = [embedding(V, D)]
    for _ in range(blocks):
        layers += [
            Residual([layer_norm(D), self_attention(D, 2)]),
            Residual([layer_norm(D), linear(D, 6), "gelu", linear(6, D)]),
        ]
    return Network([*layers, layer_norm(D), linear(D, V)], "cross_entropy")


def cases(net: Network, shape: tuple[int, ...]):
    return st.integers(0, 2**32 - 1).map(lambda seed: torch_ref.network_case(net, shape, seed))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_right_gradients_pass_on_every_family(dtype):
    summary = torch_ref.check_derivation(
        right, networks=("mlp", "cnn", "transformer"), max_examples=12, seed=4, dtype=dtype
    )
    assert summary.examples >= 10
    assert summary.worst_share < 0.5


@pytest.mark.parametrize(
    ("grad_fn", "net", "shape", "named"),
    [
        (
            wrong.residual_not_added(2),
            gpt(1),
            (2, 3),
            r"the residual gradient not added in block 2 \(the residual at layers\[2\]\)",
        ),
        (
            wrong.residual_not_added(3),
            gpt(2),
            (1, 3),
            r"the residual gradient not added in block 3 \(the residual at layers\[3\]\)",
        ),
        (
            wrong.norm_wrong_axis(1),
            gpt(1),
            (2, 3),
            r"normalization statistics over the wrong axis.*in block 1 \(the residual at layers\[1\]\) > layers\[1\]\[0\] layer_norm",
        ),
        (
            wrong.attention_mask_left_out(3),
            gpt(2),
            (2, 4),
            r"the causal mask left out of the attention's backward.*in block 3 \(the residual at layers\[3\]\) > layers\[3\]\[1\] self_attention",
        ),
        (
            wrong.pooling_misrouted(),
            Network([conv2d(1, 2, 3, padding=1), "relu", max_pool2d(2), "flatten", linear(8, 3)], "cross_entropy"),
            (2, 1, 4, 4),
            r"the pooling gradient misrouted: max pooling's δ sent to each window's first entry.*layers\[2\] max_pool2d",
        ),
    ],
    ids=["residual block 2", "residual block 3", "norm axis", "attention mask", "max pool route"],
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_whole_network_mistake_is_caught_and_placed(grad_fn, net, shape, named, dtype):
    with pytest.raises(torch_ref.DerivationMismatch) as info:
        torch_ref.check_derivation(grad_fn, networks=cases(net, shape), max_examples=10, seed=0, dtype=dtype)
    report = str(info.value)
    assert re.search("Diagnosis: " + named, report), report
    assert "They part at " in report


def test_dropout_mask_reused_across_steps_is_caught_in_training():
    net = Network([linear(3, 5), "relu", dropout(0.5), linear(5, 2)], "cross_entropy")
    with pytest.raises(torch_ref.DerivationMismatch) as info:
        torch_ref.check_training(
            wrong.DropoutMaskReused, networks=cases(net, (4, 3)), steps=3, lr=0.1, max_examples=10, seed=0
        )
    assert "Diagnosis: dropout's mask reused across steps" in str(info.value)


def test_right_trainers_follow_torch_optim():
    import torch

    for optimizer, name in [(None, "sgd"), (lambda p, lr: torch.optim.AdamW(p, lr), "adamw")]:
        make = lambda net, params, lr, name=name: NetworkTrainer(net, params, lr=lr, optimizer=name)
        summary = torch_ref.check_training(
            make, networks=("mlp", "transformer"), optimizer=optimizer, max_examples=6, seed=1
        )
        assert summary.examples >= 5


def _perturbed(share: float):
    """The right gradients moved by ``share`` of the bound at every entry."""

    def grad_fn(net, params, X, Y, masks=None):
        case = torch_ref.NetworkCase(net, params, X, Y, masks or {}, tuple(X.shape), 0)
        traced = reference_of(case)
        return {
            k: traced.grads[k].numpy()
            + share * traced.bound(k, np.dtype(X.dtype if X.dtype.kind == "f" else params[k].dtype)).numpy()
            for k in net.parameters()
        }

    return grad_fn


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_bound_is_pinned_from_both_sides(dtype):
    case = torch_ref.network_case(gpt(1), (2, 3), seed=3, dtype=dtype)
    inside = judge(_perturbed(0.99), case, "numpy", "cpu", dtype)
    beyond = judge(_perturbed(1.01), case, "numpy", "cpu", dtype)
    # g + 0.99 b itself rounds (u|g|, up to 1% of a float64 bound): the share lands in (0.98, 1)
    assert inside.kind == "agree" and 0.98 < inside.comparison.worst_share < 1.0
    assert beyond.kind == "mismatch" and beyond.comparison.worst_share > 1.0


def test_a_network_without_parameters_is_refused():
    with pytest.raises(ValueError, match="has no parameters"):
        torch_ref.check_network(right, networks=torch_ref.network_case(Network(["relu"], "squared"), (2, 3), 0))


def test_the_reproduce_lines_run_and_fail_again():
    grad_fn = wrong.residual_not_added(1)
    with pytest.raises(torch_ref.DerivationMismatch) as info:
        torch_ref.check_derivation(grad_fn, networks="transformer", max_examples=10, seed=0)
    lines = str(info.value).split("Reproduce:\n", 1)[1].splitlines()
    code = "\n".join(line[4:] for line in lines if not line.lstrip().startswith("from network_mistakes"))
    with pytest.raises(torch_ref.DerivationMismatch):
        exec(code, {"grad_fn": grad_fn, wrong.residual_not_added(1).__name__: grad_fn})


def _head_without_derivative(net, params, X, Y, masks=None):
    """The output delta taken as (y* - y)/N whatever the pair: f'(I) dropped where the pair is not canonical."""
    import manual.network.head as head

    saved = head.head_delta
    head.head_delta = lambda out, loss, reduction, I, O, Y, simplified=None: (
        (O - Y) / (Y.shape[0] if reduction == "mean" else 1)
    )
    try:
        return net.gradients(params, X, Y, masks=masks)
    finally:
        head.head_delta = saved


def test_an_output_activations_own_backward_is_checked():
    net = Network([linear(3, 4), "tanh", linear(4, 2), "sigmoid"], "squared")
    with pytest.raises(torch_ref.DerivationMismatch):
        torch_ref.check_derivation(_head_without_derivative, networks=net, max_examples=10, seed=0)


def test_overlapping_pooling_windows_and_non_square_inputs_are_drawn():
    from hypothesis import find

    def overlapping(case):
        pools = [n.constants for _, n in case.net.nodes() if n.name == "max_pool2d"]
        return any(c["stride"] is not None and c["stride"] < c["kernel_size"] for c in pools)

    cases = torch_ref.networks.draw.network_cases(("cnn",), np.dtype("float64"))
    assert overlapping(find(cases, overlapping))
    assert find(cases, lambda c: c.X.shape[2] != c.X.shape[3]).X.shape[2] > 0
    summary = torch_ref.check_derivation(right, networks=cases.filter(overlapping), max_examples=8, seed=5)
    assert summary.examples >= 8


def test_a_layer_norm_over_one_feature_is_not_judged():
    net = Network(
        [embedding(2, 1), Residual([layer_norm(1), self_attention(1, 1)]), layer_norm(1), linear(1, 2)], "cross_entropy"
    )
    v = judge(right, torch_ref.network_case(net, (2, 3), seed=0, dtype="float32"), "numpy", "cpu", "float32")
    assert v.kind == "not judged" and "over one feature" in v.detail


def test_complex_gradients_are_a_wrong_return():
    case = torch_ref.network_case(gpt(1), (2, 3), seed=0)
    v = judge(lambda *a, **k: {n: g + 1j for n, g in right(*a, **k).items()}, case, "numpy", "cpu", "float64")
    assert v.kind == "type" and "not an array of real floats" in v.detail


def test_a_bound_wider_than_the_gradients_allow_is_not_judged_whatever_the_comparison():
    net = Network([linear(2, 3), layer_norm(3), "tanh", linear(3, 2)], "cross_entropy")
    case = torch_ref.network_case(net, (4, 2), seed=0, dtype="float32")
    params = dict(case.params)
    params["0.bias"] = params["0.bias"] + np.float32(1e7)  # layer norm of a row offset by 1e7: float32 keeps no digit
    far = torch_ref.NetworkCase(net, params, case.X, case.Y, {}, case.shape, case.seed)
    v = judge(lambda *a, **k: {n: g * 0 for n, g in right(*a, **k).items()}, far, "numpy", "cpu", "float32")
    assert v.kind == "not judged"
