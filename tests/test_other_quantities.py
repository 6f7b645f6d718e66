"""Deltas, the input gradient and per-example gradients: manual's pass, the wrong ones people write
are caught on a minimal case, and a diagnosis is printed only where it was verified."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import manual
import torch_ref
from torch_ref.first_order.quantities import per_example_reference
from torch_ref.strategies import case_from


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("check", "fn"),
    [
        (torch_ref.check_deltas, manual.deltas),
        (torch_ref.check_input_gradient, manual.input_gradient),
        (torch_ref.check_per_example, manual.per_example_gradients),
    ],
    ids=["deltas", "input", "per-example"],
)
def test_manual_passes(check, fn, dtype):
    assert check(fn, max_examples=30, seed=4, dtype=dtype).examples > 30


def test_manual_per_example_on_torch_tensors():
    torch_ref.check_per_example(manual.per_example_gradients, arrays="torch", max_examples=10, seed=5)


def test_per_example_rows_sum_to_the_summed_gradient():
    spec = manual.Spec((3, 4, 2), ("tanh", "softmax"), "ce", bias=True, reduction="mean")
    case = case_from(spec, N=5, seed=2)
    rows = manual.per_example_gradients(spec, case.params, case.X, case.Y)
    batch = manual.gradients(spec, case.params, case.X, case.Y)
    for (_, r), (_, g) in zip(rows.arrays(), batch.arrays()):
        np.testing.assert_allclose(r.sum(axis=0) / 5, g, rtol=1e-12, atol=1e-15)


def test_per_example_reference_is_vmap_of_grad():
    """The reference against a loop of one-example autograd calls."""
    spec = manual.Spec((2, 3, 2), ("relu", "sigmoid"), "bce", bias=True, reduction="mean")
    case = case_from(spec, N=4, seed=1)
    ref = per_example_reference(spec, case.params, case.X, case.Y)
    summed = manual.Spec(spec.sizes, spec.activations, spec.loss, bias=True, reduction="sum")
    for n in range(4):
        one = torch_ref.gradients(summed, case.params, case.X[n : n + 1], case.Y[n : n + 1])
        for (_, r), (_, g) in zip(ref.arrays(), one.arrays()):
            np.testing.assert_allclose(r[n], g, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------------------------ wrong ones


def deltas_missing_derivative(spec, params, X, Y):
    """The hidden deltas without A'(I): delta^(l) = delta^(l+1) W^(l+1)T."""
    fwd = manual.forward(spec, params, X)
    d = [manual.output_delta(spec, fwd.I[-1], fwd.O[-1], Y)]
    for l in range(spec.depth - 2, -1, -1):
        d.insert(0, d[0] @ params.weights[l + 1].T)
    return d


def deltas_sign_flipped(spec, params, X, Y):
    return [-d for d in manual.deltas(spec, params, X, Y)]


def deltas_mean_twice(spec, params, X, Y):
    return [d / X.shape[0] if spec.reduction == "mean" else d for d in manual.deltas(spec, params, X, Y)]


def input_gradient_untransposed(spec, params, X, Y):
    d = manual.deltas(spec, params, X, Y)[0]
    W = params.weights[0]
    return d @ W.T if W.shape[0] != W.shape[1] else d @ W


def per_example_divided_by_n(spec, params, X, Y):
    """Per-example gradients of the mean objective: each row divided by N."""
    return manual.per_example_gradients(spec, params, X, Y).map(lambda a: a / X.shape[0])


def per_example_batch_in_every_row(spec, params, X, Y):
    g = manual.gradients(manual.Spec(spec.sizes, spec.activations, spec.loss, bias=spec.bias), params, X, Y)
    N = X.shape[0]
    return g.map(lambda a: np.broadcast_to(a, (N, *a.shape)).copy())


def per_example_outer_transposed(spec, params, X, Y):
    """delta_n u_n^T in (N, out, in), transposed back by reshape (a layout slip)."""
    g = manual.per_example_gradients(spec, params, X, Y)
    return manual.Params(
        [np.swapaxes(W, 1, 2).reshape(W.shape) for W in g.weights], None if g.biases is None else list(g.biases)
    )


WRONG = [
    (torch_ref.check_deltas, deltas_missing_derivative, dict(hidden_activations=("tanh", "sigmoid")), "A' is left out"),
    (torch_ref.check_deltas, deltas_sign_flipped, {}, "-1"),
    (torch_ref.check_deltas, deltas_mean_twice, dict(reductions=("mean",), batch=(2, 5)), "1/N"),
    (torch_ref.check_input_gradient, input_gradient_untransposed, {}, None),
    (torch_ref.check_per_example, per_example_divided_by_n, dict(batch=(2, 5)), "1/N"),
    (torch_ref.check_per_example, per_example_batch_in_every_row, dict(batch=(2, 5)), "gradient of the whole batch"),
    (torch_ref.check_per_example, per_example_outer_transposed, {}, None),
]


@pytest.mark.parametrize(("check", "fn", "options", "diagnosis"), WRONG, ids=[w[1].__name__ for w in WRONG])
def test_wrong_quantities_are_caught(check, fn, options, diagnosis):
    with pytest.raises(torch_ref.DerivationMismatch) as info:
        check(fn, max_examples=40, seed=0, **options)
    record = info.value.record
    assert record["verdict"] in ("mismatch", "shape")
    if diagnosis is None:
        assert record["diagnosis"] in ([], ["no known pattern fits"])
    else:
        (text,) = record["diagnosis"]
        assert diagnosis in text, text


def test_wrong_deltas_reproduce_lines_run():
    with pytest.raises(torch_ref.DerivationMismatch) as info:
        torch_ref.check_deltas(deltas_sign_flipped, max_examples=10, seed=0)
    code = "\n".join(info.value.record["reproduce"])
    namespace = {"deltas_sign_flipped": deltas_sign_flipped}
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, namespace)
    assert "delta_fn disagrees" in out.getvalue() or "MISMATCH" in out.getvalue()


@pytest.mark.parametrize(
    ("check", "result", "message"),
    [
        (torch_ref.check_deltas, lambda s, p, X, Y: 3, "expected a list of one"),
        (torch_ref.check_deltas, lambda s, p, X, Y: manual.deltas(s, p, X, Y)[:-1] or [X, X], "array(s) for a network"),
        (torch_ref.check_input_gradient, lambda s, p, X, Y: [X], "expected one (N, D) array"),
        (torch_ref.check_per_example, lambda s, p, X, Y: "x", "expected manual.Params"),
    ],
    ids=["deltas-int", "deltas-count", "input-list", "per-example-str"],
)
def test_wrong_returns_are_named(check, result, message):
    with pytest.raises(torch_ref.DerivationMismatch, match=re.escape(message)):
        check(result, max_examples=5, seed=0)


def test_tensor_results_compare_like_arrays():
    def on_tensors(spec, params, X, Y):
        assert isinstance(X, torch.Tensor)
        return manual.deltas(spec, params, X, Y)

    torch_ref.check_deltas(on_tensors, arrays="torch", max_examples=5, seed=0)
