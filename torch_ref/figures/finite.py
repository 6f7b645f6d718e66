"""Central finite differences at the failing array's worst entry, for the HTML report's table of
values (derivation, reference, finite differences), where the checked arrays are the gradient of one
scalar function of the case:

- a fully connected network's gradients (and an update's implied gradient): the exact objective, by
  :func:`torch_ref.numerics.blame.finite_difference` (float64);
- a network of layers: manual's own forward of the objective, in float64, with the case's dropout masks;
- a layer or a custom Function: the user's own forward of Σ δ_out ∘ out
  (:func:`torch_ref.layers.diagnose.forward_differences`), unless the check's reference is already that;
- a data-parallel rank's result, compared with the whole batch's gradient: that gradient's.

Every other kind says why there are none (weights after steps, an update, a Hessian-vector product,
one gradient per example). The error is each estimate's own: the difference between steps h and
2h plus the objective's rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["at_worst"]

_NOT_ONE_GRADIENT = {
    "training": "the arrays are weights after training steps, not a gradient",
    "network-training": "the arrays are weights after training steps, not a gradient",
    "hvp": "the arrays are Hessian-vector products; their reference is exact forward-over-reverse autograd",
    "gnvp": "the arrays are Gauss-Newton-vector products; their reference is exact autograd",
    "per-example": "the arrays hold one gradient per example",
    "network-per-example": "the arrays hold one gradient per example",
    "deltas": "the arrays are the layers' deltas, not parameter gradients",
    "input": "the array is the gradient with respect to the input",
    "update": "the arrays compared are updated weights, W − lr·∇E, where finite differences estimate ∇E",
}


def at_worst(kind: str, v: Any, name: str, index: tuple[int, ...], extra: Any) -> dict[str, Any]:
    """``{"value", "error", "dtype"}`` at ``name[index]``, or ``{"absent": why}``."""
    why = _NOT_ONE_GRADIENT.get(kind)
    if why is not None:
        return {"absent": f"not taken for a {kind} check: {why}"}
    try:
        if kind in ("gradients", "data-parallel"):  # a rank's result is compared with the whole batch's gradient
            return _fully_connected(v, name, index)
        if kind in ("network", "network-data-parallel"):
            return _network(v, name, index)
        if kind in ("layer", "function"):
            return _layer(v, name, extra)
    except Exception as exc:  # the estimate is an aid; its failure is said, never raised over the report
        return {"absent": f"could not be taken: {type(exc).__name__}: {exc}"}
    return {"absent": f"not taken for a {kind} check"}


def _fully_connected(v: Any, name: str, index: tuple[int, ...]) -> dict[str, Any]:
    from ..numerics.blame import finite_difference

    case = v.case
    names = [n for n, _ in case.params.arrays()]
    if name not in names:
        return {"absent": f"{name} is not a parameter"}
    est = finite_difference(
        case.spec, case.params, np.asarray(case.X, np.float64), np.asarray(case.Y, np.float64), name, index
    )
    out: dict[str, Any] = {"value": est.value, "error": est.error, "dtype": est.dtype}
    kinked = sorted({a.name for a in case.spec.activations if a.kinks})
    if kinked:
        out["kinks"] = (
            f"the network has activations with kinks ({', '.join(kinked)}): near one, finite differences may not decide"
        )
    return out


def _network(v: Any, name: str, index: tuple[int, ...]) -> dict[str, Any]:
    case = v.case
    net = case.net
    params = {k: np.array(a, dtype=np.float64) for k, a in case.params_as(np.float64).items()}
    if name not in params:
        return {"absent": f"{name} is not a parameter"}
    X = case.X if case.X.dtype.kind == "i" else case.X.astype(np.float64)
    Y = case.Y if case.Y.dtype.kind == "i" else case.Y.astype(np.float64)
    masks = dict(case.masks) or None
    theta = float(params[name][index])
    eps = float(np.finfo(np.float64).eps)
    h = eps ** (1 / 3) * max(1.0, abs(theta))

    def f(shift: float) -> float:
        moved = dict(params)
        moved[name] = params[name].copy()
        moved[name][index] = theta + shift
        return float(net.objective(moved, X, Y, masks=masks))

    d1 = (f(h) - f(-h)) / (2 * h)
    d2 = (f(2 * h) - f(-2 * h)) / (4 * h)
    kappa = sum(int(np.size(a)) for a in params.values()) + int(np.size(X))
    error = 2 * abs(d1 - d2) + 10 * kappa * eps * max(abs(f(0.0)), 1.0) / h
    return {"value": d1, "error": error, "dtype": "float64"}


def _layer(v: Any, name: str, extra: Any) -> dict[str, Any]:
    from ..layers.diagnose import forward_differences

    setup = extra.get("setup") if isinstance(extra, dict) else None
    row = next((r for r in v.comparison.rows if r.name == name), None)
    if setup is None or row is None:
        return {"absent": "the layer's forward is not at hand"}
    if getattr(setup, "fd", False):
        return {"absent": "the check's reference is itself central finite differences of your forward"}
    found = forward_differences(v, setup, row)
    if found is None:
        return {"absent": f"the forward could not be run at {name}"}
    out: dict[str, Any] = {"value": found["value"], "error": found["error"], "dtype": "float64"}
    if found["kink"]:
        out["note"] = (
            f"one-sided differences {found['left']:.6g} (below) and {found['right']:.6g} (above) disagree: "
            "a kink or a tie, where finite differences decide nothing"
        )
    return out
