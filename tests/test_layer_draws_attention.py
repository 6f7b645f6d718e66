"""The attention family's draws: every claimed regime reached, each label true of the drawn values
(re-derived here with torch's own softmax), every case valid for the twin; and the entry's
argument validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given

from manual.layers import LAYERS
from torch_ref.layers.builtins.attention import INFOS_HERE, REGIMES
from torch_ref.layers.case import LayerCase

INFO = INFOS_HERE[0]
ENTRY = LAYERS["scaled_dot_product_attention"]
DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]


def tensors(case: LayerCase, grad: bool = False) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v, requires_grad=grad and v.dtype != bool) for k, v in case.arrays.items()}


def labels(case: LayerCase) -> set[str]:
    """The regimes re-derived from the values: torch's softmax of the float64 scores, each mask's
    effect measured as the weight of the keys it drops (see ``regimes_of``)."""
    t = {k: v.double() if v.is_floating_point() else v for k, v in tensors(case).items()}
    q, k = t["x"], t["key"]
    N, H, T, E = q.shape
    S = k.shape[2]
    scale = case.constants["scale"] or E**-0.5
    pad = t["attn_mask"].expand(N, H, T, S)
    causal = torch.ones(T, S, dtype=torch.bool).tril() | (not case.constants["is_causal"])
    scores = scale * q @ k.transpose(-1, -2)
    L = torch.logsumexp(scores.masked_fill(~(pad & causal), -torch.inf), dim=-1, keepdim=True)
    weight = torch.exp(scores - L)
    P = torch.softmax(scores.masked_fill(~(pad & causal), -torch.inf), dim=-1).sort(dim=-1).values
    several_rows = (pad & causal).sum(-1) >= 2
    found = {r for r, holds in (("heads>1", H > 1), ("T=1", T == 1), ("S=1", S == 1)) if holds}
    if bool((pad & ~causal & (weight >= 1e-3)).any()):
        found.add("causal")
    if bool((~pad & causal & (weight >= 1e-3)).any()):
        found.add("padding mask")
    if {"causal", "padding mask"} <= found:
        found.add("causal+padding")
    if S > 1 and bool((several_rows & (P[..., -1] >= 1 - 1e-6)).any()):
        found.add("sharp softmax")
    if S > 1 and bool((several_rows & (P[..., -2] >= 0.1)).any()):
        found |= {"several keys"} | ({"T=S"} if T == S else set())
    if max(T, S) > 16:  # past one block of 16 of a tiled backward
        found.add("long sequence")
    return found


@pytest.mark.parametrize("dtype", DTYPES)
def test_draws_reach_every_regime_with_true_labels(dtype):
    seen: set[str] = set()

    @given(INFO.draw(dtype))
    def check(case: LayerCase) -> None:
        assert case.dtype == dtype and case.params["attn_mask"].dtype == bool
        assert set(case.regimes) == labels(case), case
        seen.update(case.regimes)

    check()
    assert set(INFO.regimes) == set(REGIMES) and seen == set(REGIMES), sorted(set(REGIMES) - seen)


@pytest.mark.parametrize("dtype", DTYPES)
def test_draws_are_valid_for_the_twin(dtype):
    @given(INFO.draw(dtype))
    def check(case: LayerCase) -> None:
        N, H, T, E = case.x.shape
        S, Ev = case.params["value"].shape[2:]
        assert case.params["key"].shape == (N, H, S, E) and 1 <= min(N, H, T, S, E, Ev)
        assert N <= 2 and H <= 3 and max(E, Ev) <= 6 and (max(T, S) <= 6 or (N == H == 1 and max(T, S) <= 24))
        assert not case.constants["is_causal"] or T == S
        mask = case.params["attn_mask"]
        assert mask.shape in {(N, 1, 1, S), (N, H, T, S)} and mask[..., 0].all()  # key 0 always kept
        assert np.abs(case.params["key"]).max() <= 2 and np.abs(case.params["value"]).max() <= 2
        t = tensors(case, grad=True)
        out = INFO.twin(t["x"], t["key"], t["value"], t["attn_mask"], **case.constants)
        out.backward(torch.ones_like(out))
        for name in ("x", "key", "value"):
            grad = t[name].grad
            assert grad is not None and torch.isfinite(grad).all(), (name, case)
        assert torch.isfinite(out).all() and out.dtype == t["x"].dtype

    check()


@given(INFO.draw(np.float64))
def test_entry_agrees_with_autograd_in_float64(case):
    t = tensors(case, grad=True)
    out = INFO.twin(t["x"], t["key"], t["value"], t["attn_mask"], **case.constants)
    dout = np.random.default_rng(0).uniform(-1, 1, out.shape)
    out.backward(torch.tensor(dout))
    arrays = dict(case.params)
    O = ENTRY.forward(case.x, **arrays, **case.constants)
    grads = ENTRY.backward(dout, case.x, **arrays, **case.constants)
    assert grads["attn_mask"] is None
    for name, mine, ref in [("out", O, out.detach())] + [(n, grads[n], t[n].grad) for n in ("x", "key", "value")]:
        ref = ref.numpy()
        np.testing.assert_allclose(mine, ref, rtol=0, atol=1e-10 * (1 + np.abs(ref).max()), err_msg=name)


def _call(**change):
    arrays = {"x": np.ones((1, 2, 3, 4)), "key": np.ones((1, 2, 3, 4)), "value": np.ones((1, 2, 3, 5))}
    arrays["attn_mask"] = np.ones((1, 1, 1, 3), dtype=bool)
    options = {k: change.pop(k) for k in ("is_causal", "scale") if k in change}
    ENTRY.forward(**{**arrays, **change}, **options)


@pytest.mark.parametrize(
    ("change", "error", "names"),
    [
        pytest.param({"x": np.ones((2, 3, 4))}, ValueError, "x must be 4-D", id="x-3d"),
        pytest.param({"key": np.ones((1, 2, 3, 5))}, ValueError, "key must have shape", id="key-E"),
        pytest.param({"value": np.ones((1, 2, 4, 5))}, ValueError, "value must have shape", id="value-S"),
        pytest.param({"value": np.ones((1, 2, 3, 5), dtype=np.float32)}, TypeError, "one real floating", id="dtypes"),
        pytest.param({"attn_mask": np.ones((1, 1, 1, 3))}, TypeError, "bool array", id="mask-float"),
        pytest.param({"attn_mask": np.ones((1, 2, 1, 3), dtype=bool)}, ValueError, "(1, 1, 1, 3) or", id="mask-shape"),
        pytest.param(
            {"attn_mask": np.zeros((1, 1, 1, 3), dtype=bool)}, ValueError, "at least one key", id="all-masked"
        ),
        pytest.param(
            {
                "key": np.ones((1, 2, 2, 4)),
                "value": np.ones((1, 2, 2, 5)),
                "attn_mask": np.ones((1, 1, 1, 2), dtype=bool),
                "is_causal": True,
            },
            ValueError,
            "T == S",
            id="causal-T!=S",
        ),
        pytest.param({"is_causal": 1}, TypeError, "is_causal must be a bool", id="causal-int"),
        pytest.param({"scale": float("nan")}, TypeError, "finite real", id="scale-nan"),
        pytest.param({"scale": "0.5"}, TypeError, "finite real", id="scale-str"),
    ],
)
def test_bad_calls_name_the_argument(change, error, names):
    with pytest.raises(error, match=names.replace("(", r"\(").replace(")", r"\)")):
        _call(**change)
