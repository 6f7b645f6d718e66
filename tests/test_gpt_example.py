"""scripts/gpt_example.py at its quick sizes: the tiny GPT trained by manual's AdamW agrees with
torch.optim.AdamW within the oracle's trajectory bound, its loss falls, its losses equal torch's to
rounding; and an AdamW without bias correction is caught by the same judge and by check_training."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import torch_ref
from manual.network import Network
from torch_ref.networks.case import NetworkCase, network_case
from torch_ref.networks.training import judge_training

_PATH = Path(__file__).resolve().parents[1] / "scripts" / "gpt_example.py"
_spec = importlib.util.spec_from_file_location("gpt_example", _PATH)
assert _spec is not None and _spec.loader is not None
gpt_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpt_example)

STEPS, LR = 6, 0.05
# Loss agreement per step, relative: the same ~10^3 floating-point operations in a different order
# (manual's array-API code against torch's kernels), each rounding by at most the unit roundoff u
# (2^-53 for float64, 2^-24 for float32): a few hundred u stays below 1e-12 and 1e-5.
LOSS_RTOL = {"float64": 1e-12, "float32": 1e-5}


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch on one thread, restored after (the oracle's trace of many small ops runs faster so)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("gpt") / "quick.json"
    rc = gpt_example.main(["--quick", "--steps", str(STEPS), "--lr", str(LR), "--json", str(path)])
    figures = json.loads(path.read_text())
    figures["rc"] = rc
    return figures


def test_the_quick_run_agrees_with_torch_within_the_bound_in_both_dtypes(quick: dict[str, Any]) -> None:
    assert quick["rc"] == 0 and quick["passed"]
    for r in quick["results"]:
        assert r["verdict"] == "agree", r["comparison"]
        assert len(r["oracle_share"]) == STEPS and max(r["oracle_share"]) <= 1.0


def test_the_loss_falls_and_equals_torchs_per_step(quick: dict[str, Any]) -> None:
    for r in quick["results"]:
        manual, torch_ = np.array(r["manual_loss"]), np.array(r["torch_loss"])
        assert manual.shape == torch_.shape == (STEPS,)
        assert manual[-1] < 0.9 * manual[0], manual
        np.testing.assert_allclose(manual, torch_, rtol=LOSS_RTOL[r["dtype"]], err_msg=r["dtype"])


class AdamWithoutBiasCorrection:
    """AdamW (torch's defaults) whose step forgets the bias correction: P -= ξ m / (√v + ε), so the
    first step moves each entry by ξ (1 - β1) / √(1 - β2) ≈ 3.2 ξ instead of ξ."""

    def __init__(self, net: Network, params: dict[str, Any], *, lr: float) -> None:
        self.net, self.lr = net, lr
        self.params = {k: np.array(v, copy=True) for k, v in params.items()}
        self.m = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.params.items()}

    def step(self, X: Any, Y: Any) -> Any:
        value, grads, _ = self.net.backward(self.params, X, Y)
        for k, P in self.params.items():
            g = np.asarray(grads[k])
            P *= 1 - self.lr * 0.01
            self.m[k] = 0.9 * self.m[k] + 0.1 * g
            self.v[k] = 0.999 * self.v[k] + 0.001 * g * g
            P -= self.lr * self.m[k] / (np.sqrt(self.v[k]) + 1e-8)
        return value


def _quick_net() -> tuple[Network, tuple[int, int]]:
    s = gpt_example.SIZES["quick"]
    return gpt_example.gpt(s["V"], s["D"], s["H"]), (s["N"], s["T"])


@pytest.mark.usefixtures("one_thread")
def test_adamw_without_bias_correction_is_caught_at_step_one_on_the_toy_batch() -> None:
    net, (N, T) = _quick_net()
    X, Y = gpt_example.toy_language(net.parameters()["0.weight"][0], T, N, np.random.default_rng(0))
    params = dict(network_case(net, (N, T), 0, "float64").params)
    case = NetworkCase(net, params, X, Y, masks={}, shape=X.shape, seed=0)
    outcome = judge_training(
        AdamWithoutBiasCorrection,
        case,
        steps=2,
        lr=LR,
        optimizer=lambda p, lr: torch.optim.AdamW(p, lr),
        arrays="numpy",
        device="cpu",
        dtype="float64",
    )
    assert (outcome.kind, outcome.step) == ("mismatch", 1)
    assert outcome.checked.worst_share > 1e3


@pytest.mark.usefixtures("one_thread")
def test_adamw_without_bias_correction_is_caught_by_check_training() -> None:
    net, shape = _quick_net()
    with pytest.raises(torch_ref.DerivationMismatch, match=r"(?s)parts from.*no bias correction of m and v"):
        # networks= is dispatched by check_training's **options, which CheckOptions does not list yet
        torch_ref.check_training(
            AdamWithoutBiasCorrection,
            networks=network_case(net, shape, 0, "float64"),
            steps=2,
            lr=LR,
            optimizer=lambda p, lr: torch.optim.AdamW(p, lr),
            dtype="float64",
            max_examples=1,
        )


def test_bad_sizes_name_the_argument() -> None:
    with pytest.raises(ValueError, match="H must divide D = 6, got H = 4"):
        gpt_example.gpt(8, 6, 4)
    with pytest.raises(ValueError, match="V must be an int >= 1, got 0"):
        gpt_example.gpt(0, 4, 2)
