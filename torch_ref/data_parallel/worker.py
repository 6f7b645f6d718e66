"""One rank of :func:`torch_ref.check_data_parallel`: a process of its own in a gloo group, which runs
the user's ``dp_grad_fn`` on its shard of each case the parent sends and sends back the result.

Messages from the parent: ``(fn, spec, params, X, Y, part, arrays)`` (``fn`` pickled by reference,
``part`` a slice of the batch, ``arrays`` "numpy" or "torch": the kind of arrays ``fn`` is given) or
``None`` (stop): one pool of ranks serves any number of checks. Answers: ``("ok", [arrays as float64
NumPy])``, ``("type", text)`` (not a Params or a list of arrays) or ``("crash", traceback text)``.

Its imports are at module level: the fork server imports this module once, and every rank forked
from it starts with torch loaded.
"""

from __future__ import annotations

import traceback
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ..engine.result import normalise
from . import distributed as tdist


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _as_arrays(a: np.ndarray, arrays: str) -> Any:
    return _tensor(a) if arrays == "torch" else a


def serve(rank: int, world_size: int, port: int, conn: Any, timeout_s: float) -> None:
    tdist.init(rank, world_size, port=port, backend="gloo", timeout_s=timeout_s)
    try:
        while True:
            message = conn.recv()
            if message is None:
                break
            fn, spec, params, X, Y, part, arrays = message
            try:
                given = params.map(_tensor) if arrays == "torch" else params
                out = fn(
                    spec,
                    given,
                    _as_arrays(X[part], arrays),
                    _as_arrays(Y[part], arrays),
                    tdist.allreduce,
                )
            except Exception:
                conn.send(("crash", traceback.format_exc(limit=6)))
                continue
            p, problem, _ = normalise(spec, out, "dp_grad_fn(...)")
            if p is None:
                conn.send(("type", problem))
                continue
            conn.send(("ok", [np.asarray(a, dtype=np.float64) for _, a in p.arrays()]))
    finally:
        dist.destroy_process_group()
