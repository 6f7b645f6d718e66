r"""Affine error forms, in which a loss's cancelled output form (:attr:`manual.Loss.r_cancelled`,
``gn_cancelled``) runs unchanged for the running error bound (:mod:`torch_ref.second_order.running_error`).

A quantity is :math:`\hat q + \sum_k c_{qk} \varepsilon_k + \rho_q`, :math:`|\varepsilon_k| \le 1`,
:math:`|\rho_q| \le r_q`: its value, its first-order dependence on each input's error (one source k
per entry of y*, R{I}, R{y*}, of size that entry's radius) and a remainder (products of errors and
every rounding). The radius is :math:`\sum_k |c_{qk}| + r_q`. Why not balls: the forms cancel. At a
softmax output :math:`y^*_j` within :math:`10^{-16}` of 1, bce's
:math:`\mathcal{R}\{h\}_j = (1 - y_j)/(1 - y^*_j)^2\,\mathcal{R}\{y^*\}_j` is :math:`10^{15}` times
its own error, and :math:`\mathcal{R}\{h\}_j - y^*_j \sum_k \mathcal{R}\{h\}_k` takes it back by
:math:`1 - y^*_j`; a ball adds the two errors (a bound of :math:`10^{20}` on a product of 100), the
affine form cancels them as the evaluation does. With :math:`a = \hat a + A + \rho_a`:

.. math::
    a \pm b:\ (\hat a \pm \hat b,\ A \pm B,\ r_a + r_b + \epsilon(|\hat a| + |\hat b| + e_a + e_b)), \\
    ab:\ (\hat a \hat b,\ \hat a B + \hat b A,\ |\hat a| r_b + |\hat b| r_a + e_a e_b + \epsilon(|\hat a \hat b| + \dots)), \\
    1/b:\ (1/\hat b,\ -B/\hat b^2,\ r_b/\hat b^2 + e_b^2 / (\hat b^2 (|\hat b| - e_b))) \quad
    (\infty \text{ where } e_b \ge |\hat b|),

(:math:`1/b = 1/\hat b - d/\hat b^2 + d^2/(\hat b^2 b)`, :math:`d = b - \hat b`), a sum or a
contraction with rounding :math:`\epsilon\kappa \sum (|\hat a_i| + e_{a_i})`, every rounding charged
at the size of the result plus its radius. Constants in small integers (ones - eye, 2 y) are exact.
:data:`namespace` has the array API functions the built-in forms call (``sum``, ``ones``, ``eye``,
``zeros_like``); any other raises :class:`Unsupported` and the absolute-value model stands.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .balls import _Ball, _Unit

__all__: list[str] = []  # private: the running error bound's arithmetic


class Unsupported(Exception):
    """A cancelled form called an operation the affine forms do not model."""


class Affine:
    """``v`` the value, ``C`` (v.shape + (K,)) the coefficients of the K sources, ``r`` the remainder."""

    __array_ufunc__ = None  # numpy arrays on the left defer to the reflected operators here
    device = "cpu"
    dtype = np.dtype(np.float64)

    def __init__(self, v: np.ndarray, C: np.ndarray, r: np.ndarray, rho: _Unit) -> None:
        self.v, self.C, self.r, self.rho = v, C, r, rho

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.v))

    @property
    def e(self) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.sum(np.abs(self.C), axis=-1) + self.r

    def ball(self) -> _Ball:
        return _Ball(self.v, self.e)

    def _of(self, x: Any) -> Affine:
        if isinstance(x, Affine):
            return x
        if isinstance(x, (int, float, np.ndarray, np.floating)):
            v = np.asarray(x, dtype=np.float64)
            return Affine(v, np.zeros((*v.shape, self.C.shape[-1])), np.zeros(v.shape), self.rho)
        raise Unsupported(f"an operand of type {type(x).__name__}")

    def _new(self, v: np.ndarray, C: np.ndarray, r: np.ndarray, *operands: Affine) -> Affine:
        # constants in small integers (ones - eye, 2 * y) are exact in any dtype: no rounding charged
        if all(not np.any(o.C) and not np.any(o.r) for o in operands):
            if np.all((v == np.round(v)) & (np.abs(v) < 2**24)):
                r = np.zeros(np.shape(v))
        return Affine(v, C, r, self.rho)

    def _add(self, x: Any, sign: float, reverse: bool = False) -> Affine:
        a, b = (self._of(x), self) if reverse else (self, self._of(x))
        v = a.v + sign * b.v
        r = a.r + b.r + self.rho.one * (np.abs(a.v) + np.abs(b.v) + a.e + b.e)
        return self._new(v, a.C + sign * b.C, r, a, b)

    def __add__(self, x: Any) -> Affine:
        return self._add(x, 1.0)

    def __radd__(self, x: Any) -> Affine:
        return self._add(x, 1.0, reverse=True)

    def __sub__(self, x: Any) -> Affine:
        return self._add(x, -1.0)

    def __rsub__(self, x: Any) -> Affine:
        return self._add(x, -1.0, reverse=True)

    def __neg__(self) -> Affine:
        return Affine(-self.v, -self.C, self.r, self.rho)

    def __mul__(self, x: Any) -> Affine:
        a, b = self, self._of(x)
        with np.errstate(all="ignore"):
            v = a.v * b.v
            C = a.v[..., None] * b.C + b.v[..., None] * a.C
            ea, eb = a.e, b.e
            r = np.abs(a.v) * b.r + np.abs(b.v) * a.r + ea * eb
            r = r + self.rho.one * (np.abs(v) + np.abs(a.v) * eb + np.abs(b.v) * ea + ea * eb)
        return self._new(v, C, r, a, b)

    __rmul__ = __mul__

    def _inverse(self) -> Affine:
        with np.errstate(all="ignore"):
            e = self.e
            room = np.abs(self.v) - e
            v = 1.0 / self.v
            C = -self.C * (v * v)[..., None]
            r = self.r * v * v + e * e * v * v / np.where(room > 0, room, 1.0)
            r = np.where(room > 0, r, np.inf)
        return Affine(v, C, r, self.rho)

    def __truediv__(self, x: Any) -> Affine:
        return self * self._of(x)._inverse()

    def __rtruediv__(self, x: Any) -> Affine:
        return self._of(x) * self._inverse()

    def __matmul__(self, x: Any) -> Affine:
        return _matmul(self, self._of(x))

    def __rmatmul__(self, x: Any) -> Affine:
        return _matmul(self._of(x), self)


def _matmul(a: Affine, b: Affine) -> Affine:
    """(N, J) @ (J, M): the affine parts contracted, the product of the two errors and the rounding
    of a sum in the remainder."""
    with np.errstate(all="ignore"):
        v = a.v @ b.v
        C = np.einsum("njk,jm->nmk", a.C, b.v) + np.einsum("nj,jmk->nmk", a.v, b.C)
        ea, eb = a.e, b.e
        r = a.r @ np.abs(b.v) + np.abs(a.v) @ b.r + ea @ eb + a.rho.sum * ((np.abs(a.v) + ea) @ (np.abs(b.v) + eb))
    return a._new(v, C, r, a, b)


class _Namespace:
    """The array API functions a cancelled form may call; any other raises Unsupported."""

    def __init__(self, rho: _Unit, K: int) -> None:
        self.rho, self.K = rho, K

    def _const(self, v: np.ndarray) -> Affine:
        return Affine(v, np.zeros((*v.shape, self.K)), np.zeros(v.shape), self.rho)

    def sum(self, a: Affine, axis: int | None = None, keepdims: bool = False) -> Affine:
        axes = tuple(range(a.v.ndim)) if axis is None else (axis % a.v.ndim,)
        with np.errstate(all="ignore"):
            v = np.sum(a.v, axis=axes, keepdims=keepdims)
            C = np.sum(a.C, axis=axes, keepdims=keepdims)
            r = np.sum(a.r + self.rho.sum * (np.abs(a.v) + a.e), axis=axes, keepdims=keepdims)
        return Affine(v, C, r, self.rho)

    def ones(self, shape: Any, dtype: Any = None, device: Any = None) -> Affine:
        return self._const(np.ones(shape))

    def eye(self, n: int, dtype: Any = None, device: Any = None) -> Affine:
        return self._const(np.eye(n))

    def zeros_like(self, a: Affine, dtype: Any = None, device: Any = None) -> Affine:
        return self._const(np.zeros(a.shape))

    def __getattr__(self, name: str) -> Any:
        raise Unsupported(f"xp.{name}")


def run(form: Any, I: _Ball, O: _Ball, Y: np.ndarray, RI: _Ball, RO: _Ball, rho: _Unit) -> _Ball:
    """``form(I, O, Y, RI, RO, xp)`` on affine forms: one source per entry of O, RI and RO (of its
    radius), I's radius kept as a remainder (no built-in form reads I), Y exact; the result as a ball."""
    n = O.v.size
    K = 3 * n
    xp = _Namespace(rho, K)

    def sources(b: _Ball, first: int) -> Affine:
        C = np.zeros((n, K))
        C[np.arange(n), first + np.arange(n)] = b.e.reshape(-1)
        return Affine(b.v, C.reshape((*b.v.shape, K)), np.zeros(b.v.shape), rho)

    I_form = Affine(I.v, np.zeros((*I.v.shape, K)), I.e, rho)
    with np.errstate(all="ignore"):
        out = form(
            I_form, sources(O, 0), xp._const(np.asarray(Y, dtype=np.float64)), sources(RI, n), sources(RO, 2 * n), xp
        )
    if not isinstance(out, Affine):
        raise Unsupported(f"a result of type {type(out).__name__}")
    return out.ball()
