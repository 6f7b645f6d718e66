"""The draws of the dense, lookup and softmax families: every case is valid for its torch twin, claims
exactly the regimes its values meet (each re-verified here by a predicate of its own, torch's softmax
for the probabilities), and every regime a family lists is reached.

The tests enumerate the families' ``INFOS_HERE``, so an entry added there is covered without editing
this file; a regime added without a predicate here is an error naming it.
"""

from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings

from manual.layers import LAYERS
from torch_ref.layers.builtins import dense, lookup, softmax
from torch_ref.layers.case import LayerCase

INFOS = [pytest.param(info, id=info.name) for family in (dense, lookup, softmax) for info in family.INFOS_HERE]
DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]
COVERAGE_EXAMPLES = 300  # enough draws for each regime, derandomized: the same draws every run


def _class_axis(case: LayerCase) -> int:
    return case.constants.get("dim", -1) % case.x.ndim


def _batch(case: LayerCase) -> int:
    if "dim" in case.constants:  # softmax, log_softmax: the axis not normalised over
        return case.x.shape[1 - _class_axis(case)]
    return case.x.shape[0]


def _probabilities(case: LayerCase) -> torch.Tensor:
    return torch.softmax(torch.from_numpy(case.x).double(), dim=_class_axis(case))


def _pre_activation(case: LayerCase) -> np.ndarray:
    w, b = (case.params[k].astype(np.float64) for k in ("weight", "bias"))
    return case.x.astype(np.float64) @ w + b


def _live_gradient(case: LayerCase) -> bool:
    y = torch.nn.functional.one_hot(torch.from_numpy(case.params["target"]), case.x.shape[1]).double()
    return bool((_probabilities(case) - y).abs().max() >= softmax.LIVE)


def _zeros_kept_and_dropped(case: LayerCase) -> bool:
    zero, mask = case.x == 0, case.params["mask"]
    return bool((zero & mask).any() and (zero & ~mask).any())


HOLDS: dict[str, Callable[[LayerCase], bool]] = {
    "N=1": lambda c: _batch(c) == 1,
    "N>=2": lambda c: _batch(c) >= 2,
    "square": lambda c: c.params["weight"].shape[0] == c.params["weight"].shape[1] >= 2,
    "D=1": lambda c: c.x.shape[1] == 1,
    "|I|>=1": lambda c: bool(np.abs(_pre_activation(c)).max() >= 1),
    "repeated indices": lambda c: np.unique(c.x).size < c.x.size,
    "all dropped": lambda c: not c.params["mask"].any(),
    "none dropped": lambda c: bool(c.params["mask"].all()),
    "some dropped": lambda c: not c.params["mask"].all(),
    "p=0": lambda c: c.constants["p"] == 0,
    "p>0, some kept": lambda c: c.constants["p"] > 0 and bool(c.params["mask"].any()),
    "zero inputs": _zeros_kept_and_dropped,
    "C=1": lambda c: c.x.shape[_class_axis(c)] == 1,
    "large logits": lambda c: bool(np.abs(c.x).max() >= softmax.LARGE_FROM),
    "two live classes": lambda c: bool(((_probabilities(c) >= softmax.LIVE).sum(dim=_class_axis(c)) >= 2).any()),
    "mean, N>=2, live gradient": lambda c: c.constants["reduction"] == "mean" and _batch(c) >= 2 and _live_gradient(c),
}


def _check_case(info, dtype, case: LayerCase) -> None:
    entry = LAYERS[info.name]
    assert set(case.arrays) == set(entry.arrays), f"{info.name}: arrays {sorted(case.arrays)}"
    assert set(case.constants) <= set(entry.constants), f"{info.name}: constants {sorted(case.constants)}"
    for name, a in case.arrays.items():
        kind = a.dtype.kind
        assert kind in "fib", f"{info.name}: {name} has dtype {a.dtype}"
        assert kind != "f" or a.dtype == dtype, f"{info.name}: {name} is {a.dtype}, drawn {np.dtype(dtype)}"
        assert kind != "i" or a.dtype == np.int64, f"{info.name}: indices {name} are {a.dtype}, not int64"
        assert max(a.shape, default=1) <= 8 and a.size <= 400, f"{info.name}: {name} of shape {a.shape}"
        assert kind != "f" or np.isfinite(a).all()
    claimed = set(case.regimes)
    assert claimed <= set(info.regimes), f"{info.name}: claims {sorted(claimed - set(info.regimes))}"
    holds = {r for r in info.regimes if HOLDS[r](case)}
    assert claimed == holds, f"{info.name} {case!r}: claims {sorted(claimed)}, its values meet {sorted(holds)}"
    out = np.asarray(entry.forward(**case.arrays, **case.constants))
    twin_out = info.twin(**{k: torch.from_numpy(v) for k, v in case.arrays.items()}, **case.constants)
    assert tuple(twin_out.shape) == out.shape, f"{info.name}: twin {tuple(twin_out.shape)}, manual {out.shape}"
    assert twin_out.dtype == torch.from_numpy(np.zeros(0, case.dtype)).dtype, (
        f"{info.name}: twin gives {twin_out.dtype}"
    )
    assert torch.isfinite(twin_out).all(), f"{info.name}: twin not finite on {case!r}"
    assert np.isfinite(out).all(), f"{info.name}: manual forward not finite on {case!r}"


def test_every_regime_has_a_predicate():
    for family in (dense, lookup, softmax):
        for info in family.INFOS_HERE:
            assert not set(info.regimes) - set(HOLDS), f"{info.name}: no predicate for {set(info.regimes) - set(HOLDS)}"
            for m in info.mistakes:
                assert m.regime is None or m.regime in info.regimes, f"{info.name}: {m.name} needs {m.regime!r}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("info", INFOS)
def test_draws_are_valid_and_claim_what_they_meet(info, dtype):
    @given(info.draw(dtype))
    def check(case):
        _check_case(info, dtype, case)

    check()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("info", INFOS)
def test_draws_reach_every_regime(info, dtype):
    seen: set[str] = set()

    @settings(max_examples=COVERAGE_EXAMPLES, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(info.draw(dtype))
    def collect(case):
        seen.update(case.regimes)

    collect()
    assert set(info.regimes) <= seen, f"{info.name} ({np.dtype(dtype)}): never drew {sorted(set(info.regimes) - seen)}"
