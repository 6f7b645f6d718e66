"""The peak memory one training step needs beyond what exists before it (weights, batch, optimizer
state): ``peak_bytes`` on every benchmark record, counted from the array library's own allocations.

- CUDA: ``torch.cuda.max_memory_allocated()`` over the step, less ``torch.cuda.memory_allocated()``
  before it (the peak counter reset first).
- CPU, torch: the profiler's memory events (``torch.profiler.profile(profile_memory=True)``): every
  allocation and free of torch's CPU allocator during the step, in time order; the peak of their
  running sum.
- CPU, NumPy: ``tracemalloc``, which NumPy reports its array buffers to: the peak of what was
  allocated during the step and not yet freed.

What a BLAS library allocates for itself (packing buffers kept between calls) is not an array and is
not counted, for either library. Each measured step follows one warm-up step; state a step keeps
between steps and would free at its own start (autograd's ``.grad`` tensors) is released before the
measurement, so it counts in the peak. The measurement runs after a case's timing, never during it.
The step runs once, unprofiled, before: an error it raises is seen there, not hidden with the
profiler's native messages.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import tracemalloc
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null for the block: the profiler's native library writes a
    "USDT: ... profiler_start" line there on every start and stop, which Python cannot silence."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _torch_cpu_peak(step: Callable[[], None]) -> int:
    from torch.profiler import ProfilerActivity, profile

    with quiet_native_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    current = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        current += e.nbytes()
        peak = max(peak, current)
    return peak


def _numpy_peak(step: Callable[[], None]) -> int:
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def peak_bytes(
    step: Callable[[], None],
    device: str,
    *,
    library: str = "torch",
    release: Callable[[], None] | None = None,
    sync: Callable[[], None] = lambda: None,
) -> int:
    """Bytes the step allocates beyond what exists before it, at its worst moment (see the module
    docstring). ``library`` is the array library the step runs on: "torch" or "numpy"."""
    if library not in ("torch", "numpy"):
        raise ValueError(f"library must be 'torch' or 'numpy', got {library!r}")
    step()  # warm-up: a library's one-time buffers are not the step's
    sync()
    if release is not None:
        release()
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - before)
    return _numpy_peak(step) if library == "numpy" else _torch_cpu_peak(step)
