"""One rank of :func:`torch_ref.check_data_parallel`: a process of its own in a gloo group, which runs
the user's ``dp_grad_fn`` on its shard of each case the parent sends and sends back the result.

Messages from the parent: ``(fn, spec, params, X, Y, part)`` (``fn`` pickled by reference, ``part``
a slice of the batch) or ``None`` (stop): one pool of ranks serves any number of checks. Answers: ``("ok", [arrays as float64 NumPy])``, ``("type", text)`` (not a Params or a list of
arrays) or ``("crash", traceback text)``.
"""

from __future__ import annotations

import traceback
from typing import Any


def serve(rank: int, world_size: int, port: int, conn: Any, timeout_s: float) -> None:
    import numpy as np
    import torch.distributed as dist

    from . import distributed as tdist
    from ._result import normalise

    tdist.init(rank, world_size, port=port, backend="gloo", timeout_s=timeout_s)
    try:
        while True:
            message = conn.recv()
            if message is None:
                break
            fn, spec, params, X, Y, part = message
            try:
                out = fn(spec, params, X[part], Y[part], tdist.allreduce)
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
