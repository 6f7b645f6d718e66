"""The registry: every entry checked against torch's own function, on its own and inside random
networks, in float32 and float64, at kinks and saturation. The tests enumerate ``manual.ACTIVATIONS``
and ``manual.LOSSES``, so an entry added there is covered without editing this file.

Allowances follow the tolerance model's evaluation model (:mod:`torch_ref.numerics.tolerance`): a correct
activation is accurate to :math:`\\varepsilon(|O| + |I| \\max(|A'|, 1))`, its derivative to
:math:`\\varepsilon(|A''||I| + T(I))` with T the size of the formula's terms (the entry's
``derivative_terms``), a loss's gradient to :math:`\\varepsilon G` (backward
stability, :class:`torch_ref.twin.loss_terms.AutogradTerms`); two correct evaluations, each a few
operations (under 8 roundings each), differ by at most 16 of those units.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import manual
import torch_ref
from manual import Activation, Spec
from torch_ref.strategies import case_from, data_for
from torch_ref.twin.reference import _first_second
from torch_ref.twins import activation_twin, loss_twin

ELEMENTWISE = [pytest.param(e, id=name) for name, e in manual.ACTIVATIONS.items() if e.elementwise]
LOSSES = [pytest.param(e, id=name) for name, e in manual.LOSSES.items()]
DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]
C = 16  # two correct evaluations, each within 8 roundings of the terms' scale


def _edges(entry: Activation, dtype) -> np.ndarray:
    """Kinks exactly, just beside them, and saturation: large |I| up to what the dtype's exp keeps."""
    big = 80.0 if dtype == np.float32 else 700.0
    points = [0.0, 1.0, -1.0, 5.0, -5.0, 20.0, -20.0, 30.0, -30.0, big, -big]
    for k in entry.kinks:
        points += [k, float(np.nextafter(dtype(k), dtype(np.inf))), float(np.nextafter(dtype(k), dtype(-np.inf)))]
    return np.array(points, dtype=dtype)


def _torch_reference(entry: Activation, I: np.ndarray):
    """torch's function and its autograd derivative in I's dtype, and A' and A'' in float64."""
    f = activation_twin(entry).function
    It = torch.from_numpy(I)
    with torch.no_grad():
        O = f(It).numpy()
    dA, _ = _first_second(f, It)
    dA64, d2A64 = _first_second(f, It.to(torch.float64))
    return O, dA.numpy(), np.abs(dA64.numpy()), np.abs(d2A64.numpy())


def _assert_entry_matches_torch(entry: Activation, I: np.ndarray) -> None:
    eps = float(np.finfo(I.dtype).eps)
    O_t, dA_t, dA64, d2A64 = _torch_reference(entry, I)
    scale_O = np.abs(O_t) + np.abs(I.astype(np.float64)) * np.maximum(dA64, 1.0)
    terms = np.maximum(dA64, 1.0) * (1 + np.abs(I.astype(np.float64)))  # the model's default
    if entry.derivative_terms is not None:
        terms = np.abs(np.asarray(entry.derivative_terms(I.astype(np.float64), np), dtype=np.float64))
    scale_dA = d2A64 * np.abs(I.astype(np.float64)) + np.maximum(terms, dA64)
    for name, xp, arr in (("numpy", np, I), ("torch", None, torch.from_numpy(I))):
        from array_api_compat import array_namespace

        xp = array_namespace(arr)
        with np.errstate(all="ignore"):
            O = np.asarray(entry.forward(arr, xp))
            dA = np.asarray(entry.derivative(arr, entry.forward(arr, xp), xp))
        assert O.dtype == I.dtype and dA.dtype == I.dtype, (name, O.dtype, dA.dtype)
        np.testing.assert_array_less(np.abs(O - O_t), C * eps * scale_O + 1e-300, err_msg=f"{entry.name} A on {name}")
        np.testing.assert_array_less(
            np.abs(dA - dA_t), C * eps * scale_dA + 1e-300, err_msg=f"{entry.name} A' on {name}"
        )
    for k in entry.kinks:  # exactly on a kink: torch's subgradient, bit for bit
        at = I == k
        if at.any():
            assert np.array_equal(np.asarray(entry.derivative(I, entry.forward(I, np), np))[at], dA_t[at]), entry.name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entry", ELEMENTWISE)
