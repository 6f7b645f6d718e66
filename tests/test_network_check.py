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
