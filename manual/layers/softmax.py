r"""The softmax family as layers: softmax, log-softmax and softmax cross-entropy on logits.

Each subtracts the maximum along the class axis before exponentiating, so logits of any size give
finite values (no exp overflow; a class far below the maximum gets s = 0, log s finite).
Cross-entropy takes integer class targets, as torch's ``F.cross_entropy``, and reduces over the batch
by its mean (divided by N) or its sum.
"""

from __future__ import annotations

from typing import Any

from .._xp import Array, device, holds, namespace
from .layer import Layer

__all__ = [
    "LAYERS_HERE",
    "LOG_SOFTMAX",
    "SOFTMAX",
    "SOFTMAX_CROSS_ENTROPY",
    "log_softmax",
    "log_softmax_backward",
    "softmax",
    "softmax_backward",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
]

REDUCTIONS = ("mean", "sum")


def _check_dim(x: Array, dim: int) -> None:
    ndim = len(x.shape)
    if isinstance(dim, bool) or not isinstance(dim, int) or not -ndim <= dim < ndim:
        raise ValueError(f"dim must be an int in [{-ndim}, {ndim}) for x of shape {tuple(x.shape)}, got {dim!r}")


def _check_dout(dout: Array, shape: tuple[int, ...]) -> None:
    if tuple(dout.shape) != shape:
        raise ValueError(f"dout must have the output's shape {shape}, got shape {tuple(dout.shape)}")


def _shifted(xp: Any, x: Array, dim: int) -> Array:
    return x - xp.max(x, axis=dim, keepdims=True)


def _softmax(xp: Any, x: Array, dim: int) -> Array:
    e = xp.exp(_shifted(xp, x, dim))
    return e / xp.sum(e, axis=dim, keepdims=True)


def _log_softmax(xp: Any, x: Array, dim: int) -> Array:
    z = _shifted(xp, x, dim)
    return z - xp.log(xp.sum(xp.exp(z), axis=dim, keepdims=True))


# ------------------------------------------------------------------------------------------ softmax


def softmax(x: Array, *, dim: int = -1) -> Array:
    r"""s = exp(x) / Σ_c exp(x_c) along ``dim``.

    Args:
        x: logits, shape ``(N, C)`` (any shape; ``dim`` is the class axis).

    Keyword-only:
        dim: the axis normalised over.

    Returns:
        s, x's shape.
    """
    _check_dim(x, dim)
    xp = namespace(x)
    return _softmax(xp, x, dim)


def softmax_backward(dout: Array, x: Array, *, dim: int = -1) -> dict[str, Array | None]:
    r"""δ through s = softmax(x): ∂s_j/∂x_k = s_j (1[j = k] - s_k), the full Jacobian, not its diagonal.

    Shapes: x, s, δ = dout (N, C) with the class axis ``dim``; the sum runs over that axis only::

        s   = exp(x - max x) / Σ_c exp(x_c - max x)      (N, C)
        δ_x = s ⊙ (δ - Σ_c δ_c s_c)                      (N, C), the sum kept as (N, 1) and broadcast

    Returns:
        ``{"x": δ_x}``.
    """
    _check_dim(x, dim)
    _check_dout(dout, tuple(x.shape))
    xp = namespace(dout, x)
    s, delta = _softmax(xp, x, dim), dout
    return {"x": s * (delta - xp.sum(delta * s, axis=dim, keepdims=True))}


# ------------------------------------------------------------------------------------------ log_softmax


def log_softmax(x: Array, *, dim: int = -1) -> Array:
    r"""log s = x - log Σ_c exp(x_c) along ``dim``, computed from x - max x.

    Args:
        x: logits, shape ``(N, C)`` (any shape; ``dim`` is the class axis).

    Keyword-only:
        dim: the axis normalised over.

    Returns:
        log s, x's shape.
    """
    _check_dim(x, dim)
    xp = namespace(x)
    return _log_softmax(xp, x, dim)


def log_softmax_backward(dout: Array, x: Array, *, dim: int = -1) -> dict[str, Array | None]:
    r"""δ through log s = log softmax(x): ∂(log s_j)/∂x_k = 1[j = k] - s_k.

    Shapes: x, s, δ = dout (N, C) with the class axis ``dim``; the sum runs over that axis only::

        s   = exp(x - max x) / Σ_c exp(x_c - max x)      (N, C)
        δ_x = δ - s ⊙ Σ_c δ_c                            (N, C), the sum kept as (N, 1) and broadcast

    Returns:
        ``{"x": δ_x}``.
    """
    _check_dim(x, dim)
    _check_dout(dout, tuple(x.shape))
    xp = namespace(dout, x)
    s, delta = _softmax(xp, x, dim), dout
    return {"x": delta - s * xp.sum(delta, axis=dim, keepdims=True)}


