"""One compared array as the HTML report's heat map reads it: every entry's
``|difference| / tolerance`` laid out in two dimensions, as JSON-ready values.

The layout: a 2-d array as it is (rows the first index); a 1-d array (a bias) as one row; a scalar
as one cell; an array of more dimensions (a convolution's ``(out, in, kh, kw)`` weight) with its
first index as rows and the rest flattened in C order as columns. A grid larger than
:data:`MAX_ROWS` x :data:`MAX_COLS` is reduced by taking the largest share of each block (so an
entry beyond its bound never disappears), and says by how much.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["MAX_COLS", "MAX_ROWS", "grid"]

MAX_ROWS, MAX_COLS = 48, 64
MAX_VALUES = 3072  # entries up to which each cell's two values travel too (the cell's tooltip)


def _number(x: float, digits: int = 4) -> float | str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(f"{x:.{digits}g}")


def _block_max(a: np.ndarray, fr: int, fc: int) -> np.ndarray:
    """The largest entry of each ``fr`` x ``fc`` block (NaN only where a block is all NaN; inf kept)."""
    rows, cols = -(-a.shape[0] // fr), -(-a.shape[1] // fc)
    padded = np.full((rows * fr, cols * fc), np.nan)
    padded[: a.shape[0], : a.shape[1]] = a
    blocks = padded.reshape(rows, fr, cols, fc).transpose(0, 2, 1, 3).reshape(rows, cols, fr * fc)
    with np.errstate(all="ignore"):
        out = np.where(
            np.all(np.isnan(blocks), axis=2), np.nan, np.nanmax(np.where(np.isnan(blocks), -1.0, blocks), axis=2)
        )
    return out


def grid(row: Any) -> dict[str, Any] | None:
    """``row``'s heat map data (a :class:`~torch_ref.numerics.compare.Row` with ``shares``), or None
    where it has none (a shape mismatch)."""
    shares = getattr(row, "shares", None)
    if shares is None:
        return None
    a = np.asarray(shares, dtype=np.float64)
    shape = list(a.shape)
    if a.ndim == 0:
        two = a.reshape(1, 1)
    elif a.ndim == 1:
        two = a.reshape(1, -1)
    else:
        two = a.reshape(a.shape[0], -1)
    if two.size == 0:
        return None
    fr, fc = -(-two.shape[0] // MAX_ROWS), -(-two.shape[1] // MAX_COLS)
    reduced = two if (fr, fc) == (1, 1) else _block_max(two, fr, fc)
    finite = a[np.isfinite(a)]
    values = getattr(row, "values", None)
    both = {}
    if values is not None and (fr, fc) == (1, 1) and a.size <= MAX_VALUES:
        both = {
            "derivation": [_number(float(x), 7) for x in np.asarray(values[0], dtype=np.float64).ravel()],
            "reference": [_number(float(x), 7) for x in np.asarray(values[1], dtype=np.float64).ravel()],
        }
    return {
        **both,
        "shape": shape,
        "layout": "as is"
        if a.ndim == 2
        else "one row"
        if a.ndim <= 1
        else "rows: first index; columns: the rest, flattened",
        "rows": int(reduced.shape[0]),
        "cols": int(reduced.shape[1]),
        "block": [fr, fc],
        "cells": [_number(float(x)) for x in reduced.ravel()],
        "entries": int(a.size),
        "beyond": int(np.count_nonzero(finite > 1.0) + np.count_nonzero(np.isinf(a))),
        "no_bound": int(np.count_nonzero(np.isnan(a))),
    }
