"""The property and oracle checks on an accelerator: every kind of check, manual's own functions as
the derivation, torch tensors on the device, both dtypes. Skipped where torch sees no CUDA device
(this project never needs one to build or pass); ``benchmarks/gpu.sh`` runs them where there is,
and ``benchmarks/gpu.sh rehearse`` on the CPU (``BACKPROP_DEVICE=cpu``). On a machine without a
device the suite rehearses the device check script on the CPU.
The number of drawn networks per check is ``BACKPROP_DEVICE_EXAMPLES`` (default 100)."""

import os

import pytest
import torch

import manual
from torch_ref import (
    DerivationMismatch,
    check_deltas,
    check_derivation,
    check_input_gradient,
    check_per_example,
    check_training,
    check_update,
)

# the device under test: CUDA unless BACKPROP_DEVICE says otherwise (benchmarks/gpu.sh rehearse runs
# these tests on the CPU with BACKPROP_DEVICE=cpu, so that a broken test is found before a GPU is lent)
DEVICE = os.environ.get("BACKPROP_DEVICE", "cuda")
on_cuda = pytest.mark.skipif(
    DEVICE.startswith("cuda") and not torch.cuda.is_available(), reason="no CUDA device visible to torch"
)
EXAMPLES = int(os.environ.get("BACKPROP_DEVICE_EXAMPLES", "100"))
DTYPES = ("float64", "float32")


def _on_device(**extra):
    return dict(arrays="torch", device=DEVICE, max_examples=EXAMPLES, seed=0, **extra)


@on_cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "check, fn",
    [
        (check_derivation, manual.gradients),
        (check_deltas, manual.deltas),
        (check_input_gradient, manual.input_gradient),
        (check_per_example, manual.per_example_gradients),
    ],
    ids=["gradients", "deltas", "input", "per-example"],
)
def test_manual_passes_on_the_device(check, fn, dtype):
    assert check(fn, **_on_device(dtype=dtype)).examples >= EXAMPLES


@on_cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_update_and_training_pass_on_the_device(dtype):
    assert check_update(manual.sgd_step, **_on_device(dtype=dtype)).examples >= EXAMPLES
    make = lambda spec, params, lr: manual.Trainer(spec, params, lr=lr, momentum=0.9, nesterov=True)
    check_training(
        make,
        optimizer=lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9, nesterov=True),
        steps=3,
        lr=0.1,
        **_on_device(dtype=dtype),
    )


@on_cuda
def test_a_wrong_derivation_is_caught_on_the_device():
    doubled = lambda spec, params, X, Y: manual.gradients(spec, params, X, Y).map(lambda a: 2 * a)
    with pytest.raises(DerivationMismatch, match="factor 2"):
        check_derivation(doubled, **_on_device())


@pytest.mark.skipif(torch.cuda.is_available(), reason="benchmarks/gpu.sh runs it on the device")
def test_device_check_script_runs_on_the_cpu(capsys):
    """scripts/device_check.py, which the GPU run starts first, rehearsed on the CPU so that it cannot
    rot unnoticed between the sessions that have a device (its parse of the Reproduce lines did)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "device_check.py"
    spec = importlib.util.spec_from_file_location("device_check", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--device", "cpu", "--examples", "1"]) == 0, capsys.readouterr().out


def _to_device(a):
    import numpy as np

    return torch.from_numpy(np.ascontiguousarray(a)).to(DEVICE)


def _hvp_on_device(spec, params, X, Y, V):
    """manual.hvp on device tensors, handed back to the oracle as NumPy."""
    out = manual.hvp(spec, params.map(_to_device), _to_device(X), _to_device(Y), V.map(_to_device))
    return out.map(lambda a: a.cpu().numpy())


def _gnvp_on_device(spec, params, X, Y, V):
    out = manual.gnvp(spec, params.map(_to_device), _to_device(X), _to_device(Y), V.map(_to_device))
    return out.map(lambda a: a.cpu().numpy())


@on_cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_second_order_products_pass_on_the_device(dtype):
    from torch_ref import check_gnvp, check_hvp

    assert check_hvp(_hvp_on_device, max_examples=EXAMPLES, seed=0, dtype=dtype).examples == EXAMPLES
    assert check_gnvp(_gnvp_on_device, max_examples=EXAMPLES, seed=0, dtype=dtype).examples == EXAMPLES


@on_cuda
def test_one_rank_process_group_on_the_device():
    """torch_ref.distributed on the device's backend (nccl on CUDA, gloo on the CPU) with one rank:
    the all-reduce of a device tensor is itself, and DDP's gradient is the whole batch's."""
    import numpy as np

    import torch_ref
    import torch_ref.data_parallel.distributed as tdist
    from torch_ref.strategies import case_from

    tdist.init(0, 1, port=tdist.free_port(), backend="nccl" if DEVICE.startswith("cuda") else "gloo")
    try:
        x = torch.arange(4.0, device=DEVICE)
        assert torch.equal(tdist.allreduce(x), x) and tdist.allreduce(x).device == x.device
        case = case_from(manual.Spec((3, 4, 2), ("tanh", "softmax"), "ce", bias=True, reduction="mean"), N=5, seed=0)
        got = torch_ref.ddp_gradients(case.spec, case.params.map(_to_device), _to_device(case.X), _to_device(case.Y))
        want = manual.gradients(case.spec, case.params, case.X, case.Y)
        for (_, a), (_, b) in zip(got.arrays(), want.arrays()):
            assert a.device.type == torch.device(DEVICE).type
            np.testing.assert_allclose(a.cpu().numpy(), b, rtol=1e-12, atol=1e-14)
    finally:
        tdist.close()