def test_activation_agrees_with_torchs_function_at_kinks_and_saturation(entry, dtype):
    _assert_entry_matches_torch(entry, _edges(entry, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entry", ELEMENTWISE)
@settings(max_examples=30)
@given(values=st.lists(st.floats(-40, 40), min_size=1, max_size=40))
def test_activation_agrees_with_torchs_function(entry, dtype, values):
    _assert_entry_matches_torch(entry, np.array(values, dtype=dtype).reshape(1, -1))


def _outputs_for(loss, J: int, rng: np.random.Generator, dtype) -> np.ndarray:
    """Predictions y* from an output activation the loss accepts (first in registry order)."""
    out = next(e for e in manual.ACTIVATIONS.values() if loss.accepts(e) and (e.elementwise or J >= 2))
    I = rng.normal(scale=3.0, size=(6, J))
    return np.asarray(out.forward(I, np)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", LOSSES)
@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), J=st.integers(1, 5))
def test_loss_value_and_gradient_agree_with_torchs_function(loss, dtype, seed, J):
    rng = np.random.default_rng(seed)
    O = _outputs_for(loss, J, rng, dtype)
    spec = Spec((1, J), (next(e for e in manual.ACTIVATIONS.values() if loss.accepts(e)),), loss)
    _, Y = data_for(spec, O.shape[0], rng, dtype=dtype)
    twin = loss_twin(loss)
    Ot, Yt = torch.from_numpy(O).requires_grad_(True), torch.from_numpy(Y)
    value_t = twin.per_example(Ot, Yt)
    (grad_t,) = torch.autograd.grad(value_t.sum(), Ot)
    model = torch_ref.twin.loss_terms.AutogradTerms(twin.per_example)
    O64, Y64 = O.astype(np.float64), Y.astype(np.float64)
    _, G, _ = model.gradient(O64, Y64, np.zeros_like(O64))
    magnitude = model.objective("", None, O64, Y64, None, np.zeros_like(O64))
    eps = float(np.finfo(dtype).eps)
    with np.errstate(all="ignore"):
        value, grad = loss.value(O, Y, np), loss.gradient(O, Y, np)
    ok = np.isfinite(G).all(axis=-1)  # ce at a y* that rounded to 0: no finite gradient to compare
    np.testing.assert_array_less(np.abs(value - value_t.detach().numpy())[ok], C * eps * magnitude[ok] + 1e-300)
    np.testing.assert_array_less(np.abs(grad - grad_t.numpy())[ok], C * eps * G[ok] + 1e-300)


# ------------------------------------------------------------------------------------------ networks


def _pairs(entry):
    """Options that draw ``entry`` as a hidden layer and, where a loss accepts it, as the output."""
    losses = tuple(name for name, loss in manual.LOSSES.items() if loss.accepts(entry)) or ("squared",)
    return dict(activations=(entry.name, "identity"), losses=losses)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("entry", [pytest.param(e, id=n) for n, e in manual.ACTIVATIONS.items()])
def test_every_activation_agrees_on_random_networks(entry, dtype):
    if entry.elementwise:
        options = _pairs(entry)
    else:  # softmax: output only, under every loss that takes it
        options = dict(
            activations=(entry.name, "tanh"),
            losses=tuple(n for n, loss in manual.LOSSES.items() if loss.accepts(entry)),
        )
    summary = torch_ref.check_derivation(
        manual.gradients, dtype=dtype, seed=0, max_examples=15, strict=True, depths=(1, 3), **options
    )
    assert entry.name in summary.activations
    if 0.0 in entry.kinks:
        assert summary.kink  # an input exactly on the kink was drawn, in some layer


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("entry", ELEMENTWISE)
def test_every_activation_agrees_where_it_saturates(entry, dtype):
    """Weights 16 times the usual: |I| in the tens, where softplus is linear, silu and gelu vanish."""
    losses = [n for n, loss in manual.LOSSES.items() if loss.accepts(entry)] or ["squared"]
    for seed, loss in enumerate(losses * 2):
        spec = Spec((4, 6, 3), (entry, entry if manual.LOSSES[loss].accepts(entry) else "sigmoid"), loss, bias=True)
        case = case_from(spec, N=6, seed=seed, gain=16.0, dtype=dtype)
        assert np.abs(torch_ref.reference(spec, case.params, case.X, case.Y).I[0]).max() > 10
        verdict = torch_ref.check_case(manual.gradients, case)
        assert verdict.kind == "agree", verdict


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_agrees_on_random_networks(loss, dtype):
    summary = torch_ref.check_derivation(
        manual.gradients, losses=(loss.name,), dtype=dtype, seed=0, max_examples=15, strict=True
    )
    assert {pair[1] for pair in summary.pairs} == {loss.name}


def test_every_registered_entry_has_a_torch_twin():
    for entry in manual.ACTIVATIONS.values():
        assert activation_twin(entry).entry is entry
    for entry in manual.LOSSES.values():
        assert loss_twin(entry).entry is entry


@pytest.mark.parametrize("k", [40652, 44540, 1859, 17483])
def test_campaign_cases_at_the_edges_of_the_evaluation_model(k):
    """Cases of the false-alarm campaign (seed 0, saturated weights) that earlier evaluation models
    called mismatches. 40652, 44540 (float64): GELU's derivative adds terms of order I^3 that cancel
    near I = -6, where numpy's and torch's tanh give A' values a few units of those terms apart
    (shares 1.01 and 1.11 with a model scaled by max(|A'|, 1)). 1859, 17483 (float32): silu' =
    s (1 + I (1 - s)) where s underflows (I near -89 to -96) and the factor 1 + |I| multiplies the
    underflow (shares 6.9 and 8.4 with an underflow term not scaled by it)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from false_alarm_campaign import draw_case

    case, _ = draw_case(0, k)
    assert "gelu" in case.spec.activations or "silu" in case.spec.activations
    for check in (torch_ref.crosscheck_deltas, torch_ref.crosscheck_gradients):
        result = check(case.spec, case.params, case.X, case.Y)
        assert result.ok, result
