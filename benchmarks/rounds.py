"""Interleaved rounds: every implementation of a case is timed in each round, in the order
A B C D, then D C B A, then A B C D ..., so drift of the machine (clock, a neighbour's load, the
allocator's state) falls on all of them alike instead of on whichever was timed in its own block.
A round's ratio (an implementation's time over the baseline's, both from that round) is the unit of
comparison; a case reports the median of those ratios and their spread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Spread:
    """A summary of per-round values: the median, the interquartile range (``lo`` = 25th, ``hi`` =
    75th percentile) and the extremes."""

    median: float
    lo: float
    hi: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        a = np.asarray(values, dtype=float)
        q25, q50, q75 = np.percentile(a, [25, 50, 75])
        return cls(float(q50), float(q25), float(q75), float(a.min()), float(a.max()))

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "lo": self.lo, "hi": self.hi, "min": self.min, "max": self.max}


def calibrate(step: Callable[[], None], sync: Callable[[], None], block_s: float) -> int:
    """Calls per block so that one block takes about ``block_s`` (at least one call); ``step`` is
    run once before, as the warm-up."""
    step()
    sync()
    calls, elapsed = 1, 0.0
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            step()
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= block_s / 4 or calls >= 1 << 20:
            break
        calls *= 4
    return max(1, round(calls * block_s / max(elapsed, 1e-9)))


Block = Callable[[], float]
"""One timed block: runs a calibrated number of back-to-back calls and returns seconds per call."""


def block(step: Callable[[], None], *, block_s: float, sync: Callable[[], None] = lambda: None) -> Block:
    """``step`` as a :data:`Block`: ``calls`` back-to-back calls (calibrated here, once) ended by
    ``sync()`` (CUDA: ``torch.cuda.synchronize``, so the time is the device's)."""
    calls = calibrate(step, sync, block_s)

    def run() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            step()
        sync()
        return (time.perf_counter() - start) / calls

    return run


def interleaved(
    blocks: dict[str, Block], *, rounds: int, settle: dict[str, float] | None = None
) -> dict[str, list[float]]:
    """Seconds per call of each block in each round. Round r runs the blocks in the given order when r
    is even and reversed when odd. ``settle[name]`` seconds are slept before and after that block,
    outside its timing (so that another library's threads, still spinning after their last call,
    are asleep before it starts, and its own are before the next block)."""
    names = list(blocks)
    settle = settle or {}
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            if name in settle:
                time.sleep(settle[name])
            times[name].append(blocks[name]())
            if name in settle:
                time.sleep(settle[name])
    return times


def ratios(times: dict[str, list[float]], baseline: str) -> dict[str, list[float]]:
    """Per round, each step's time over the baseline's time in the same round."""
    base = times[baseline]
    return {name: [t / b for t, b in zip(ts, base)] for name, ts in times.items()}
