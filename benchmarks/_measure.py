"""What the layer and network benchmarks share: torch set for exact float arithmetic and the asked
threads, the machine's record, and the timing of a case's variants in interleaved rounds with each
one's peak memory (the caller adds the case's own fields)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from memory import peak_bytes
from rounds import Spread, block, interleaved
from train_step import _cpu_name


def exact_torch(threads: int | None, device: str) -> None:
    """``threads`` torch threads where given; on CUDA, TF32 off (the float32 timed is float32)."""
    if threads is not None:
        torch.set_num_threads(threads)
    if device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device is available to torch here")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def machine(device: str, load_before: tuple[float, float, float]) -> dict[str, Any]:
    """The device's name, torch's version and threads, the cores, and the load averages at the start
    and now (others' work on the cores)."""
    return {
        "device": torch.cuda.get_device_name() if device == "cuda" else _cpu_name(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        # the 1, 5 and 15 minute load averages at the start and the end
        "load_average": {"start": load_before, "end": os.getloadavg()},
    }


def timed_variants(
    calls: Mapping[str, Callable[[], Any]],
    variants: Sequence[str],
    baseline: Mapping[str, str],
    *,
    device: str,
    rounds: int,
    block_s: float,
    release: Mapping[str, Callable[[], Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each variant timed in interleaved rounds: its median, its spread, its per-round ratio to its
    baseline's time of the same round, and its peak memory (``release[name]`` run before measuring it)."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    blocks = {name: block(calls[name], block_s=block_s, sync=sync) for name in variants}
    times = interleaved(blocks, rounds=rounds)
    out = {}
    for name in variants:
        per_round = [t / b for t, b in zip(times[name], times[baseline[name]])]
        out[name] = {
            "variant": name,
            "baseline": baseline[name],
            "median_s": float(np.median(times[name])),
            "time_s": Spread.of(times[name]).as_dict(),
            "ratio": Spread.of(per_round).as_dict(),
            "rounds": rounds,
            "peak_bytes": peak_bytes(calls[name], device, release=(release or {}).get(name), sync=sync),
        }
    return out
