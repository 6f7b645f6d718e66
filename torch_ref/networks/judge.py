"""One network case judged: the user's whole-network gradients against autograd of the torch twin's
objective, every entry within the rounding model of :mod:`torch_ref.layers.rounding`.

The bound: the twin's forward and autograd's backward traced into one graph of aten operations,
each operation's standard rounding bound carried to every gradient entry by its measured sensitivity;
beside it the same for manual's own δ recursion (the hand algorithm), entry by entry the larger, and
``ALGORITHMS`` times that for any right algorithm (the layers' model, one network being one
function of its parameters with δ_out = 1).

A case is not judged (never a pass) where the dtype cannot tell right from wrong: the bound exceeds
2⁻¹⁰ of the gradients' scale, or an activation's input lies within the dtype's reach of a kink, or a
max-pooling window's two largest entries are that close (a float32 run may take the other branch
there, and both are right).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from manual.network import Network

from ..engine.outcome import Judged
from ..layers.judge import UNINFORMATIVE, _crash, _larger, _reproduces, hand_out
from ..layers.rounding import Traced, trace, trace_algorithm, unit_roundoff
from ..numerics.compare import Comparison, compare
from .case import NetworkCase
from .twin import reference as twin_reference

__all__ = ["NEAR", "NetworkOutcome", "arrays64", "call_user", "judge", "reference_of", "verdict"]

NEAR = 2.0**6  # units of the dtype's roundoff, of an input's scale: "within reach" of a kink or a tie


@dataclass(frozen=True)
class NetworkOutcome(Judged):
    """What the user's gradients do on one case (the engine's outcome)."""

    kind: str
    case: NetworkCase
    what: str
    comparison: Comparison | None = None
    detail: str = ""
    findings: tuple[str, ...] = ()
    values: Mapping[str, np.ndarray] = field(default_factory=dict)
    traced: Traced | None = None
    dtype: str = "float64"


def arrays64(case: NetworkCase) -> dict[str, torch.Tensor]:
    """The case as float64 tensors for the reference: x, y, every parameter, every mask."""

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(a, dtype=np.float64 if np.issubdtype(a.dtype, np.floating) else a.dtype))

    return {
        "x": t(case.X),
        "y": t(case.Y),
        **{k: t(v) for k, v in case.params.items()},
        **{f"{k}.mask": t(m) for k, m in case.masks.items()},
    }


@functools.lru_cache(maxsize=64)
def _algorithm_for(key: str, net: Network) -> Callable[..., Any]:
    names = list(net.parameters())

    def algorithm(arrays: dict[str, torch.Tensor], dout: torch.Tensor, constants: Mapping[str, Any]) -> Any:
        masks = {k[: -len(".mask")]: v for k, v in arrays.items() if k.endswith(".mask")}
        value, grads, _ = net.backward({k: arrays[k] for k in names}, arrays["x"], arrays["y"], masks=masks)
        return value, grads

    return algorithm


def hand_algorithm(net: Network) -> Callable[..., Any]:
    """manual's forward and δ recursion as one traced algorithm (its rounding terms)."""
    return _algorithm_for(repr(net), net)


def reference_of(case: NetworkCase) -> Traced:
    """autograd's gradients of the twin's objective on ``case`` (float64) and the rounding terms of
    the larger of autograd's and manual's algorithms, entry by entry."""
    net = case.net
    arrays = arrays64(case)
    names = list(net.parameters())
    one = torch.ones((), dtype=torch.float64)
    ref = twin_reference(net)
    traced = trace(ref, arrays, names, {}, one)
    leaves = {k: (v.detach().clone().requires_grad_(True) if k in names else v) for k, v in arrays.items()}
    out = ref(**leaves)
    direct = dict(
        zip(names, torch.autograd.grad(out, [leaves[k] for k in names], allow_unused=True, materialize_grads=True))
    )
    if not _reproduces(traced, out.detach(), direct):
        traced = trace(ref, arrays, names, {}, one, cached=False)
    hand = trace_algorithm(hand_algorithm(net), arrays, names, {}, one)
    return _larger(traced, hand, {}, tuple(names))


def call_user(fn: Callable[..., Any], case: NetworkCase, arrays: str, device: str) -> Any:
    """``fn(net, params, X, Y)`` on fresh copies (``masks=`` too when the network has dropout)."""
    params = {k: hand_out(v, arrays, device) for k, v in case.params.items()}
    X, Y = hand_out(case.X, arrays, device), hand_out(case.Y, arrays, device)
    if case.masks:
        masks = {k: hand_out(m, arrays, device) for k, m in case.masks.items()}
        return fn(case.net, params, X, Y, masks=masks)
    return fn(case.net, params, X, Y)


def _numpy64(v: Any) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().to(torch.float64).numpy()
    return np.asarray(v, dtype=np.float64)


def real_floating(v: Any) -> bool:
    """Whether ``v`` is an array of real floating values (NumPy or torch, any float width)."""
    if isinstance(v, torch.Tensor):
        return v.is_floating_point()
    return isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating)


def _problem(grads: Any, case: NetworkCase) -> str:
    want = case.net.parameters()
    if not isinstance(grads, Mapping):
        return (
            f"grad_fn must return a dict of gradients by parameter name ({', '.join(want)}), got {type(grads).__name__}"
        )
    missing, extra = [k for k in want if grads.get(k) is None], sorted(set(grads) - set(want))
    if missing:
        return f"grad_fn gave no gradient for {missing} (it must give every parameter: {list(want)})"
    if extra:
        return f"grad_fn gave gradients for {extra}, which are not parameters of the network ({list(want)})"
    for k, shape in want.items():
        if not real_floating(grads[k]):
            kind = getattr(grads[k], "dtype", type(grads[k]).__name__)
            return f"grad_fn's gradient of {k!r} is {kind}, not an array of real floats (NumPy or torch)"
        if tuple(getattr(grads[k], "shape", ())) != shape:
            return f"grad_fn's gradient of {k!r} has shape {tuple(getattr(grads[k], 'shape', ()))}, expected {shape}"
    return ""


