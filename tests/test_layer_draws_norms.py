"""The normalization layers' draws: every regime an entry claims is reached, every label a case carries
holds on its values, and every case is valid for the torch twin (finite output and gradients)."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from manual.layers.norms import LAYERS_HERE
from torch_ref.layers.builtins.norms import INFOS_HERE

LAYERS = {entry.name: entry for entry in LAYERS_HERE}
INFOS = {info.name: info for info in INFOS_HERE}
DTYPES = [np.dtype(np.float64), np.dtype(np.float32)]
QUICK = settings(max_examples=200, deadline=None, derandomize=True, database=None)


def _spread(name, case):
    """The statistic each regime label speaks of, in float64: the variance each row (column for batch
    norm) is normalized with, running_var in eval; rms_norm's mean square under "mean square"."""
    x = case.x.astype(np.float64)
    if name == "batch_norm":
        used = x.var(axis=0) if case.constants["training"] else case.params["running_var"].astype(np.float64)
        return {"var": used}
    return {"var": x.var(axis=1), "mean square": np.mean(x * x, axis=1)}


# label -> what it claims, checked on the drawn values
CLAIMS = {
    "N=1": lambda name, case, s: case.x.shape[0] == 1,
    "N=2": lambda name, case, s: case.x.shape[0] == 2 and case.constants["training"] is True,
    "D=1": lambda name, case, s: case.x.shape[1] == 1,
    "D=2": lambda name, case, s: case.x.shape[1] == 2,
    "training": lambda name, case, s: case.constants["training"] is True,
    "eval": lambda name, case, s: case.constants["training"] is False,
    "tiny variance": lambda name, case, s: bool(np.all((s["var"] > 0) & (s["var"] <= 1e-4))),
    "large variance": lambda name, case, s: bool(np.all(s["var"] >= 1e2)),
    "tiny scale": lambda name, case, s: bool(np.all((s["mean square"] > 0) & (s["mean square"] <= 1e-5))),
    "zero row": lambda name, case, s: bool(np.any(np.all(case.x == 0, axis=1))),
    "ordinary": lambda name, case, s: (
        np.max(np.abs(case.x)) <= 4
        and bool(np.all(s["mean square" if name == "rms_norm" else "var"] >= 1e-2))
        and not set(case.regimes) - {"ordinary", "training", "eval"}
    ),
}


def test_every_entry_has_its_info_and_every_claimed_regime_is_known():
    assert sorted(LAYERS) == sorted(INFOS) == ["batch_norm", "layer_norm", "rms_norm"]
    for info in INFOS_HERE:
        assert set(info.regimes) <= set(CLAIMS), info.name
        assert {m.regime for m in info.mistakes} - {None} <= set(info.regimes), info.name
    assert sum(len(info.mistakes) for info in INFOS_HERE) >= 9


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    ("name", "regime"), [(info.name, regime) for info in INFOS_HERE for regime in info.regimes], ids=str
)
def test_draw_reaches_regime(name, regime, dtype):
    found = find(
        INFOS[name].draw(dtype),
        lambda case: regime in case.regimes,
        settings=settings(QUICK, phases=[Phase.generate], suppress_health_check=list(HealthCheck)),
    )
    assert CLAIMS[regime](name, found, _spread(name, found))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(INFOS))
def test_drawn_cases_are_labelled_truly_and_valid_for_the_twin(name, dtype):
    info, layer = INFOS[name], LAYERS[name]

    @QUICK
    @given(case=info.draw(dtype))
    def check(case):
        assert set(case.params) == set(layer.params) and set(case.constants) == set(layer.constants)
        assert all(a.dtype == dtype for a in case.arrays.values())
        assert all(a.shape == (case.x.shape[1],) for a in case.params.values())
        assert set(case.regimes) <= set(info.regimes), case.regimes
        spread = _spread(name, case)
        for regime in case.regimes:
            assert CLAIMS[regime](name, case, spread), (regime, case)
        tensors = {
            k: torch.tensor(v.astype(np.float64), requires_grad=k in layer.differentiated)
            for k, v in case.arrays.items()
        }
        out = info.twin(tensors["x"], **{k: tensors[k] for k in layer.params}, **case.constants)
        grads = torch.autograd.grad(out.sum(), [tensors[k] for k in layer.differentiated])
        assert torch.isfinite(out).all() and all(torch.isfinite(g).all() for g in grads)

    check()


@pytest.mark.parametrize("name", sorted(INFOS))
def test_mistakes_run_on_drawn_cases_and_return_the_backward_s_shapes(name):
    info, layer = INFOS[name], LAYERS[name]

    @QUICK
    @given(case=info.draw(DTYPES[0]), seed=st.integers(0, 2**32 - 1))
    def check(case, seed):
        dout = np.random.default_rng(seed).uniform(-1, 1, case.x.shape)
        right = layer.backward(dout, case.x, **case.params, **case.constants)
        for mistake in info.mistakes:
            wrong = mistake.backward(dout, case.x, **case.params, **case.constants)
            assert wrong.keys() == right.keys(), mistake.name
            for k in layer.differentiated:
                assert wrong[k].shape == right[k].shape and np.all(np.isfinite(wrong[k])), (mistake.name, k)

    check()
