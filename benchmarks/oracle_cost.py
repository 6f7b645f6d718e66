"""What checking one network costs: the oracle's comparison (manual gradients, autograd gradients,
the derived tolerance, the per-parameter comparison) against torch.autograd.gradcheck on the same
network and data, float64, in both of gradcheck's modes: the default (``fast_mode=False``: the full
numerical Jacobian, two evaluations per parameter, against the analytical one) and ``fast_mode=True``
(one random projection of each Jacobian: a few evaluations whatever the parameter count, and a
check of that projection only). The oracle's time is the median of 5 runs after one warm-up; the
full gradcheck, which takes seconds, runs once; the fast mode runs 3 times (median)."""

from __future__ import annotations

import time

import numpy as np
import torch

import manual
from torch_ref.frontends.crosscheck import crosscheck_gradients
from torch_ref.strategies import data_for, params_for
from torch_ref.twin.build import build


def oracle_cost(sizes: tuple[int, ...], N: int, *, seed: int = 0) -> dict:
    spec = manual.Spec(sizes, ("tanh",) * (len(sizes) - 2) + ("softmax",), "ce", bias=True)
    rng = np.random.default_rng(seed)
    params = params_for(spec, rng)
    X, Y = data_for(spec, N, rng)
    n_params = sum(a.size for _, a in params.arrays())

    comparison = crosscheck_gradients(spec, params, X, Y)  # warm-up
    times = []
    for _ in range(5):
        start = time.perf_counter()
        crosscheck_gradients(spec, params, X, Y)
        times.append(time.perf_counter() - start)
    oracle_s = float(np.median(times))

    objective = _Objective(build(spec, params))
    names = [n for n, _ in objective.named_parameters()]
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    inputs = tuple(p.detach().clone().requires_grad_(True) for p in objective.parameters())

    def f(*values: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(objective, dict(zip(names, values)), (Xt, Yt), strict=True)

    start = time.perf_counter()
    ok = torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)
    gradcheck_s = time.perf_counter() - start
    fast = []
    for _ in range(3):
        start = time.perf_counter()
        ok_fast = torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=True)
        fast.append(time.perf_counter() - start)
    gradcheck_fast_s = float(np.median(fast))
    return {
        "network": "-".join(map(str, sizes)),
        "N": N,
        "parameters": int(n_params),
        "oracle_s": oracle_s,
        "gradcheck_s": gradcheck_s,
        "ratio": gradcheck_s / oracle_s,
        "gradcheck_fast_s": gradcheck_fast_s,
        "ratio_fast": gradcheck_fast_s / oracle_s,
        "oracle_ok": comparison.ok,
        "gradcheck_ok": bool(ok),
        "gradcheck_fast_ok": bool(ok_fast),
    }


class _Objective(torch.nn.Module):
    """The reference network's objective as a module, so functional_call can swap its parameters."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return self.net.objective(X, Y)
