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

import functools
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


def _network(
    fn: Any, code: str, params: dict, X: np.ndarray, Y: np.ndarray, masks: dict, part: slice, arrays: str
) -> tuple:
    """``fn(net, params, X[part], Y[part], allreduce[, masks=])`` on a network rebuilt from its code."""
    try:
        net = rebuild(code)
        given = {k: _as_arrays(v, arrays) for k, v in params.items()}
        shard = {k: _as_arrays(m[part], arrays) for k, m in masks.items()}
        args = (net, given, _as_arrays(X[part], arrays), _as_arrays(Y[part], arrays), tdist.allreduce)
        out = fn(*args, masks=shard) if masks else fn(*args)
    except Exception:
        return ("crash", traceback.format_exc(limit=6))
    want = net.parameters()
    if not isinstance(out, dict) or any(out.get(k) is None for k in want):
        return (
            "type",
            f"dp_grad_fn(...) must return a dict of gradients by name ({', '.join(want)}), got {type(out).__name__}",
        )
    bad = [k for k, s in want.items() if tuple(out[k].shape) != s]
    if bad:
        return ("type", f"dp_grad_fn(...) gave wrong shapes for {bad}")
    return ("ok", [np.array(_numpy(out[k]), dtype=np.float64) for k in want])


@functools.lru_cache(maxsize=32)
def rebuild(code: str) -> Any:
    """The network ``code`` (its repr, built-in nodes only) builds, from manual.network's names."""
    import manual.network as mn

    net = eval(code, {"__builtins__": {}}, {k: getattr(mn, k) for k in mn.__all__})
    if not isinstance(net, mn.Network):
        raise ValueError(f"not a Network: {code!r}")
    return net


def _numpy(a: Any) -> Any:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a


def serve(rank: int, world_size: int, port: int, conn: Any, timeout_s: float) -> None:
    tdist.init(rank, world_size, port=port, backend="gloo", timeout_s=timeout_s)
    try:
        while True:
            message = conn.recv()
            if message is None:
                break
            if message[0] == "network":  # a network of layers (torch_ref.networks.data_parallel)
                conn.send(_network(*message[1:]))
                continue
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