# ------------------------------------------------------------------------------------------ cross-entropy


def _check_cross_entropy(x: Array, target: Array, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if len(x.shape) != 2:
        raise ValueError(f"x must be logits of shape (N, C), got shape {tuple(x.shape)}")
    xp = namespace(x, target)
    if not xp.isdtype(target.dtype, "integral"):
        raise TypeError(
            f"target must hold integer class indices (int64, as torch's cross_entropy), got dtype {target.dtype}"
        )
    N, C = x.shape
    if tuple(target.shape) != (N,):
        raise ValueError(f"target must have shape (N,) = ({N},), got shape {tuple(target.shape)}")
    if holds(xp.any((target < 0) | (target >= C))):
        raise ValueError(
            f"target must hold classes in [0, {C}) (C = x's second dim), got values from "
            f"{int(xp.min(target))} to {int(xp.max(target))}"
        )


def _one_hot(xp: Any, target: Array, C: int, dtype: Any) -> Array:
    classes = xp.arange(C, dtype=target.dtype, device=device(target))
    return xp.astype(xp.expand_dims(target, 1) == classes, dtype)


def softmax_cross_entropy(x: Array, target: Array, *, reduction: str = "mean") -> Array:
    r"""E = -Σ_n log s[n, t_n] (divided by N for ``"mean"``), s = softmax(x) over the classes.

    Args:
        x: logits, shape ``(N, C)``.
        target: t, integer class indices, shape ``(N,)``, each in ``[0, C)``.

    Keyword-only:
        reduction: ``"mean"`` (the sum divided by N, torch's default) or ``"sum"``.

    Returns:
        E, shape ``()``.
    """
    _check_cross_entropy(x, target, reduction)
    xp = namespace(x, target)
    N, C = x.shape
    Y = _one_hot(xp, target, C, x.dtype)
    E = -xp.sum(Y * _log_softmax(xp, x, -1))
    # asarray: NumPy's sum gives a NumPy scalar; the layer returns a 0-d array on either library
    return xp.asarray(E / N if reduction == "mean" else E)


def softmax_cross_entropy_backward(
    dout: Array, x: Array, target: Array, *, reduction: str = "mean"
) -> dict[str, Array | None]:
    r"""δ through E = -Σ_n log s[n, t_n] (/ N for the mean): softmax and log cancel to s - y.

    Shapes: x, s, y (N, C); t (N,); δ = dout a 0-d array (E is a scalar)::

        y   = one_hot(t)                 (N, C)
        s   = softmax(x) over C          (N, C)
        δ_x = δ (s - y) / N              (N, C), reduction "mean"
        δ_x = δ (s - y)                  (N, C), reduction "sum"
        δ_t = None                       (integer targets are not differentiated)

    Returns:
        ``{"x": δ_x, "target": None}``.
    """
    _check_cross_entropy(x, target, reduction)
    _check_dout(dout, ())
    xp = namespace(dout, x, target)
    N, C = x.shape
    y = _one_hot(xp, target, C, x.dtype)
    s, delta = _softmax(xp, x, -1), dout
    d = delta * (s - y)
    return {"x": d / N if reduction == "mean" else d, "target": None}


SOFTMAX = Layer(
    "softmax",
    softmax,
    softmax_backward,
    shapes={"x": "N C", "out": "N C"},
    constants={"dim": -1},
    description="s = exp(x) / Σ_c exp(x_c) along dim",
)

LOG_SOFTMAX = Layer(
    "log_softmax",
    log_softmax,
    log_softmax_backward,
    shapes={"x": "N C", "out": "N C"},
    constants={"dim": -1},
    description="log s = x - log Σ_c exp(x_c) along dim",
)

SOFTMAX_CROSS_ENTROPY = Layer(
    "softmax_cross_entropy",
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
    params=("target",),
    shapes={"x": "N C", "target": "N", "out": ""},
    constants={"reduction": "mean"},
    nondiff=("target",),
    description="E = -Σ_n log softmax(x)[n, t_n], mean (/ N) or sum over the batch",
)

LAYERS_HERE = (SOFTMAX, LOG_SOFTMAX, SOFTMAX_CROSS_ENTROPY)
