"""Every built-in layer against its torch twin, and every published mistake of the catalogue caught
and named: tests driven by the table (manual.LAYERS, torch_ref.layers.table), as OpInfo's are."""

from __future__ import annotations

import numpy as np
import pytest

import manual
import torch_ref
from torch_ref.layers.table import infos

LAYERS = sorted(manual.LAYERS)
MISTAKES = [(name, m) for name in LAYERS for m in infos()[name].mistakes]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", LAYERS)
def test_every_builtin_agrees_with_its_torch_twin(name: str, dtype: str) -> None:
    summary = torch_ref.check_layer(manual.LAYERS[name].backward, name, dtype=dtype, max_examples=25, seed=0)
    assert summary.examples >= 20
    assert summary.worst_share <= 1.0


@pytest.mark.parametrize("name", LAYERS)
def test_every_builtin_runs_on_torch_tensors_too(name: str) -> None:
    torch_ref.check_layer(manual.LAYERS[name].backward, name, arrays="torch", max_examples=10, seed=1)


def _regime(name: str, regime: str | None, dtype: str = "float64"):
    strategy = infos()[name].draw(np.dtype(dtype))
    return strategy if regime is None else strategy.filter(lambda c: regime in c.regimes)


def test_the_catalogue_holds_at_least_25_mistakes_each_with_a_formula() -> None:
    assert len(MISTAKES) >= 25
    assert all(m.formula for _, m in MISTAKES), [m.name for _, m in MISTAKES if not m.formula]
    assert len({(n, m.name) for n, m in MISTAKES}) == len(MISTAKES), "two mistakes of one layer share a name"


@pytest.mark.parametrize(("name", "mistake"), MISTAKES, ids=[f"{n}-{m.name}" for n, m in MISTAKES])
def test_every_published_mistake_is_caught_and_named(name: str, mistake) -> None:
    with pytest.raises(torch_ref.DerivationMismatch) as info:
        torch_ref.check_layer(mistake.backward, name, inputs=_regime(name, mistake.regime), max_examples=15, seed=0)
    report = str(info.value)
    assert f"Diagnosis: {mistake.name}" in report, report


@pytest.mark.parametrize(("name", "regime"), [("layer_norm", "D=1"), ("batch_norm", "N=2"), ("rms_norm", "zero row")])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_exact_zeros_are_no_false_alarm(name: str, regime: str, dtype: str) -> None:
    summary = torch_ref.check_layer(
        manual.LAYERS[name].backward, name, inputs=_regime(name, regime, dtype), dtype=dtype, max_examples=20, seed=0
    )
    assert summary.examples >= 15
    assert regime in summary.extra["regimes"]
