r"""Layers that select rather than combine: an embedding lookup and dropout with a given mask.

Neither differentiates its integer or boolean argument (indices, mask): the backward returns None
for it. The embedding's weight gradient is a one-hot matrix product, so a row looked up several
times gets the sum of every occurrence's δ on any array library (no scatter-add such as NumPy's
``np.add.at``, which the array API does not have).
"""

from __future__ import annotations

import numbers

from .._xp import Array, device, holds, namespace
from .layer import Layer

__all__ = ["DROPOUT", "EMBEDDING", "LAYERS_HERE", "dropout", "dropout_backward", "embedding", "embedding_backward"]


def _check_dout(dout: Array, shape: tuple[int, ...]) -> None:
    if tuple(dout.shape) != shape:
        raise ValueError(f"dout must have the output's shape {shape}, got shape {tuple(dout.shape)}")


# ------------------------------------------------------------------------------------------ embedding


def _check_embedding(x: Array, weight: Array) -> None:
    xp = namespace(x, weight)
    if not xp.isdtype(x.dtype, "integral"):
        raise TypeError(f"x must hold integer indices (int64, as torch's embedding), got dtype {x.dtype}")
    if len(x.shape) not in (1, 2):
        raise ValueError(f"x must have shape (N,) or (N, T), got shape {tuple(x.shape)}")
    if len(weight.shape) != 2:
        raise ValueError(f"weight must have shape (V, E), got shape {tuple(weight.shape)}")
    V = weight.shape[0]
    if holds(xp.any((x < 0) | (x >= V))):
        raise ValueError(
            f"x must hold indices in [0, {V}) (V = weight's rows), got values from {int(xp.min(x))} to {int(xp.max(x))}"
        )


def embedding(x: Array, weight: Array) -> Array:
    r"""out = W[x]: row x[n] (or x[n, t]) of W for every index.

    Args:
        x: integer indices, shape ``(N,)`` or ``(N, T)``, each in ``[0, V)``.
        weight: W, shape ``(V, E)``.

    Returns:
        out, shape ``(N, E)`` or ``(N, T, E)``.

    Example:
        >>> import numpy as np
        >>> embedding(np.array([2, 0]), np.arange(6.0).reshape(3, 2)).tolist()
        [[4.0, 5.0], [0.0, 1.0]]
    """
    _check_embedding(x, weight)
    xp = namespace(x, weight)
    rows = xp.take(weight, xp.reshape(x, (-1,)), axis=0)
    return xp.reshape(rows, (*x.shape, weight.shape[1]))


def embedding_backward(dout: Array, x: Array, weight: Array) -> dict[str, Array | None]:
    r"""δ through out = W[x]: every occurrence of index v adds its δ row to row v of δ_W.

    Shapes: x flattened to M = N (or N·T) indices, W (V, E), δ = dout (*x.shape, E), flattened to
    (M, E); H is the one-hot matrix of the indices::

        H[m, v] = 1 if x[m] = v else 0      (M, V)
        δ_W     = Hᵀ δ                      (V, E), summed over the M lookups (repeated indices add up)
        δ_x     = None                      (integer indices are not differentiated)

    Returns:
        ``{"x": None, "weight": δ_W}``.
    """
    _check_embedding(x, weight)
    V, E = weight.shape
    _check_dout(dout, (*x.shape, E))
    xp = namespace(dout, x, weight)
    idx = xp.reshape(x, (-1,))
    delta = xp.reshape(dout, (-1, E))
    H = xp.astype(xp.expand_dims(idx, 1) == xp.arange(V, dtype=idx.dtype, device=device(idx)), weight.dtype)
    return {"x": None, "weight": xp.matmul(H.T, delta)}


# ------------------------------------------------------------------------------------------ dropout


def _keep_scale(p: float) -> float:
    """1 / (1 - p), computed in double as torch's native_dropout (``float(1.0 / (1.0 - p))``)."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"p must be a real number in [0, 1), got {p!r}")
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(
            f"p must be in [0, 1), got {p!r} (p = 1 is refused: it drops everything and 1 / (1 - p) is "
            "infinite; torch returns zeros there)"
        )
    return 1.0 / (1.0 - float(p))


def _check_mask(x: Array, mask: Array) -> None:
    xp = namespace(x, mask)
    if not xp.isdtype(mask.dtype, "bool"):
        raise TypeError(f"mask must be a bool array (True = kept), got dtype {mask.dtype}")
    if tuple(mask.shape) != tuple(x.shape):
        raise ValueError(f"mask must have x's shape {tuple(x.shape)}, got shape {tuple(mask.shape)}")


def dropout(x: Array, mask: Array, *, p: float = 0.5) -> Array:
    r"""out = x ⊙ m / (1 - p): the kept entries scaled up so that the expected output is x.

    The mask is given (torch's functional draws its own); the formula is torch's native_dropout's
    with that mask, ``x * m * (1 / (1 - p))``, 1 / (1 - p) in double.

    Args:
        x: any shape.
        mask: m, bool of x's shape, True where the entry is kept.

    Keyword-only:
        p: the drop probability the scale undoes, in ``[0, 1)``.

    Returns:
        out, x's shape.
    """
    scale = _keep_scale(p)
    _check_mask(x, mask)
    xp = namespace(x, mask)
    return x * xp.astype(mask, x.dtype) * scale


def dropout_backward(dout: Array, x: Array, mask: Array, *, p: float = 0.5) -> dict[str, Array | None]:
    r"""δ through out = x ⊙ m / (1 - p): the same mask and the same scale, elementwise.

    Shapes: x, m, δ = dout all x's shape::

        δ_x = δ ⊙ m / (1 - p)       (x's shape), no reduction
        δ_m = None                  (the mask is not differentiated)

    Returns:
        ``{"x": δ_x, "mask": None}``.
    """
    scale = _keep_scale(p)
    _check_mask(x, mask)
    _check_dout(dout, tuple(x.shape))
    xp = namespace(dout, x, mask)
    return {"x": dout * xp.astype(mask, dout.dtype) * scale, "mask": None}


EMBEDDING = Layer(
    "embedding",
    embedding,
    embedding_backward,
    params=("weight",),
    shapes={"x": "N T", "weight": "V E", "out": "N T E"},
    nondiff=("x",),
    description="out = W[x], x integer indices of shape (N,) or (N, T)",
)

DROPOUT = Layer(
    "dropout",
    dropout,
    dropout_backward,
    params=("mask",),
    shapes={"x": "N D", "mask": "N D", "out": "N D"},
    constants={"p": 0.5},
    nondiff=("mask",),
    description="out = x ⊙ mask / (1 - p), the mask given (True = kept)",
)

LAYERS_HERE = (EMBEDDING, DROPOUT)
