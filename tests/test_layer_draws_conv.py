"""The draws of conv2d, max_pool2d and avg_pool2d: every case is valid for torch's twin, every
claimed regime is reached, and each label is recomputed here, by plain loops over the windows, from
the case's values; torch's tie convention for max pooling is pinned on tied values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given

from manual.layers import LAYERS
from manual.layers.conv import conv2d
from manual.layers.pooling import avg_pool2d, max_pool2d, max_pool2d_backward
from torch_ref.layers.builtins.conv import INFOS_HERE as CONV_INFOS
from torch_ref.layers.builtins.pooling import INFOS_HERE as POOL_INFOS

INFOS = {info.name: info for info in (*CONV_INFOS, *POOL_INFOS)}
DTYPES = (np.float32, np.float64)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _windows(case):
    """Per window, in row-major order: its elements' padded coordinates, row-major within the window."""
    c = case.constants
    k = _pair(c["kernel_size"]) if "kernel_size" in c else tuple(case.params["weight"].shape[2:])
    s = k if c.get("stride", 1) is None else _pair(c.get("stride", 1))
    p, d = _pair(c.get("padding", 0)), _pair(c.get("dilation", 1))
    size = case.x.shape[2:]
    out = [(size[a] + 2 * p[a] - d[a] * (k[a] - 1) - 1) // s[a] + 1 for a in (0, 1)]
    for h, w in itertools.product(range(out[0]), range(out[1])):
        yield [(s[0] * h + d[0] * i, s[1] * w + d[1] * j) for i in range(k[0]) for j in range(k[1])]


def _twin_out(info, case):
    t = {k: torch.from_numpy(v.astype(np.float64)) for k, v in case.arrays.items()}
    return info.twin(t["x"], **{k: t[k] for k in LAYERS[info.name].params}, **case.constants)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", sorted(INFOS))
def test_draws_are_valid_for_the_twin_and_reach_every_regime(name, dtype):
    info, entry = INFOS[name], LAYERS[name]
    reached = set()

    @given(info.draw(dtype))
    def check(case):
        assert case.x.dtype == np.dtype(dtype) and case.dtype == np.dtype(dtype)
        assert set(case.regimes) <= set(info.regimes), case
        assert case.x.size <= 400 and max(case.x.shape) <= 8, case
        out = _twin_out(info, case)
        assert torch.isfinite(out).all(), case
        mine = entry.forward(case.x, **case.params, **case.constants)
        assert mine.shape == tuple(out.shape), case
        reached.update(case.regimes)

    check()
    assert reached == set(info.regimes), f"{name}: never reached {sorted(set(info.regimes) - reached)}"


@given(INFOS["max_pool2d"].draw(np.float64))
def test_max_pool_value_regimes_hold_on_the_values(case):
    p, (H, W) = _pair(case.constants["padding"]), case.x.shape[2:]
    xt = np.pad(case.x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=-np.inf)
    routed = np.zeros(xt.shape, dtype=np.int64)
    held = np.zeros(xt.shape[2:], dtype=np.int64)
    ties = False
    for where in _windows(case):
        rows, cols = np.array(where).T
        held[rows, cols] += 1
        values = xt[:, :, rows, cols]  # (N, C, kh kw)
        ties |= bool(((values == values.max(axis=2, keepdims=True)).sum(axis=2) > 1).any())
        first = values.argmax(axis=2)  # the first maximum in row-major order
        for n, c in np.ndindex(first.shape):
            routed[n, c, rows[first[n, c]], cols[first[n, c]]] += 1
    truth = {
        "ties": ties,
        "shared maximum": bool((routed > 1).any()),
        "overlapping windows": bool((held[p[0] : p[0] + H, p[1] : p[1] + W] > 1).any()),
    }
    assert {r for r, holds in truth.items() if holds} == set(case.regimes) & set(truth), case


@given(INFOS["avg_pool2d"].draw(np.float64))
def test_avg_pool_divisor_regimes_hold_on_the_geometry(case):
    p, (H, W) = _pair(case.constants["padding"]), case.x.shape[2:]
    include = case.constants["count_include_pad"]
    divisors = [
        len(where) if include else sum(p[0] <= a < p[0] + H and p[1] <= b < p[1] + W for a, b in where)
        for where in _windows(case)
    ]
    truth = {"kernel>1": max(divisors) > 1, "padding not counted": not include and any(p)}
    assert {r for r, holds in truth.items() if holds} == set(case.regimes) & set(truth), case


@given(INFOS["conv2d"].draw(np.float64))
def test_conv_regimes_hold_and_reach_the_input(case):
    c, weight = case.constants, case.params["weight"]
    k, s, p, d = weight.shape[2:], _pair(c["stride"]), _pair(c["padding"]), _pair(c["dilation"])
    regimes = set(case.regimes)
    assert ("1x1" in regimes) == (k == (1, 1))
    assert ("batch>1" in regimes) == (case.x.shape[0] > 1)
    assert "groups>1" not in regimes or c["groups"] > 1
    assert "stride>1" not in regimes or max(s) > 1
    assert "stride>1 with padding" not in regimes or any(s[a] > 1 and p[a] > 0 for a in (0, 1))
    assert "padding" not in regimes or max(p) > 0
    assert "dilation>1" not in regimes or any(d[a] > 1 and k[a] > 1 for a in (0, 1))
    if regimes - {"1x1", "batch>1"}:  # the labelled feature shows in δ_x: some window reads the input
        t = {k: torch.from_numpy(v).requires_grad_() for k, v in case.arrays.items()}
        out = INFOS["conv2d"].twin(t["x"], t["weight"], t["bias"], **c)
        out.backward(torch.from_numpy(np.random.default_rng(0).uniform(0.5, 1, out.shape)))
        assert t["x"].grad.abs().max() > 0, case


TIED = np.array([[1.0, 3.0, 3.0], [3.0, 0.0, 3.0], [3.0, 1.0, 2.0]])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(
    "constants, first",
    [
        # k=2, s=1: windows 1 and 2 (top row) tie at (0,1) and (0,2)/(1,2); each δ goes to its first maximum
        (dict(kernel_size=2, stride=1), [[0, 2, 0], [1, 0, 1], [0, 0, 0]]),
        (dict(kernel_size=3, stride=1, padding=1), None),
        (dict(kernel_size=2, stride=1, dilation=2), [[0, 0, 1], [0, 0, 0], [0, 0, 0]]),
        (dict(kernel_size=(1, 3), stride=(2, 1)), None),
    ],
)
def test_max_pool_tie_goes_to_the_first_maximum_as_torch(dtype, constants, first):
    x = TIED[None, None].astype(dtype)
    t = torch.from_numpy(x).requires_grad_()
    out = torch.nn.functional.max_pool2d(t, **constants)
    out.backward(torch.ones_like(out))
    mine = max_pool2d_backward(np.ones(out.shape, dtype=dtype), x, **constants)["x"]
    np.testing.assert_array_equal(mine, t.grad.numpy())
    if first is not None:
        np.testing.assert_array_equal(mine[0, 0], first)


X = np.zeros((1, 2, 4, 4))
BAD_CALLS = [
    pytest.param(lambda: conv2d(X[0], np.zeros((1, 2, 1, 1)), None), ValueError, "x must have shape", id="conv-x-3d"),
    pytest.param(
        lambda: conv2d(X, np.zeros((2, 2, 1, 1)), None, groups=2), ValueError, "C // groups", id="conv-groups"
    ),
    pytest.param(lambda: conv2d(X, np.zeros((1, 2, 1, 1)), np.zeros(2)), ValueError, "bias must have", id="conv-bias"),
    pytest.param(lambda: conv2d(X, np.zeros((1, 2, 1, 1)), None, stride=0), ValueError, "stride", id="conv-stride-0"),
    pytest.param(lambda: conv2d(X, np.zeros((1, 2, 5, 1)), None), ValueError, "no whole window", id="conv-too-small"),
    pytest.param(lambda: max_pool2d(X, kernel_size=2.0), TypeError, "kernel_size", id="max-float-kernel"),
    pytest.param(lambda: max_pool2d(X, kernel_size=(2, 2, 2)), ValueError, "kernel_size", id="max-triple"),
    pytest.param(lambda: max_pool2d(X, kernel_size=2, padding=2), ValueError, "kernel_size // 2", id="max-pad"),
    pytest.param(
        lambda: avg_pool2d(X, kernel_size=2, count_include_pad=1), TypeError, "count_include_pad", id="avg-flag"
    ),
]


@pytest.mark.parametrize("call, error, words", BAD_CALLS)
def test_bad_arguments_name_themselves(call, error, words):
    with pytest.raises(error, match=words):
        call()
