"""``torch.distributed`` for data-parallel derivations: the all-reduce that
:func:`manual.data_parallel_gradients` takes, the process group's set-up, and how a batch is split
into shards.

    import torch_ref.data_parallel.distributed as tdist
    tdist.init(rank, world_size, port=port)            # gloo on the CPU, nccl on CUDA
    grads = manual.data_parallel_gradients(spec, params, X[shard], Y[shard], tdist.allreduce)
    tdist.close()                                       # every rank, before it returns
"""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["allreduce", "close", "free_port", "init", "shard_sizes", "shards"]

SHARD_MODES = ("even", "uneven")


def allreduce(a: Any, group: Any = None) -> Any:
    """The elementwise sum of ``a`` over the ranks of ``group`` (default: every rank), as the same
    kind of array: a NumPy array in, a NumPy array out (through a CPU tensor); a tensor in, a new
    tensor on its device out. ``a`` itself is left as it was."""
    if isinstance(a, np.ndarray):
        t = torch.from_numpy(np.array(a, copy=True))
        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
        return t.numpy()
    if isinstance(a, torch.Tensor):
        t = a.detach().clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
        return t
    raise TypeError(f"allreduce takes a numpy.ndarray or a torch.Tensor, got {type(a).__name__}")


def free_port() -> int:
    """A TCP port on localhost that was free a moment ago (for the process group's rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init(rank: int, world_size: int, *, port: int, backend: str | None = None, timeout_s: float = 60.0) -> None:
    """Join the default process group on localhost: ``backend`` gloo (CPU) unless CUDA is available
    and none is named (then nccl); a collective that waits longer than ``timeout_s`` raises."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
    chosen = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group(
        chosen,
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=timeout_s),
    )


def close() -> None:
    """Leave the process group: a barrier, so that no rank tears its connections down while another
    still uses them, then ``destroy_process_group``. Every rank calls it before it returns (a rank
    that exits with the group open can abort its peers' teardown)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def shard_sizes(N: int, world_size: int, mode: str = "uneven") -> list[int]:
    """How many of ``N`` examples each rank gets. ``"even"``: as equal as they can be (the first
    ``N % world_size`` ranks one more). ``"uneven"``: rank k gets about ``k + 1`` parts in
    ``1 + 2 + ... + world_size``, so the shard sizes differ whenever ``N > world_size > 1``; with
    ``N < world_size`` the first ranks get one example each and the rest none (an empty shard)."""
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if N < 0:
        raise ValueError(f"N must be >= 0, got {N}")
    if mode not in SHARD_MODES:
        raise ValueError(f"mode must be one of {SHARD_MODES}, got {mode!r}")
    if mode == "even" or N < world_size:
        if N < world_size:
            return [1] * N + [0] * (world_size - N)
        return [N // world_size + (1 if k < N % world_size else 0) for k in range(world_size)]
    weights = np.arange(1, world_size + 1)
    sizes = np.maximum(1, np.floor(N * weights / weights.sum())).astype(int)
    sizes[-1] += N - sizes.sum()
    while sizes[-1] < 1:  # give back from the largest of the others
        k = int(np.argmax(sizes[:-1]))
        sizes[k] -= 1
        sizes[-1] += 1
    return [int(s) for s in sizes]


def shards(N: int, world_size: int, mode: str = "uneven") -> list[slice]:
    """The slices of ``range(N)`` each rank takes, in rank order (see :func:`shard_sizes`)."""
    out, start = [], 0
    for size in shard_sizes(N, world_size, mode):
        out.append(slice(start, start + size))
        start += size
    return out
