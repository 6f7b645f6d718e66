"""The benchmark's bookkeeping (FLOP count, JSON shape) and that its implementations take the same
step; speed itself is measured by the benchmark, never asserted here."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from impls import BUILDERS, IMPLS, _objective
from peak import step_flops

import manual
from torch_ref.strategies import data_for, params_for


def test_step_flops_counts_the_matrix_products():
    spec = manual.Spec((3, 4, 2), ("tanh", "sigmoid"), "bce")
    # layer 1: forward 2*N*3*4 + grad 2*N*3*4 + update 2*3*4; layer 2 adds delta W^T 2*N*4*2
    N = 5
    assert step_flops(spec, N) == (2 * N * 12 * 2 + 2 * 12) + (2 * N * 8 * 3 + 2 * 8)


@pytest.mark.parametrize(
    "spec",
    [
        manual.Spec((3, 4, 2), ("tanh", "softmax"), "ce", bias=True, reduction="mean"),
        manual.Spec((3, 4, 2), ("relu", "tanh"), "squared", bias=True),
        manual.Spec((2, 2, 1), ("sigmoid", "sigmoid"), "bce", bias=True, reduction="mean"),
    ],
    ids=str,
)
def test_functional_objective_is_the_reference_objective(spec):
    import torch_ref
    from torch_ref import assert_agree, compare

    rng = np.random.default_rng(0)
    params = params_for(spec, rng)
    X, Y = data_for(spec, 4, rng)
    weights = [torch.from_numpy(W.T.copy()) for W in params.weights]
    biases = [torch.from_numpy(b) for b in params.biases]
    ours = _objective(spec, weights, biases, torch.from_numpy(X), torch.from_numpy(Y)).item()
    tol = torch_ref.tolerance(spec, params, X, Y)
    assert_agree(
        compare(
            ["objective"], [np.array(ours)], [np.array(float(torch_ref.objective(spec, params, X, Y)))], [tol.objective]
        )
    )


@pytest.mark.parametrize(
    "spec",
    [
        manual.Spec((3, 4, 2), ("relu", "softmax"), "ce", bias=True, reduction="mean"),
        manual.Spec((3, 5, 2), ("tanh", "sigmoid"), "bce", bias=True),
        manual.Spec((2, 3, 3), ("sigmoid", "identity"), "squared"),
    ],
    ids=str,
)
@pytest.mark.parametrize("impl", IMPLS)
def test_every_implementation_takes_the_sgd_step(impl, spec):
    """The timed step is the step: its weights after one step agree with torch.optim.SGD's."""
    from torch_ref import assert_agree
    from torch_ref.crosscheck import crosscheck_update

    rng = np.random.default_rng(0)
    params = params_for(spec, rng)
    X, Y = data_for(spec, 4, rng)
    step = BUILDERS[impl](spec, params, X, Y, 0.1, "cpu")
    step()
    assert_agree(crosscheck_update(spec, params, X, Y, 0.1, updated=step.params()))


def test_quick_run_writes_the_documented_json(tmp_path, monkeypatch):
    import train_step

    monkeypatch.setattr(train_step, "CASES", train_step.CASES[:1])
    monkeypatch.setattr(train_step, "PAUSE_S", 0.0)
    out = tmp_path / "bench.json"
    assert train_step.main(["--quick", "--dtypes", "float64", "--no-oracle", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert {"records", "gemm_peak_gflops"} <= set(data)
    assert {r["impl"] for r in data["records"]} == set(IMPLS)
    assert all({"case", "dtype", "device", "impl", "median_s", "fraction_of_peak"} <= set(r) for r in data["records"])
    assert data["records"][0]["case"] == "2-2-1/b1"


def test_progress_is_plain_lines_in_a_log(capsys):
    """Redirected (pytest captures stderr, as a file would): one plain line per item, no carriage returns."""
    import train_step

    for k in range(1, 4):
        train_step.progress(k, 3, f"item {k}")
    err = capsys.readouterr().err
    assert "\r" not in err and err.splitlines() == ["[1/3] item 1", "[2/3] item 2", "[3/3] item 3"]
