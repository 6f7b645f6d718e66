r"""Balls (a value and an error radius) and their arithmetic, for the running error bound of the
R-passes (:mod:`torch_ref.second_order.running_error`).

A ball :math:`(\hat q, e_q)` holds :math:`|q_{\text{computed}} - q| \le e_q`. Each operation adds its
own rounding (Higham, sec. 3.1; :math:`\rho_1 = \varepsilon`, :math:`\rho_\Sigma = \varepsilon\kappa`):

.. math::
    e_{a \pm b} = e_a + e_b + \rho_1 (|\hat a| + |\hat b|), \qquad
    e_{ab} = |\hat a| e_b + |\hat b| e_a + e_a e_b + \rho_1 |\hat a \hat b|, \qquad
    e_{\sum_i a_i} = \sum_i e_{a_i} + \rho_\Sigma \sum_i |\hat a_i|
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__: list[str] = []  # private: the running error bound's arithmetic


@dataclass(frozen=True)
class _Unit:
    one: float  # one rounding (an elementwise product or sum): eps
    sum: float  # a sum of up to kappa - 5 terms, or an input's error unit: eps kappa


@dataclass(frozen=True)
class _Ball:
    v: np.ndarray  # the value
    e: np.ndarray  # the radius


def _exact(a: np.ndarray) -> _Ball:
    a = np.asarray(a, dtype=np.float64)
    return _Ball(a, np.zeros_like(a))


def _mul(a: _Ball, b: _Ball, rho: _Unit) -> _Ball:
    v = a.v * b.v
    return _Ball(v, np.abs(a.v) * b.e + np.abs(b.v) * a.e + a.e * b.e + rho.one * np.abs(v))


def _add(a: _Ball, b: _Ball, rho: _Unit, sign: float = 1.0) -> _Ball:
    v = a.v + sign * b.v
    return _Ball(v, a.e + b.e + rho.one * (np.abs(a.v) + np.abs(b.v)))


def _matmul(a: _Ball, b: _Ball, rho: _Unit) -> _Ball:
    Aa, Ab = np.abs(a.v), np.abs(b.v)
    e = Aa @ b.e + a.e @ Ab + a.e @ b.e + rho.sum * (Aa @ Ab)
    return _Ball(a.v @ b.v, e)


def _T(a: _Ball) -> _Ball:
    return _Ball(a.v.T, a.e.T)


def _rowsum(a: _Ball, rho: _Unit) -> _Ball:
    """The sum over the last axis, kept."""
    return _Ball(np.sum(a.v, axis=-1, keepdims=True), np.sum(a.e + rho.sum * np.abs(a.v), axis=-1, keepdims=True))


def _colsum(a: _Ball, rho: _Unit) -> _Ball:
    """The sum over the batch (a bias's product)."""
    return _Ball(np.sum(a.v, axis=0), np.sum(a.e + rho.sum * np.abs(a.v), axis=0))


def _softmax_jvp(O: _Ball, r: _Ball, rho: _Unit) -> _Ball:
    """y (r - sum_k y_k r_k): softmax's Jacobian (symmetric) times r, as evaluated."""
    return _mul(O, _add(r, _rowsum(_mul(O, r, rho), rho), rho, -1.0), rho)
