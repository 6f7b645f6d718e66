"""Why a layer's backward parts from autograd, said only where verified on the failing case.

Three sources, in this order:

- the built-in's catalogue of published mistakes (:class:`~torch_ref.layers.info.Mistake`): each is
  run on the case in float64 and named only when the user's whole result equals it within the same
  bound the check uses;
- the generic per-array patterns, for any layer: a constant factor (a 1/N, a 2, a sign), the
  transpose, nothing computed (zeros), the δ arriving from above added or left out once (a skip
  connection's term), another array's gradient in its place;
- finite differences of the user's own forward (float64), at the worst entry: which of the two
  sides they support.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .judge import LayerOutcome, _numpy64
from .rounding import unit_roundoff

__all__ = ["blame", "catalogue", "forward_differences", "patterns"]

# factors a derivation gets wrong by: a sign, a 2 or 1/2, and the sizes of the case (a mean's 1/N)
_FACTORS = (-1.0, 2.0, 0.5, -2.0, -0.5)


def _fits(actual: np.ndarray, expected: np.ndarray, allowed: np.ndarray) -> bool:
    return actual.shape == expected.shape and bool(np.all(np.abs(actual - expected) <= allowed))


def catalogue(v: LayerOutcome, setup: Any) -> list[str]:
    """The catalogue's mistakes whose result the user's matches on this case, every array at once."""
    info, traced = setup.info, v.traced
    if info is None or traced is None or not info.mistakes:
        return []
    case = v.case.case
    back = {b: u for u, b in setup.names.items()}
    arrays = {setup.names.get(k, k): torch.from_numpy(_to64(a)) for k, a in case.arrays.items()}
    constants = {setup.names.get(k, k): c for k, c in case.constants.items()}
    dout = torch.from_numpy(np.array(v.dout, dtype=np.float64))
    names = [k for k in v.values if k != "out"]
    failing = [r.name for r in v.comparison.rows if not r.ok and r.name != "out"] if v.comparison is not None else []
    whole, partial = [], []
    for mistake in info.mistakes:
        try:
            rest = {k: a for k, a in arrays.items() if k != "x"}
            wrong = mistake.backward(dout, arrays["x"], **rest, **constants)
        except Exception:
            continue
        wrong = {back.get(k, k): w for k, w in wrong.items() if w is not None}
        fits = [k for k in names if k in wrong and _fits_mistake(v, k, _numpy64(wrong[k]), traced)]
        # a mistake that gives the right result on this case explains nothing here
        if all(_fits_mistake(v, k, _numpy64(traced.grads[k]), traced, _numpy64(wrong[k])) for k in names if k in wrong):
            continue
        formula = f": {mistake.formula}" if mistake.formula else ""
        source = [f"  published: {mistake.source}"] if mistake.source else []
        if len(fits) == len(names):
            whole += [
                f"Diagnosis: {mistake.name}{formula}; it reproduces every gradient of this case within the bound",
                *source,
            ]
        elif any(k in fits for k in failing) and any(k not in fits for k in failing):
            # the mistake explains some failing arrays; the others part some other way (two mistakes at once)
            mine = [k for k in failing if k in fits]
            partial += [
                f"Diagnosis: {', '.join(mine)}: as '{mistake.name}'{formula} (that mistake reproduces "
                f"{', '.join(mine)} of this case within the bound, not {', '.join(k for k in failing if k not in fits)})",
                *source,
            ]
    return whole or partial


def _fits_mistake(v: LayerOutcome, name: str, wrong: np.ndarray, traced: Any, mine: Any = None) -> bool:
    """The user's gradient (or ``mine``) equals the mistake's within the check's bound, plus the
    rounding of the two evaluations at the size of the values compared (the mistake's own formula
    rounds too, in places where the right one is exact: a masked entry)."""
    mine = v.values[name] if mine is None else mine
    slack = 8 * (unit_roundoff(np.dtype(v.dtype)) + unit_roundoff(np.float64)) * (np.abs(mine) + np.abs(wrong))
    return _fits(mine, wrong, _numpy64(traced.bound(name, np.dtype(v.dtype))) + slack)


def _to64(a: np.ndarray) -> np.ndarray:
    return np.array(a, dtype=np.float64) if np.issubdtype(a.dtype, np.floating) else np.array(a)


def patterns(v: LayerOutcome, theirs: str = "autograd's") -> list[str]:
    """The generic per-array patterns verified on the case, for each failing gradient."""
    traced = v.traced
    if traced is None or v.comparison is None:
        return []
    dtype = np.dtype(v.dtype)
    dout = np.array(v.dout, dtype=np.float64)
    expected = {"out": _numpy64(traced.out), **{k: _numpy64(g) for k, g in traced.grads.items()}}
    lines = []
    for row in v.comparison.rows:
        if row.ok or row.note:
            continue
        name = row.name
        a, e = v.values[name], expected[name]
        tol = _numpy64(traced.bound(name, dtype))
        said = _pattern(name, a, e, tol, dout, expected, v, theirs)
        lines.append(
            f"Diagnosis: {said}"
            if said
            else f"Diagnosis: {name}: no known pattern fits (largest relative difference {row.max_rel:.3g})"
        )
    return lines


def _pattern(
    name: str,
    a: np.ndarray,
    e: np.ndarray,
    tol: np.ndarray,
    dout: np.ndarray,
    expected: Mapping[str, np.ndarray],
    v: LayerOutcome,
    theirs: str,
) -> str:
    for other, o in expected.items():
        if other not in (name, "out") and o.shape == a.shape and _fits(a, o, tol) and not _fits(a, e, tol):
            return f"{name} equals {theirs} gradient of {other}: the two swapped"
    if not np.any(a) and np.any(e):
        return f"{name} is all zeros where {theirs} is not"
    case = v.case.case
    sizes = sorted({int(s) for arr in case.arrays.values() for s in arr.shape if s > 1})
    # a factor, a sign, a transpose explain something only where autograd's is beyond rounding of 0
    live = bool(np.any(np.abs(e) > tol))
    for c in (*_FACTORS, *(float(n) for n in sizes), *(1.0 / n for n in sizes)) if live else ():
        if _fits(a, c * e, tol * max(1.0, abs(c))):
            what = (
                "the sign flipped"
                if c == -1
                else f"a factor {c:.6g}" + (f" (1/{round(1 / c)})" if 0 < c < 1 and round(1 / c) in sizes else "")
            )
            return f"{name} equals {theirs} times {c:.6g}: {what}"
    if live and a.ndim == 2 and a.shape[0] == a.shape[1] and _fits(a, e.T, tol.T) and not _fits(a, e, tol):
        return f"{name} equals {theirs} transposed"
    if name != "out" and dout.shape == e.shape:
        if _fits(a, e - dout, tol + 4 * unit_roundoff(np.float64) * np.abs(dout)):
            return f"{name} equals {theirs} minus δ_out: the δ passed straight through (an identity or skip path) is missing"
        if _fits(a, e + dout, tol + 4 * unit_roundoff(np.float64) * np.abs(dout)):
            return f"{name} equals {theirs} plus δ_out: an identity path's δ counted twice"
    return ""


def forward_differences(v: LayerOutcome, setup: Any, row: Any) -> dict[str, float] | None:
    """Central differences of the user's own forward (float64) of Σ δ_out ∘ out at ``row``'s worst
    entry: ``{"value", "error", "left", "right", "kink"}`` (the error from steps h and 2h plus
    rounding; ``kink`` where the one-sided differences disagree by far more than a smooth function's),
    or None where the forward cannot be run there."""
    case = v.case.case
    arrays = {k: _to64(a) for k, a in case.arrays.items()}
    if row.name not in arrays or not row.worst or v.dout is None:
        return None
    dout = np.array(v.dout, dtype=np.float64)
    order = case.order or (*case.params, *case.constants)

    def objective(shift: float) -> float:
        moved = {k: a.copy() for k, a in arrays.items()}
        moved[row.name][row.worst] += shift
        both = {**moved, **case.constants}
        out = setup.forward(both.pop("x"), **{k: both[k] for k in order})
        return float(np.sum(dout * _numpy64(out)))

    z = float(arrays[row.name][row.worst])
    h = unit_roundoff(np.float64) ** (1 / 3) * max(1.0, abs(z))
    h = (z + h) - z
    try:
        f = {s: objective(s) for s in (0.0, h, -h, 2 * h, -2 * h)}
    except Exception:
        return None
    d1 = (f[h] - f[-h]) / (2 * h)
    d2 = (f[2 * h] - f[-2 * h]) / (4 * h)
    scale = max(abs(f[h]), abs(f[-h]), 1e-300)
    err = abs(d1 - d2) + 4 * unit_roundoff(np.float64) * scale / h
    # one-sided differences that disagree by far more than a smooth function's: a kink or a tie there,
    # where central differences give the mean of the two sides and decide nothing
    right, left = (f[h] - f[0.0]) / h, (f[0.0] - f[-h]) / h
    right2, left2 = (f[2 * h] - f[0.0]) / (2 * h), (f[0.0] - f[-2 * h]) / (2 * h)
    one_sided = abs(right - right2) + abs(left - left2) + 8 * unit_roundoff(np.float64) * scale / h
    kink = abs(right - left) > 8 * one_sided + err
    return {"value": d1, "error": err, "left": left, "right": right, "kink": float(kink)}


def blame(v: LayerOutcome, setup: Any) -> str:
    """Finite differences of the user's own forward (float64, central) of Σ δ_out ∘ out, at the worst
    entry of the first failing gradient: which side they support, with their own error estimate
    (the difference between steps h and 2h, plus rounding)."""
    if v.comparison is None or v.traced is None or setup.fd:  # with finite differences as the reference: said
        return ""
    row = next((r for r in v.comparison.rows if not r.ok and r.name != "out" and not r.note), None)
    if row is None or not row.worst:
        return ""
    fd = forward_differences(v, setup, row)
    if fd is None:
        return ""
    d1, err, left, right = fd["value"], fd["error"], fd["left"], fd["right"]
    mine, theirs = float(v.values[row.name][row.worst]), float(_numpy64(v.traced.grads[row.name])[row.worst])
    at = f"{row.name}{list(row.worst)}"
    if fd["kink"]:
        return (
            f"Blame: the forward is not differentiable at {at} (one-sided differences {left:.6g} from below, "
            f"{right:.6g} from above: a kink or a tie): finite differences do not decide it there; autograd "
            f"{theirs:.6g}, the backward {mine:.6g}"
        )
    allowed = float(_numpy64(v.traced.bound(row.name, np.dtype(v.dtype)))[row.worst])
    head = f"Blame: finite differences of forward at {at} give {d1:.6g} (±{err:.1g}); autograd {theirs:.6g}; the backward {mine:.6g}"
    if abs(d1 - theirs) <= err and abs(d1 - mine) > err + allowed:
        return head + ": they side with autograd, so the backward is wrong there"
    if abs(d1 - mine) <= err and abs(d1 - theirs) > err + allowed:
        return head + ": they side with the backward: forward and the reference compute different functions"
    if abs(d1 - mine) <= err + allowed:
        return (
            head + f": within its bound ({allowed:.1g}) of them at this entry; the check parts elsewhere or by rounding"
        )
    return head + ": they do not decide it at this step"


def explain(v: LayerOutcome, setup: Any) -> list[str]:
    """Every diagnosis line of a mismatch: the catalogue's, else the generic patterns; then the blame."""
    lines = catalogue(v, setup)
    if not lines:
        lines = patterns(v, "finite differences'" if setup.fd else "autograd's")
    b = blame(v, setup)
    return [*lines, *([b] if b else [])]