def uninformative(traced: Traced, dtype: str) -> str:
    """Why the bound is too wide to judge by (wider than 2⁻¹⁰ of the gradients' scale), or ""."""
    names = list(traced.grads)
    scale = max((float(g.abs().max()) for g in traced.grads.values() if g.numel()), default=0.0)
    widest = max((float(traced.bound(k, np.dtype(dtype)).max()) for k in names if traced.grads[k].numel()), default=0.0)
    if scale > 0 and widest > UNINFORMATIVE * scale:
        return (
            f"the rounding bound of right gradients in {dtype} exceeds 2^-10 of the gradients' scale "
            f"(a regime where {dtype} cannot tell right from wrong)"
        )
    return ""


def unjudgeable(case: NetworkCase, traced: Traced, dtype: str) -> str:
    """Why this case cannot be judged in ``dtype`` (:func:`undecided`, :func:`uninformative`), or ""."""
    reason = undecided(case, dtype)
    if reason:
        return f"{reason}: {dtype} may take the other branch there, and both are right"
    return uninformative(traced, dtype)


def undecided(case: NetworkCase, dtype: str) -> str:
    """Why the dtype cannot decide this case (a kink or a pooling tie within its reach, a layer norm
    over one feature), or ""."""
    net = case.net
    fwd = net.forward(
        dict(case.params_as(np.float64)),
        case.X if case.X.dtype.kind == "i" else case.X.astype(np.float64),
        masks=case.masks,
    )
    u = unit_roundoff(np.dtype(dtype))
    for path, node in net.nodes():
        x = np.asarray(fwd.inputs[path], dtype=np.float64)
        scale = float(np.abs(x).max()) if x.size else 0.0
        reach = NEAR * u * scale
        if node.name == "layer_norm" and node.shapes["weight"] == (1,):
            return (
                f"{net.where(path)} normalizes over one feature: x̂ = 0 exactly in the decomposed form, and a "
                "fused kernel's rounding there (x r - μ r) is amplified by 1/√eps"
            )
        if node.activation is not None and node.activation.kinks:
            for k in node.activation.kinks:
                near = np.abs(x - k) <= reach
                if near.any() and not (x[near] == k).all():
                    return f"an input of {net.where(path)} lies within {NEAR:g}u of its kink at {k:g}"
        if node.name == "max_pool2d" and _close_tie(x, node.constants, reach):
            return f"a window of {net.where(path)} has its two largest entries within {NEAR:g}u of each other"
    return ""


def _close_tie(x: np.ndarray, constants: Mapping[str, Any], reach: float) -> bool:
    k = constants["kernel_size"]
    s = constants["stride"] or k
    H, W = x.shape[2], x.shape[3]
    windows = [
        x[:, :, i : i + k, j : j + k].reshape(x.shape[0], x.shape[1], -1)
        for i in range(0, H - k + 1, s)
        for j in range(0, W - k + 1, s)
    ]
    for w in windows:
        top = np.sort(w, axis=-1)[..., -2:]
        gap = top[..., 1] - top[..., 0]
        if bool(((gap > 0) & (gap <= reach)).any()):
            return True
    return False


def judge(
    fn: Callable[..., Any], case: NetworkCase, arrays: str, device: str, dtype: str, traced: Traced | None = None
) -> NetworkOutcome:
    """The user's gradients on ``case`` against autograd within the rounding bound (``traced``: the
    case's reference, where the caller has it already)."""
    traced = traced if traced is not None else reference_of(case)
    try:
        grads = call_user(fn, case, arrays, device)
    except Exception as exc:
        return NetworkOutcome("crash", case, "grad_fn", detail=_crash(exc, "grad_fn"), traced=traced, dtype=dtype)
    problem = _problem(grads, case)
    if problem:
        return NetworkOutcome("type", case, "grad_fn", detail=problem, traced=traced, dtype=dtype)
    names = list(case.net.parameters())
    if not names:  # a check that compared nothing never passes
        return NetworkOutcome(
            "not judged",
            case,
            "grad_fn",
            detail="the network has no parameters: nothing to compare",
            traced=traced,
            dtype=dtype,
        )
    return verdict(case, traced, grads, dtype, "grad_fn", "gradients")


def verdict(
    case: NetworkCase, traced: Traced, got: Mapping[str, Any], dtype: str, what: str, title: str
) -> NetworkOutcome:
    """``got`` (every parameter's array, by name) against ``traced`` within its bound in ``dtype``; not
    judged where the dtype cannot tell right from wrong on the case, whatever the comparison says."""
    names = list(case.net.parameters())
    values = {k: _numpy64(got[k]) for k in names}
    allowed = {k: traced.bound(k, np.dtype(dtype)).numpy() for k in names}
    comparison = compare(
        names,
        [values[k] for k in names],
        [traced.grads[k].numpy() for k in names],
        [allowed[k] for k in names],
        title=f"{title} against autograd of torch's modules ({dtype}; bound: the rounding model)",
    )
    kind = "agree" if comparison.ok else "mismatch"
    detail = unjudgeable(case, traced, dtype)
    if detail:
        kind = "not judged"
    return NetworkOutcome(kind, case, what, comparison, detail, values=values, traced=traced, dtype=dtype)
