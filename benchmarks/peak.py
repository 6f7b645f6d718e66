"""The machine's limit: the best GEMM rate measured in this run over square sizes, per library and
dtype, and the FLOPs of one training step."""

from __future__ import annotations

import time

import torch
from torch.utils.benchmark import Timer

from manual import Spec


def timer(fn, *, min_run_time: float) -> float:
    """Median seconds of ``fn()`` by torch.utils.benchmark (warm-up, blocked repeats, CUDA
    synchronised), with all of torch's threads."""
    fn()  # warm-up outside the measurement
    t = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return t.blocked_autorange(min_run_time=min_run_time).median


def gemm_peak(
    dtype: str, device: str, sizes: tuple[int, ...], *, min_run_time: float, pause: float
) -> dict[str, float]:
    """GFLOP/s of torch.mm (and numpy matmul on the CPU) at each size; 'peak' is the best of all."""
    rates: dict[str, float] = {}
    for n in sizes:
        a = torch.randn(n, n, dtype=getattr(torch, dtype), device=device)
        b = torch.randn(n, n, dtype=getattr(torch, dtype), device=device)
        rates[f"torch_{n}"] = 2 * n**3 / timer(lambda a=a, b=b: torch.mm(a, b), min_run_time=min_run_time) / 1e9
        time.sleep(pause)
        if device == "cpu":
            an, bn = a.numpy(), b.numpy()
            rates[f"numpy_{n}"] = 2 * n**3 / timer(lambda an=an, bn=bn: an @ bn, min_run_time=min_run_time) / 1e9
            time.sleep(pause)
    rates["torch"] = max(v for k, v in rates.items() if k.startswith("torch_"))
    if device == "cpu":
        rates["numpy"] = max(v for k, v in rates.items() if k.startswith("numpy_"))
    rates["peak"] = max(rates["torch"], rates.get("numpy", 0.0))
    return rates


def step_flops(spec: Spec, N: int) -> int:
    """Matrix-product FLOPs of one step: forward u W (2 N in out per layer), the gradient u^T delta
    (2 N in out), the back-propagated delta W^T (2 N in out, every layer but the first), and the update
    (2 in out). Elementwise work (activations, their derivatives, the loss) is not counted."""
    total = 0
    for l, (i, o) in enumerate(spec.shapes()):
        total += 2 * N * i * o * (3 if l > 0 else 2) + 2 * i * o
    return total
