"""Which sums are computed without rounding: the entries of ``I = u @ W + b`` that every
implementation gets exactly, in any order, so a ReLU input of exactly 0 there is no ambiguity.

A sum of products is exact when every product and every partial sum is representable. If every
entry of ``u`` is a multiple of :math:`2^{-k_u}`, of ``W`` of :math:`2^{-k_W}` and of ``b`` of
:math:`2^{-k_b}`, every product and partial sum is a multiple of :math:`2^{-K}`,
:math:`K = \\max(k_u + k_W, k_b)`, and no larger in magnitude than :math:`S = \\sum_i |u_i W_i| + |b|`;
with a p-bit significand (24 for float32, 53 for float64) all of them are representable when
:math:`S\\,2^K < 2^p`. The strategies' grid values (multiples of 1/4 scaled by powers of two, ReLU and
identity layers keeping them dyadic) meet this through several layers.
"""

from __future__ import annotations

import numpy as np

__all__ = ["exact_entries", "significand_bits"]


def significand_bits(dtype: np.dtype) -> int:
    """24 for float32, 53 for float64."""
    return int(np.finfo(dtype).nmant) + 1


def _exponent(a: np.ndarray) -> float:
    """The smallest k with ``a * 2**k`` integral (``-inf`` for an all-zero array)."""
    nz = np.abs(a[a != 0])
    if nz.size == 0:
        return -np.inf
    m, e = np.frexp(nz)  # nz = m 2^e, m in [0.5, 1)
    mantissa = (m * 2.0**53).astype(np.int64)  # exact: float64 has 53 significant bits
    lowest = np.log2((mantissa & -mantissa).astype(np.float64))  # the lowest set bit of each
    return float(np.max(53 - e - lowest))


def exact_entries(u: np.ndarray, W: np.ndarray, b: np.ndarray | None, e_u: np.ndarray, bits: int) -> np.ndarray:
    """(N, out) booleans: the entries of ``u @ W + b`` computed exactly with a ``bits``-bit significand,
    given that ``u`` carries the error magnitudes ``e_u`` (an entry fed by an inexact input is not exact)."""
    absW = np.abs(W)
    S = np.abs(u) @ absW + (0 if b is None else np.abs(b))
    K = max(_exponent(u) + _exponent(W), -np.inf if b is None else _exponent(b))
    if K == -np.inf:
        representable = np.ones(S.shape, dtype=bool)
    elif K > 126:  # below float32's normal range: leave it to the rounding model
        representable = np.zeros(S.shape, dtype=bool)
    else:
        representable = S * 2.0**K < 2.0**bits
    return representable & (e_u @ absW == 0)
