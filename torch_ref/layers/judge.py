"""One layer case judged: the user's forward against the reference's value, the user's backward
against autograd's gradients, every entry within the rounding model's bound
(:mod:`torch_ref.layers.rounding`).

A case whose bound is wider than 2⁻¹⁰ of the gradients' scale (the largest |gradient| of the case)
is not judged: in that dtype a right backward and a wrong one cannot be told apart there, and a
check never passes on such a case (it counts it and says why).
"""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ..engine.outcome import Judged
from ..numerics.compare import Comparison, compare
from .case import LayerCase
from .rounding import Traced, UnknownOperation, trace, trace_algorithm, unit_roundoff
from .setup import LayerSetup

__all__ = ["UNINFORMATIVE", "LayerDraw", "LayerOutcome", "hand_out", "judge", "layer_draws", "reference_of"]

UNINFORMATIVE = 2.0**-10  # a bound this share of the gradients' scale or wider: the case is not judged


@dataclass(frozen=True)
class LayerDraw:
    """A drawn case and the seed of its δ_out (``dout``, standard normal, of the output's shape)."""

    case: LayerCase
    seed: int

    def dout(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return np.asarray(np.random.default_rng(self.seed).standard_normal(shape), dtype=dtype)

    def __repr__(self) -> str:
        return f"{self.case!r}, dout seed {self.seed}"

    def rebuild(self) -> str:
        """Python that rebuilds the case's arrays and constants (``x``, ``params``)."""
        c = self.case
        params = ", ".join(f"{k!r}: {_literal(v)}" for k, v in {**c.params, **c.constants}.items())
        return f"x = {_literal(c.x)}; params = {{{params}}}"


def layer_draws(strategy: Any, dout_seed: Any) -> Any:
    """The engine's cases: ``strategy``'s layer cases, each with a δ_out seed (``dout_seed`` for every
    case where given, to reproduce a reported one; else drawn)."""
    from hypothesis import strategies as st

    if dout_seed is not None and (
        isinstance(dout_seed, bool) or not isinstance(dout_seed, int) or not 0 <= dout_seed < 2**32
    ):
        raise ValueError(f"dout_seed must be an int in [0, 2**32), got {dout_seed!r}")
    seeds = st.integers(0, 2**32 - 1) if dout_seed is None else st.just(dout_seed)
    return st.builds(LayerDraw, strategy, seeds)


def _literal(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"np.array({v.tolist()!r}, dtype={v.dtype.name!r})"
    return repr(v)


@dataclass(frozen=True)
class LayerOutcome(Judged):
    """What the user's layer does on one case (the engine's outcome).

    ``kind``: agree, mismatch, not judged, crash, type, shape. ``values``: the user's forward output
    and gradients in float64 (``"out"``, ``"x"``, ...); ``traced``: the reference's values and
    rounding terms; ``dout``: the δ_out given.
    """

    kind: str
    case: LayerDraw
    what: str
    comparison: Comparison | None = None
    detail: str = ""
    findings: tuple[str, ...] = ()
    values: Mapping[str, np.ndarray] = field(default_factory=dict)
    traced: Traced | None = None
    dout: np.ndarray | None = None
    dtype: str = "float64"


def hand_out(a: np.ndarray, arrays: str, device: str) -> Any:
    """A fresh copy of ``a`` for the user's code: NumPy, or a torch tensor on ``device``."""
    if arrays == "numpy":
        return np.array(a, copy=True)
    return torch.from_numpy(np.array(a, copy=True)).to(device)


def _numpy64(v: Any) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=np.float64)


def _crash(exc: BaseException, what: str, called: str = "") -> str:
    """What ``what`` raised, where in the user's code (the last frame outside torch_ref), and, for a
    call that did not fit its signature, how it was called."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f"{os.sep}torch_ref{os.sep}" not in f.filename]
    where = f" at {frames[-1].filename}:{frames[-1].lineno} ({frames[-1].name})" if frames else ""
    text = f"{what} raised {type(exc).__name__}: {exc}{where}"
    if isinstance(exc, TypeError) and "argument" in str(exc) and called:
        text += f"\n  ({what} was called as {called})"
    return text


def _call(what: str, case: LayerCase, params: Mapping[str, Any], convention: str) -> str:
    if convention == "cache" and what == "forward":
        arrays = [k for k in params if k in case.params]
        consts = ", ".join(f"{k}=..." for k in params if k not in case.params)
        return f"forward(x, {', '.join(arrays)}{', ' + consts if consts else ''})"
    head = (
        "forward(x" if what == "forward" else ("backward(dout, cache" if convention == "cache" else "backward(dout, x")
    )
    rest = "" if head.endswith("cache") else "".join(f", {k}=..." for k in params)
    return head + rest + ")"


def reference_of(
    setup: LayerSetup, case: LayerCase, dout: np.ndarray | None = None, seed: int = 0
) -> tuple[Traced, np.ndarray]:
    """The reference's values and rounding terms on ``case`` (float64), with the δ_out used."""
    arrays = {
        k: torch.from_numpy(np.array(v, dtype=np.float64 if np.issubdtype(v.dtype, np.floating) else v.dtype))
        for k, v in case.arrays.items()
    }
    names = setup.differentiated(case)
    try:
        with torch.no_grad():
            out = setup.reference(**arrays, **case.constants)
    except Exception as exc:
        raise ValueError(
            f"the reference ({setup.reference_label}) cannot run on this case: {_crash(exc, 'it')}"
        ) from None
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        raise TypeError(
            f"the reference ({setup.reference_label}) must return one floating tensor, got {type(out).__name__}"
        )
    if dout is None:
        dout = np.asarray(np.random.default_rng(seed).standard_normal(tuple(out.shape)), dtype=case.dtype)
    dout64 = torch.from_numpy(np.array(dout, dtype=np.float64))
    if setup.fd:
        from .function import fd_reference

        return fd_reference(setup, case, arrays, names, dout64, np.dtype(dout.dtype)), dout
    try:
        traced = trace(setup.reference, arrays, names, case.constants, dout64)
    except UnknownOperation:
        raise
    except Exception as exc:
        if "data-dependent" in str(exc) or "_local_scalar_dense" in str(exc):
            raise ValueError(
                f"the reference ({setup.reference_label}) reads its tensors' values in Python (float(t), t.item(), "
                "`if t > 0`), so its operations cannot be traced for the rounding model: write such a branch with "
                "torch.where, or give another reference="
            ) from None
        raise ValueError(
            f"tracing the reference ({setup.reference_label}) for the rounding model failed on this case: "
            f"{_crash(exc, 'it')}"
        ) from None
    # a graph traced on other values must reproduce this case's value and autograd's gradients (a
    # Python branch on the data is baked into the graph it took): else it is traced afresh on this case
    direct = _autograd(setup, arrays, names, case.constants, dout64)
    bad = [k for k, g in (("out", out), *direct.items()) if not bool(torch.isfinite(g).all())]
    if bad:
        raise ValueError(
            f"the reference ({setup.reference_label}) is not finite on the drawn case {case!r}: NaN or inf in "
            f"{', '.join(bad)} (its autograd in float64); give cases where it is defined (inputs=, shapes=) or a "
            "reference that is"
        )
    if not _reproduces(traced, out, direct):
        traced = trace(setup.reference, arrays, names, case.constants, dout64, cached=False)
        if not _reproduces(traced, out, direct):
            raise ValueError(
                f"the reference ({setup.reference_label}) gives other values when traced than when run: is it "
                "random, or does it read global state?"
            )
    if setup.builtin is not None and setup.info is not None:
        traced = _with_hand_algorithm(traced, setup, arrays, names, case.constants, dout64)
    return traced, dout


@functools.cache
def _algorithm(layer: Any) -> Callable[..., Any]:
    """A built-in's own forward and hand-derived backward as one algorithm (for its rounding terms)."""

    def algorithm(arrays: dict[str, torch.Tensor], dout: torch.Tensor, constants: Mapping[str, Any]) -> Any:
        return layer.forward(**arrays, **constants), layer.backward(dout, **arrays, **constants)

    return algorithm


def _with_hand_algorithm(
    traced: Traced,
    setup: LayerSetup,
    arrays: Mapping[str, torch.Tensor],
    names: tuple[str, ...],
    constants: Mapping[str, Any],
    dout: torch.Tensor,
) -> Traced:
    """The rounding terms of the built-in's hand-derived algorithm beside autograd's of its twin,
    entry by entry the larger: a right backward may be either (FlashAttention's D = rowsum(δ_O ∘ O)
    rounds other terms than autograd's softmax backward). Where it cannot be traced, autograd's alone."""
    to = dict(setup.names)
    algorithms = (_algorithm(setup.builtin), *(setup.info.algorithms if setup.info is not None else ()))
    for algorithm in algorithms:
        try:
            hand = trace_algorithm(
                algorithm,
                {to.get(k, k): v for k, v in arrays.items()},
                [to.get(k, k) for k in names],
                {to.get(k, k): c for k, c in constants.items()},
                dout,
            )
        except Exception:
            continue
        traced = _larger(traced, hand, to, names)
    return traced


def _larger(traced: Traced, hand: Traced, to: Mapping[str, str], names: tuple[str, ...]) -> Traced:
    """``traced`` with each term the larger of its own and ``hand``'s (in the built-in's names)."""
    back = {"out": "out", **{to.get(k, k): k for k in names}}
    terms = {back[k]: torch.maximum(traced.terms[back[k]], t) for k, t in hand.terms.items() if k in back}
    under = {back[k]: torch.maximum(traced.underflows[back[k]], t) for k, t in hand.underflows.items() if k in back}
    return replace(traced, terms={**traced.terms, **terms}, underflows={**traced.underflows, **under})


def _autograd(
    setup: LayerSetup, arrays: dict[str, torch.Tensor], names: tuple[str, ...], constants: Any, dout: torch.Tensor
) -> dict[str, torch.Tensor]:
    leaves = {k: (v.detach().clone().requires_grad_(True) if k in names else v) for k, v in arrays.items()}
    out = setup.reference(**leaves, **constants)
    grads = torch.autograd.grad(out, [leaves[k] for k in names], dout, allow_unused=True, materialize_grads=True)
    return dict(zip(names, grads))


GUARD = 2.0**-26  # of an array's scale: far above float64's rounding, far below another branch's change


def _reproduces(traced: Traced, out: torch.Tensor, direct: dict[str, torch.Tensor]) -> bool:
    """The traced graph's values are the reference's as torch runs it (its own kernels, which round
    their own way: a fused layer norm's x̂ at D = 1 is 1e-14, not 0), within ``GUARD`` of the case's
    scale plus the traced graph's float64 rounding."""
    u = unit_roundoff(torch.float64)
    pairs = [("out", traced.out, out), *((k, traced.grads[k], g) for k, g in direct.items())]
    # the case's scale, not each array's: an array that is 0 in exact arithmetic (δ_x of a row with one
    # key) is rounding noise in torch's kernel, far below any branch's change
    scale = max((float(b.abs().max()) for _, _, b in pairs if b.numel()), default=0.0)
    return all(bool(((a - b).abs() <= GUARD * scale + 4 * u * traced.terms[k]).all()) for k, a, b in pairs if b.numel())


def judge(setup: LayerSetup, draw: LayerDraw, arrays: str, device: str, dtype: str) -> LayerOutcome:
    """The user's forward and backward on ``draw``, against the reference within the rounding bound."""
    case = draw.case
    what = "backward"
    traced, dout = _reference(setup, draw, dtype)
    x, params = _handed(case, arrays, device)
    try:
        out = setup.forward(x, **params)
    except Exception as exc:
        return LayerOutcome(
            "crash",
            draw,
            "forward",
            detail=_crash(exc, "forward", _call("forward", case, params, setup.convention)),
            traced=traced,
            dout=dout,
            dtype=dtype,
        )
    x, params = _handed(case, arrays, device)
    try:
        grads = setup.backward(hand_out(dout, arrays, device), x, **params)
    except Exception as exc:
        detail = _crash(exc, "backward", _call("backward", case, params, setup.convention))
        return LayerOutcome("crash", draw, what, detail=detail, traced=traced, dout=dout, dtype=dtype)
    names = setup.differentiated(case)
    problem = _grads_problem(grads, names, setup, case)
    if problem:
        return LayerOutcome("type", draw, what, detail=problem, traced=traced, dout=dout, dtype=dtype)
    # without a reference (finite differences of the Function itself) the forward has nothing to meet
    values = {**({} if setup.fd else {"out": _numpy64(out)}), **{k: _numpy64(grads[k]) for k in names}}
    expected = {"out": traced.out, **traced.grads}
    allowed = {k: traced.bound(k, np.dtype(dtype)) for k in values}
    comparison = compare(
        list(values),
        list(values.values()),
        [expected[k] for k in values],
        [allowed[k] for k in values],
        title=f"forward and backward against {setup.reference_label} ({dtype}; bound: the rounding model)",
        conventions=setup.info.convention if setup.info is not None else (),
    )
    kind = "agree" if comparison.ok else "mismatch"
    detail = ""
    if kind == "agree":
        scale = max((float(g.abs().max()) for g in traced.grads.values() if g.numel()), default=0.0)
        widest = max((float(allowed[k].max()) for k in names if allowed[k].numel()), default=0.0)
        if scale > 0 and widest > UNINFORMATIVE * scale:
            kind = "not judged"
            detail = (
                f"the rounding bound of a right backward in {dtype} exceeds 2^-10 of the gradients' scale "
                f"(a regime where {dtype} cannot tell right from wrong)"
            )
    return LayerOutcome(kind, draw, what, comparison, detail, values=values, traced=traced, dout=dout, dtype=dtype)


def _handed(case: LayerCase, arrays: str, device: str) -> tuple[Any, dict[str, Any]]:
    """Fresh copies of the case's arrays, and every argument after x in the drawn order."""
    mine = {k: hand_out(v, arrays, device) for k, v in case.params.items()}
    both = {**mine, **case.constants}
    order = case.order or tuple(both)
    return hand_out(case.x, arrays, device), {k: both[k] for k in order}


def _reference(setup: LayerSetup, draw: LayerDraw, dtype: str) -> tuple[Traced, np.ndarray]:
    case = draw.case
    arrays = {k: torch.from_numpy(np.array(v)) for k, v in case.arrays.items()}
    try:
        with torch.no_grad():
            probe = setup.reference(
                **{k: (v.double() if v.is_floating_point() else v) for k, v in arrays.items()}, **case.constants
            )
    except Exception as exc:
        overridden = f" (constants= gave {sorted(setup.constants)} over the draw's)" if setup.constants else ""
        raise ValueError(
            f"the reference ({setup.reference_label}) cannot run on the drawn case {case!r}{overridden}: "
            f"{_crash(exc, 'it')}"
        ) from None
    dout = draw.dout(tuple(probe.shape), np.dtype(dtype))
    return reference_of(setup, case, dout)


def _grads_problem(grads: Any, names: tuple[str, ...], setup: LayerSetup, case: LayerCase) -> str:
    """Why the backward's result cannot be compared, or ""."""
    if not isinstance(grads, Mapping):
        return f"backward must return a dict of gradients by name ({', '.join(names)}), got {type(grads).__name__}"
    missing = [k for k in names if grads.get(k) is None]
    if missing:
        return f"backward gave no gradient for {missing} (it must give every differentiated array: {list(names)})"
    unknown = sorted(set(grads) - set(case.arrays))
    if unknown:
        return f"backward gave gradients for {unknown}, which are not arrays of the layer ({sorted(case.arrays)})"
    given = sorted(k for k in grads if k not in names and grads[k] is not None)
    if given:
        return f"backward gave gradients for {given}, which are not differentiated (nondiff, or integer): give None"
    for k in names:
        shape = tuple(getattr(grads[k], "shape", ()))
        if shape != tuple(case.arrays[k].shape):
            return f"backward's gradient of {k!r} has shape {shape}, expected {tuple(case.arrays[k].shape)} (the shape of {k})"
    return ""
