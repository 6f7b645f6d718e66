"""check_layer and check_function refuse what they cannot use, before anything is drawn, with an
error naming the argument, its value and what is accepted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import manual
import torch_ref

RIGHT = manual.LAYERS["layer_norm"].backward


def _forward(x, w):
    return x @ w


def _backward(dout, x, w):
    return {"x": dout @ w.T, "w": x.T @ dout}


BAD = [
    pytest.param(dict(backward=3, forward="linear"), TypeError, "backward must be callable", id="backward"),
    pytest.param(
        dict(forward="layernorm"), ValueError, r"names no built-in layer \(did you mean 'layer_norm'", id="name"
    ),
    pytest.param(dict(forward=_forward), ValueError, "needs inputs: give inputs=", id="no-inputs"),
    pytest.param(
        dict(forward="linear", convention="cs231n"),
        ValueError,
        r"convention must be one of \('grads', 'cache'\)",
        id="convention",
    ),
    pytest.param(
        dict(forward="layer_norm", names={"gamma": "scale"}),
        ValueError,
        "names maps onto .'scale'., which layer_norm does not take",
        id="names",
    ),
    pytest.param(
        dict(forward=_forward, names={"w": "weight"}, shapes={"x": "N D", "w": "D K"}, dims={"N": 2, "D": 2, "K": 2}),
        ValueError,
        "names maps onto a built-in's names",
        id="names-no-builtin",
    ),
    pytest.param(
        dict(forward="linear", reference="layer_norm"),
        ValueError,
        "forward names 'linear' and reference names 'layer_norm'",
        id="two-layers",
    ),
    pytest.param(
        dict(forward=_forward, shapes={"w": "D K"}, dims={"D": 2, "K": 2}), ValueError, "including 'x'", id="shapes-x"
    ),
    pytest.param(
        dict(forward=_forward, shapes={"x": "N D", "w": "D K"}, dims={"N": 2, "D": 2}),
        ValueError,
        r"dims has no range for \['K'\]",
        id="dims",
    ),
    pytest.param(
        dict(forward=_forward, shapes={"x": "N D", "w": "D K"}, dims={"N": (3, 1), "D": 2, "K": 2}),
        ValueError,
        r"dims\['N'\] must be an int or a pair",
        id="dims-range",
    ),
    pytest.param(
        dict(forward=_forward, inputs=lambda rng: None, shapes={"x": "N"}, dims={"N": 2}),
        ValueError,
        "not both",
        id="both",
    ),
    pytest.param(dict(forward=_forward, inputs=5), TypeError, "inputs must be draw", id="inputs"),
    pytest.param(
        dict(forward="linear", depths=(1, 2)),
        TypeError,
        r"unexpected keyword argument\(s\) \['depths'\]",
        id="network-option",
    ),
]


@pytest.mark.parametrize(("given", "error", "match"), BAD)
def test_a_bad_call_is_refused_before_any_draw(given, error, match) -> None:
    given = dict(given)
    backward = given.pop("backward", _backward)
    forward = given.pop("forward")
    with pytest.raises(error, match=match):
        torch_ref.check_layer(backward, forward, max_examples=2, **given)


def test_a_draw_that_gives_no_pair_is_named() -> None:
    with pytest.raises(TypeError, match=r"inputs\(rng\) must give a pair \(x, params\)"):
        torch_ref.check_layer(_backward, _forward, inputs=lambda rng: rng.standard_normal(3), max_examples=2)


def test_a_backward_that_misses_a_gradient_or_gives_one_for_an_index_is_reported() -> None:
    with pytest.raises(torch_ref.DerivationMismatch, match=r"backward gave no gradient for \['bias'\]"):
        torch_ref.check_layer(
            lambda dout, x, weight, bias, eps: {"x": x, "weight": weight}, "layer_norm", max_examples=3, seed=0
        )

    def embedding_with_dx(dout, x, weight):
        return {**manual.LAYERS["embedding"].backward(dout, x, weight), "x": np.zeros(x.shape)}

    with pytest.raises(torch_ref.DerivationMismatch, match=r"gradients for \['x'\], which are not differentiated"):
        torch_ref.check_layer(embedding_with_dx, "embedding", max_examples=3, seed=0)


def test_check_function_takes_a_function_and_needs_inputs() -> None:
    with pytest.raises(TypeError, match=r"takes a torch\.autograd\.Function subclass or its \.apply"):
        torch_ref.check_function(_forward, inputs=lambda rng: (rng.standard_normal((2, 2)), {}))

    class Double(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, g):
            return 2 * g

    with pytest.raises(ValueError, match="check_function needs inputs"):
        torch_ref.check_function(Double)


def test_a_function_whose_forward_autograd_cannot_follow_needs_a_reference_in_float32() -> None:
    class ViaNumpy(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.from_numpy(np.sin(x.detach().numpy()))

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * torch.cos(x)

    draw = lambda rng: (rng.standard_normal((2, 3)), {})
    assert torch_ref.check_function(ViaNumpy, inputs=draw, max_examples=5, seed=0).examples == 5
    with pytest.raises(ValueError, match="give reference="):
        torch_ref.check_function(ViaNumpy, inputs=draw, dtype="float32", max_examples=5, seed=0)
    summary = torch_ref.check_function(
        ViaNumpy, inputs=draw, reference=torch.sin, dtype="float32", max_examples=5, seed=0
    )
    assert summary.examples == 5


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")
def test_a_reference_that_branches_on_its_values_in_python_is_refused_with_the_mend() -> None:
    """Its operations cannot be traced for the rounding model (and a graph traced on one case would
    keep the branch it took): a ValueError says so and what to write instead."""

    def forward(x):
        return 2 * x if float(x.sum()) > 0 else 3 * x

    def backward(dout, x):
        return {"x": (2 if float(x.sum()) > 0 else 3) * dout}

    with pytest.raises(ValueError, match=r"reads its tensors' values in Python .* torch\.where"):
        torch_ref.check_layer(backward, forward, shapes={"x": "N"}, dims={"N": 2}, max_examples=5, seed=0)
    # written with torch.where (array-API code), the same layer is checked
    from manual._xp import namespace

    def forward_where(x):
        xp = namespace(x)
        return xp.where(xp.sum(x) > 0, 2 * x, 3 * x)

    assert (
        torch_ref.check_layer(
            backward, forward_where, shapes={"x": "N"}, dims={"N": 2}, max_examples=20, seed=0
        ).examples
        == 20
    )
