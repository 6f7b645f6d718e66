r"""Per-example gradients of a network: each example's own share of the objective differentiated.

With :math:`E = \sum_n L_n` (``"sum"``) or :math:`E = \frac{1}{N} \sum_n L_n` (``"mean"``; for
cross-entropy over sequences :math:`L_n` is the mean over the example's positions), example n's
gradient is :math:`g_n = \partial L_n / \partial \theta`, times :math:`1/N` for ``"mean"``, so that
:math:`\sum_n g_n = \nabla E`. The reference: autograd of the twin on the one-example batch (every
example its own case of the rounding model), scaled by :math:`1/N` for ``"mean"`` (one more rounding,
:math:`u |g_n|`). Batch normalization ties the examples together, so a network with it has no
per-example gradients (``ValueError``; the draw leaves it out).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from ..layers.judge import _crash, hand_out
from ..layers.rounding import Traced
from ..numerics.compare import compare
from .case import NetworkCase
from .judge import NetworkOutcome, real_floating, reference_of, verdict

__all__ = ["example", "judge_per_example", "per_example_reference", "tied"]


def tied(case: NetworkCase) -> bool:
    """Whether the network ties its examples together (batch normalization)."""
    return any(node.name == "batch_norm" for _, node in case.net.nodes())


def example(case: NetworkCase, n: int) -> NetworkCase:
    """The one-example case of example ``n`` (its masks' row too)."""
    masks = {k: m[n : n + 1] for k, m in case.masks.items()}
    X, Y = case.X[n : n + 1], case.Y[n : n + 1]
    return NetworkCase(case.net, case.params, X, Y, masks, (1, *case.shape[1:]), case.seed, case.family, case.regimes)


def per_example_reference(case: NetworkCase) -> Traced:
    """Every example's gradient stacked on a leading axis ``(N, *shape)``, with its rounding terms."""
    N = case.N
    scale = 1.0 / N if case.net.reduction == "mean" else 1.0
    parts = [reference_of(example(case, n)) for n in range(N)]
    names = list(case.net.parameters())

    def stack(pick: Callable[[Traced, str], torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: torch.stack([pick(t, k) for t in parts]) for k in names}

    grads = stack(lambda t, k: t.grads[k] * scale)
    # the 1/N scaling rounds once more: u |g_n| (in terms of u: |g_n|)
    terms = stack(lambda t, k: t.terms[k] * scale + (t.grads[k] * scale).abs() * (scale != 1.0))
    under = stack(lambda t, k: t.underflows.get(k, torch.zeros_like(t.grads[k])) * scale)
    out = torch.stack([t.out for t in parts])
    return Traced(out=out, grads=grads, terms=terms, ops=parts[0].ops, underflows=under)


def judge_per_example(
    fn: Callable[..., Any], case: NetworkCase, arrays: str, device: str, dtype: str
) -> NetworkOutcome:
    """The user's per-example gradients against autograd's, each example within its rounding bound."""
    traced = per_example_reference(case)
    params = {k: hand_out(v, arrays, device) for k, v in case.params.items()}
    X, Y = hand_out(case.X, arrays, device), hand_out(case.Y, arrays, device)
    try:
        if case.masks:
            got = fn(case.net, params, X, Y, masks={k: hand_out(m, arrays, device) for k, m in case.masks.items()})
        else:
            got = fn(case.net, params, X, Y)
    except Exception as exc:
        return NetworkOutcome(
            "crash", case, "per_example_fn", detail=_crash(exc, "per_example_fn"), traced=traced, dtype=dtype
        )
    names = list(case.net.parameters())
    problem = _problem(got, case, names)
    if problem:
        return NetworkOutcome("type", case, "per_example_fn", detail=problem, traced=traced, dtype=dtype)
    return verdict(case, traced, got, dtype, "per_example_fn", "per-example gradients (N, ...), each example's own")


def _problem(got: Any, case: NetworkCase, names: list[str]) -> str:
    if not isinstance(got, Mapping):
        return f"per_example_fn must return a dict of (N, ...) arrays by parameter name, got {type(got).__name__}"
    missing = [k for k in names if got.get(k) is None]
    if missing:
        return f"per_example_fn gave nothing for {missing}"
    for k, shape in case.net.parameters().items():
        if not real_floating(got[k]):
            return f"per_example_fn's {k!r} is {getattr(got[k], 'dtype', type(got[k]).__name__)}, not an array of real floats"
        want = (case.N, *shape)
        if tuple(getattr(got[k], "shape", ())) != want:
            return f"per_example_fn's {k!r} has shape {tuple(getattr(got[k], 'shape', ()))}, expected {want} (N first)"
    return ""


def explain_per_example(v: NetworkOutcome) -> list[str]:
    """The per-example mistakes that reproduce the user's arrays within the bound: the mean's 1/N left
    out or taken twice, the whole batch's gradient in every row."""
    if v.kind != "mismatch" or v.traced is None:
        return []
    case = v.case
    names = list(case.net.parameters())
    N = case.N
    right = {k: v.traced.grads[k].numpy() for k in names}
    allowed = [v.traced.bound(k, np.dtype(v.dtype)).numpy() for k in names]
    candidates = [
        (
            "the batch's whole gradient in every example's row",
            {k: np.broadcast_to(g.sum(axis=0), g.shape) for k, g in right.items()},
        )
    ]
    if case.net.reduction == "mean":
        candidates += [
            (
                "each example's gradient not divided by N (the mean's 1/N left out)",
                {k: g * N for k, g in right.items()},
            ),
            ("each example's gradient divided by N twice", {k: g / N for k, g in right.items()}),
        ]
    found = []
    for name, values in candidates:
        wrong = [values[k] for k in names]
        if compare(names, wrong, [right[k] for k in names], allowed).ok:
            continue  # equals the right arrays here (N = 1)
        if compare(names, [v.values[k] for k in names], wrong, allowed).ok:
            found.append(f"Diagnosis: {name}. Verified: it reproduces every array within its bound.")
    return found or [
        "Diagnosis: no known per-example mistake reproduces these arrays (1/N left out or twice, the whole gradient per row)."
    ]
