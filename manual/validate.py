"""Validation at the public boundary: every malformed input becomes a ValueError or TypeError that
names the argument, the value received and what is accepted, before any arithmetic happens."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np

from ._xp import Array, device, is_numpy_array, is_torch_array, namespace
from .params import Params
from .spec import Spec

__all__ = ["check_inputs", "check_lr", "check_params"]

_FLOAT_DTYPES = ("float32", "float64")


_DTYPE_NAMES: dict[Any, str] = {}


def _dtype_name(a: Array) -> str:
    """``"float64"`` for NumPy's float64 and torch's alike; memoised per dtype object (str() of a
    NumPy dtype costs microseconds, and validation asks for it several times per array)."""
    dtype = a.dtype
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


def _library(a: Any) -> str:
    if isinstance(a, np.ndarray) or is_numpy_array(a):  # the isinstance first: the common case, fast
        return "numpy"
    if is_torch_array(a):
        return "torch"
    return type(a).__name__


def check_lr(lr: object) -> float:
    """The learning rate as a float, or ValueError/TypeError."""
    if isinstance(lr, bool) or not isinstance(lr, Real):
        raise TypeError(f"lr must be a real number, got {lr!r} ({type(lr).__name__})")
    if not math.isfinite(float(lr)) or lr < 0:
        raise ValueError(f"lr must be a finite number >= 0, got {lr!r}")
    return float(lr)


def _check_array(name: str, a: Any, shape: tuple[int | None, ...], ref: Array | None) -> None:
    library = _library(a)
    if library not in ("numpy", "torch"):
        raise TypeError(f"{name} must be a numpy.ndarray or torch.Tensor, got {type(a).__name__}")
    if _dtype_name(a) not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {_dtype_name(a)}")
    if ref is not None:
        if library != _library(ref):
            raise TypeError(
                f"{name} is a {library} array but weights[0] is a {_library(ref)} array; "
                f"pass arrays of one library (all numpy or all torch)"
            )
        if _dtype_name(a) != _dtype_name(ref):
            raise TypeError(
                f"{name} has dtype {_dtype_name(a)} but weights[0] has {_dtype_name(ref)}; cast everything to one dtype"
            )
        if library == "torch" and device(a) != device(ref):  # a NumPy array is on the CPU
            raise ValueError(
                f"{name} is on device {device(a)} but weights[0] is on {device(ref)}; move every array to one device"
            )
    expected = tuple(shape)
    actual = tuple(a.shape)
    if len(actual) != len(expected) or any(e is not None and e != s for e, s in zip(expected, actual)):
        shown = (
            "(" + ", ".join("N" if e is None else str(e) for e in expected) + ("," if len(expected) == 1 else "") + ")"
        )
        raise ValueError(f"{name} must have shape {shown}, got {actual}")


def _host(a: Array) -> np.ndarray:
    """A NumPy view of ``a`` for building an error message (off the hot path)."""
    return np.asarray(a.detach().cpu() if hasattr(a, "detach") else a)


def _first(mask: np.ndarray) -> str:
    index = tuple(int(i) for i in np.argwhere(mask)[0])
    return f"{int(mask.sum())} entr{'y' if mask.sum() == 1 else 'ies'}, the first at {index}"


def _check_finite(name: str, a: Array) -> None:
    xp = namespace(a)
    if not bool(xp.all(xp.isfinite(a))):
        values = _host(a)
        bad = ~np.isfinite(values)
        first = values[tuple(np.argwhere(bad)[0])]
        raise ValueError(f"{name} contains NaN or infinite values ({_first(bad)}: {first}); every entry must be finite")


def check_params(spec: Spec, params: Params) -> None:
    """Check that ``params`` fits ``spec``: count, shapes, one library, dtype and device, finite values."""
    if not isinstance(spec, Spec):
        raise TypeError(f"spec must be a manual.Spec, got {type(spec).__name__}")
    if not isinstance(params, Params):
        raise TypeError(f"params must be a manual.Params, got {type(params).__name__}")
    if len(params.weights) != spec.depth:
        raise ValueError(
            f"params.weights must hold {spec.depth} arrays (one per layer of {spec}), got {len(params.weights)}"
        )
    if spec.bias and params.biases is None:
        raise ValueError(f"params.biases is None but the spec has bias=True; pass {spec.depth} bias vectors")
    if not spec.bias and params.biases is not None:
        raise ValueError("params.biases were given but the spec has bias=False; pass biases=None")
    if params.biases is not None and len(params.biases) != spec.depth:
        raise ValueError(f"params.biases must hold {spec.depth} arrays, got {len(params.biases)}")
    ref = params.weights[0]
    _check_array("weights[0]", ref, spec.shapes()[0], None)
    for l, (W, shape) in enumerate(zip(params.weights, spec.shapes())):
        _check_array(f"weights[{l}]", W, shape, ref)
        if params.biases is not None:
            _check_array(f"biases[{l}]", params.biases[l], (shape[1],), ref)
    for l, W in enumerate(params.weights):
        _check_finite(f"weights[{l}] (W{l + 1})", W)
        if params.biases is not None:
            _check_finite(f"biases[{l}] (b{l + 1})", params.biases[l])


def check_inputs(spec: Spec, params: Params, X: Array, Y: Array | None = None) -> None:
    """Check ``spec``, ``params``, ``X`` (and ``Y``) against each other.

    On top of :func:`check_params`: X is ``(N, D)`` with N >= 1, Y is ``(N, J)``, both of the weights'
    library, dtype and device, with finite values; Y as the loss's ``targets`` declare: in [0, 1]
    (``"unit"``, bce), rows on the probability simplex (``"simplex"``, ce: entries >= 0, row sums 1 to
    within ``4 * J * eps`` of the dtype), one-hot rows (``"onehot"``), or any finite values (``"real"``).
    """
    check_params(spec, params)
    ref = params.weights[0]
    D, J = spec.sizes[0], spec.sizes[-1]
    _check_array("X", X, (None, D), ref)
    if X.shape[0] == 0:
        raise ValueError("X has N = 0 examples; pass at least one row")
    _check_finite("X", X)
    if Y is not None:
        _check_array("Y", Y, (X.shape[0], J), ref)
        _check_finite("Y", Y)
        _check_targets(spec, Y)


def _check_targets(spec: Spec, Y: Array) -> None:
    """Y against the loss's declared targets (:attr:`manual.Loss.targets`)."""
    xp = namespace(Y)
    kind, name = spec.loss.targets, spec.loss.name
    if kind == "real":
        return
    if kind == "unit" and not bool(xp.all((Y >= 0) & (Y <= 1))):
        values = _host(Y)
        bad = (values < 0) | (values > 1)
        raise ValueError(f"Y must lie in [0, 1] for loss {name!r}; got {float(values[bad][0])} ({_first(bad)})")
    if kind == "onehot":
        values = _host(Y)
        bad = (values != 0) & (values != 1)
        if bad.any():
            raise ValueError(
                f"Y must be one-hot rows (entries 0 or 1) for loss {name!r}; got {float(values[bad][0])} "
                f"({_first(bad)})"
            )
        counts = values.sum(axis=-1)
        if (counts != 1).any():
            row = int(np.argmax(counts != 1))
            raise ValueError(f"Y must have exactly one 1 per row for loss {name!r}; row {row} has {int(counts[row])}")
    if kind == "simplex":
        eps = xp.finfo(Y.dtype).eps
        J = Y.shape[-1]
        if not bool(xp.all(Y >= 0)):
            values = _host(Y)
            raise ValueError(
                f"Y rows must lie on the probability simplex for loss {name!r}; got negative entries "
                f"({_first(values < 0)}: {float(values[values < 0][0])})"
            )
        worst = float(xp.max(xp.abs(xp.sum(Y, axis=-1) - 1)))
        if worst > 4 * J * eps:
            raise ValueError(
                f"Y rows must sum to 1 for loss {name!r} (probability targets); the worst row is off by {worst:.3g} "
                f"(accepted: {4 * J * eps:.3g}, 4 J eps of the dtype)"
            )
