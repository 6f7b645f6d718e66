"""One compared array as the HTML report shows it, as JSON-ready values: every entry's
``|difference| / tolerance`` laid out in two dimensions (the heat map), its worst entry and the values
there, all read from the comparison's own arrays (:attr:`torch_ref.numerics.compare.Row.values`), so
that the heat map, the array's largest share and the worst-entry table say the same thing.

The layout: a 2-d array as it is (rows the first index); a 1-d array (a bias) as one row; a scalar as
one cell; an array of more dimensions (a convolution's ``(out, in, kh, kw)`` weight) with its first
index as rows and the rest flattened in C order as columns. A grid larger than :data:`MAX_ROWS` x
:data:`MAX_COLS` is reduced by taking the largest share of each block (so an entry beyond its bound
never disappears), and says by how much. A cell is a number (the share: 0 where the two are equal, inf
where they differ under a bound of 0), ``"nan"`` where the bound is not finite (compared with
nothing), or ``"nonfinite"`` where a value is NaN or infinite. Up to :data:`MAX_VALUES` entries of an
unreduced grid, each cell's two values travel too, for its tooltip.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["MAX_COLS", "MAX_ROWS", "MAX_VALUES", "array_fields"]

MAX_ROWS, MAX_COLS = 48, 64
MAX_VALUES = 3072


def _number(x: float, digits: int = 4) -> float | str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(f"{x:.{digits}g}")


def _two(a: np.ndarray) -> np.ndarray:
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(1, -1)
    return a.reshape(a.shape[0], -1)


def _block_max(a: np.ndarray, fr: int, fc: int) -> np.ndarray:
    """The largest entry of each ``fr`` x ``fc`` block (NaN only where a block is all NaN; inf kept)."""
    rows, cols = -(-a.shape[0] // fr), -(-a.shape[1] // fc)
    padded = np.full((rows * fr, cols * fc), np.nan)
    padded[: a.shape[0], : a.shape[1]] = a
    blocks = padded.reshape(rows, fr, cols, fc).transpose(0, 2, 1, 3).reshape(rows, cols, fr * fc)
    return np.where(np.all(np.isnan(blocks), axis=2), np.nan, np.max(np.where(np.isnan(blocks), -1.0, blocks), axis=2))


def array_fields(row: Any) -> dict[str, Any]:
    """``row``'s fields on the page (a :class:`~torch_ref.numerics.compare.Row`): its name, status and
    note; where its arrays were compared, its largest share, worst entry, the three values there and
    its heat map (``grid``)."""
    out: dict[str, Any] = {"name": row.name, "status": row.status, "note": row.note, "grid": None}
    values = getattr(row, "values", None)
    if values is None:  # a shape mismatch: nothing compared entry by entry
        out.update(share=_number(row.share), worst=[], at_worst=None)
        return out
    actual, expected, allowed = (np.asarray(x, dtype=np.float64) for x in values)
    shares = np.array(row.shares, dtype=np.float64)
    nonfinite = ~np.isfinite(actual) | ~np.isfinite(expected)
    ranked = np.where(np.isnan(shares), -1.0, np.where(nonfinite, np.inf, shares))
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(ranked)), shares.shape)) if shares.size else ()
    largest = float(ranked[worst]) if shares.size else 0.0
    out.update(
        share=_number(max(largest, 0.0), 17) if largest >= 0 else "nan",
        worst=list(worst),
        at_worst=None
        if not shares.size
        else {
            "derivation": _number(float(actual[worst]), 17),
            "reference": _number(float(expected[worst]), 17),
            "bound": _number(float(allowed[worst]), 17),
        },
        grid=_grid(shares, nonfinite, actual, expected, worst),
    )
    return out


def _grid(
    shares: np.ndarray, nonfinite: np.ndarray, actual: np.ndarray, expected: np.ndarray, worst: tuple[int, ...]
) -> dict[str, Any] | None:
    two = _two(shares)
    if two.size == 0:
        return None
    bad = _two(nonfinite)
    fr, fc = -(-two.shape[0] // MAX_ROWS), -(-two.shape[1] // MAX_COLS)
    marked = np.where(bad, np.inf, two)
    reduced = marked if (fr, fc) == (1, 1) else _block_max(marked, fr, fc)
    reduced_bad = bad if (fr, fc) == (1, 1) else _block_max(bad.astype(np.float64), fr, fc) > 0
    flat = int(np.ravel_multi_index(worst, shares.shape)) if shares.ndim else 0
    wr, wc = divmod(flat, two.shape[1])
    cells = ["nonfinite" if b else _number(float(x)) for x, b in zip(reduced.ravel(), reduced_bad.ravel(), strict=True)]
    both: dict[str, Any] = {}
    if (fr, fc) == (1, 1) and shares.size <= MAX_VALUES:
        both = {
            "derivation": [_number(float(x), 7) for x in actual.ravel()],
            "reference": [_number(float(x), 7) for x in expected.ravel()],
        }
    judged = shares[~np.isnan(shares)]
    return {
        **both,
        "shape": list(shares.shape),
        "layout": "as is"
        if shares.ndim == 2
        else "one row"
        if shares.ndim <= 1
        else "rows: first index; columns: the rest, flattened",
        "rows": int(reduced.shape[0]),
        "cols": int(reduced.shape[1]),
        "block": [fr, fc],
        "worst_cell": [wr // fr, wc // fc],
        "cells": cells,
        "entries": int(shares.size),
        "beyond": int(np.count_nonzero(judged > 1.0) + np.count_nonzero(nonfinite & np.isnan(shares))),
        "no_bound": int(np.count_nonzero(np.isnan(shares) & ~nonfinite)),
        "nonfinite": int(np.count_nonzero(nonfinite)),
    }
