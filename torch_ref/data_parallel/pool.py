"""The rank processes of :func:`torch_ref.check_data_parallel`: one pool of ``world_size`` processes in
a gloo group per world size, forked from multiprocessing's fork server (torch imported there once),
fed case after case and replaced when a rank fails; a rank that raises, dies or hangs becomes a
:class:`_RankFailure`.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait
from typing import Any

import numpy as np

from ..strategies import Case
from .distributed import free_port


class _RankFailure(Exception):
    """A rank raised, returned something else, or did not answer: the pool is stopped."""

    def __init__(self, kind: str, rank: int, detail: str) -> None:
        super().__init__(detail)
        self.kind, self.rank, self.detail = kind, rank, detail


class _Pool:
    """``world_size`` rank processes in one gloo group, started once and fed case after case, by any
    number of checks (a pool per world size is kept for the life of the process; one whose rank
    failed is stopped and replaced on the next check)."""

    def __init__(self, world_size: int) -> None:
        context = _context()
        port = free_port()
        self.conns: list[Any] = []
        self.procs: list[Any] = []
        self.served = 0  # cases answered by every rank
        with _no_unreadable_main():
            self._start(context, world_size, port)

    def _start(self, context: Any, world_size: int, port: int) -> None:
        from . import worker as _dp_worker

        for rank in range(world_size):
            parent, child = context.Pipe()
            proc = context.Process(
                target=_dp_worker.serve, args=(rank, world_size, port, child, _GROUP_TIMEOUT_S), daemon=True
            )
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)

    def run(
        self, fn: Callable, case: Case, parts: list[slice], timeout_s: float, arrays: str = "numpy"
    ) -> list[list[np.ndarray]]:
        for rank, (conn, part) in enumerate(zip(self.conns, parts)):
            try:
                message = case.message(fn, part, arrays) if hasattr(case, "message") else None
                conn.send(message or (fn, case.spec, case.params, case.X, case.Y, part, arrays))
            except (BrokenPipeError, ConnectionResetError, EOFError):
                raise self._died(rank) from None
        deadline = time.monotonic() + timeout_s
        out: list[Any] = [None] * len(self.conns)
        waiting = set(range(len(self.conns)))
        while waiting:
            left = deadline - time.monotonic()
            ready = set(
                wait([self.conns[r] for r in waiting] + [self.procs[r].sentinel for r in waiting], max(left, 0))
            )
            for rank in sorted(waiting):
                conn, proc = self.conns[rank], self.procs[rank]
                if conn in ready:
                    try:
                        status, value = conn.recv()
                    except (BrokenPipeError, ConnectionResetError, EOFError):
                        raise self._died(rank) from None
                    if status != "ok":
                        raise _RankFailure(status, rank, value)
                    out[rank] = value
                    waiting.discard(rank)
                elif proc.sentinel in ready:
                    raise self._died(rank)
            if waiting and not ready:
                raise _RankFailure(
                    "hang",
                    min(waiting),
                    f"rank(s) {sorted(waiting)} did not answer within timeout_s={timeout_s} s "
                    f"(a collective that not every rank joined, or a rank that never returns)",
                )
        self.served += 1
        return out

    def _died(self, rank: int) -> _RankFailure:
        proc = self.procs[rank]
        proc.join(timeout=5)
        detail = f"rank {rank}'s process ended (exit code {proc.exitcode})"
        if self.served == 0:
            detail += (
                " before it ran dp_grad_fn; its own error is on this process's stderr. The rank processes "
                "import the script that started the check (as multiprocessing's spawn and forkserver do): "
                'a script must start the check under if __name__ == "__main__":, and define dp_grad_fn '
                "at its top level, outside that block"
            )
            return _RankFailure("start", rank, detail)
        return _RankFailure("crash", rank, detail)

    def close(self) -> None:
        for conn, proc in zip(self.conns, self.procs):
            if proc.is_alive():
                try:
                    conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
        for proc in self.procs:
            proc.join(timeout=2)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)


def _context() -> Any:
    """Rank processes come from multiprocessing's fork server with torch imported once there: a
    pool then starts in a fraction of a second, not the 1.5-2 s of a fresh interpreter importing
    torch per rank (a pool is restarted after every failed rank). Forked from a process that has
    only imported modules (no threads, no process group), which is the fork server's purpose."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch_ref.data_parallel.worker", "torch_ref.data_parallel.ddp", "manual"])
    return context


@contextlib.contextmanager
def _no_unreadable_main() -> Iterator[None]:
    """Rank processes re-import the main script from its path; a main that is no file (``python -``,
    ``python -c``) cannot be, and holds nothing the ranks could import anyway: its path is hidden
    while they start, so that they import the modules of ``dp_grad_fn`` alone."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or os.path.exists(path):
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


_GROUP_TIMEOUT_S = 300.0  # gloo's own limit on a collective; the check's timeout_s acts first


_POOLS: dict[int, _Pool] = {}


def _pool(world_size: int) -> _Pool:
    if world_size not in _POOLS:
        _POOLS[world_size] = _Pool(world_size)
    return _POOLS[world_size]


def _discard(world_size: int) -> None:
    pool = _POOLS.pop(world_size, None)
    if pool is not None:
        pool.close()


@atexit.register
def _close_all() -> None:
    for world_size in list(_POOLS):
        _discard(world_size)
