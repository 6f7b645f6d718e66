r"""A running error bound of the R-passes (the second-order tolerance model's signed form, issue 21).

Each quantity q of the R-passes is a ball: its value :math:`\hat q` (float64, from the reference)
and a radius :math:`e_q` with :math:`|q_{\text{computed}} - q| \le e_q` for any right evaluation in
the case's dtype. The inputs' radii are the first-order model's, :math:`\varepsilon\kappa\,m_x`
(:mod:`torch_ref.second_order_tolerance`: A', A'', y*, the deltas, the loss's g and H_L); the
parameters, X and V are exact. Each operation adds its own rounding (Higham, sec. 3.1):

.. math::
    e_{ab} = |\hat a| e_b + |\hat b| e_a + e_a e_b + \varepsilon\kappa |\hat a \hat b|, \qquad
    e_{\sum_i a_i} = \sum_i e_{a_i} + \varepsilon\kappa \sum_i |\hat a_i|

(:math:`\kappa` = the longest sum plus 5 covers :math:`\gamma_n` for every sum and contraction
here). An error is carried with the *value* of the other factor, not its size: the absolute-value
passes multiplied an error by the sizes of the terms that cancel to the other factor, so where the
outputs saturate (softmax's :math:`y_j(r_j - \sum_k y_k r_k)`, the general output form's
:math:`g - \sum_k y_k g_k`) the bound was thousands of times the product, and a product with a
saturated row's sign flipped passed. The rounding of a sum that cancels is still charged at the
size of its terms, as it must be: a right float32 evaluation loses those digits.

Only the canonical and the general output forms are run here (what ``manual`` and torch's double
backward evaluate for every pair without a cancelled form); a pair with a cancelled form
(:attr:`manual.Loss.r_cancelled`, ``gn_cancelled``) is left to the absolute-value model
(:func:`radius` returns None).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manual import Params

from .second_order import SecondOrderParts

__all__ = ["radius"]


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


def _hessian_times(H: _Ball, R: _Ball, rho: _Unit) -> _Ball:
    """H_L R per example: sum_k H_jk R_k."""
    v = np.einsum("njk,nk->nj", H.v, R.v)
    AH, AR = np.abs(H.v), np.abs(R.v)
    e = (
        np.einsum("njk,nk->nj", AH, R.e)
        + np.einsum("njk,nk->nj", H.e, AR + R.e)
        + rho.sum * np.einsum("njk,nk->nj", AH, AR)
    )
    return _Ball(v, e)


def radius(
    p: SecondOrderParts, errors: SecondOrderParts, V: Params, kind: str, eps: float, kappa: int
) -> list[np.ndarray] | None:
    """The radius of each array of HV (``kind="hvp"``) or J^T H_L J V (``"gnvp"``) for one right
    evaluation in a dtype of machine epsilon ``eps``; ``errors`` holds every factor's error
    magnitude m_x (the radius is eps kappa m_x). None where the pair has a cancelled form."""
    spec = p.spec
    out = spec.activations[-1]
    cancelled = spec.loss.gn_cancelled if kind == "gnvp" else spec.loss.r_cancelled
    if out.name in cancelled and not (kind == "hvp" and spec.canonical):
        return None
    rho = _Unit(eps, eps * kappa)

    def ball(v: np.ndarray | None, m: np.ndarray | None) -> _Ball | None:
        if v is None or m is None:
            return None
        return _Ball(np.asarray(v, dtype=np.float64), rho.sum * np.asarray(m, dtype=np.float64))

    W = [_exact(w) for w in p.params.weights]
    VW = [_exact(v) for v in V.weights]
    Vb = None if V.biases is None else [_exact(v) for v in V.biases]
    O = [ball(v, m) for v, m in zip(p.O, errors.O)]
    u = [_exact(p.u[0]), *(_need(o) for o in O[:-1])]
    dA = [ball(v, m) for v, m in zip(p.dA, errors.dA)]
    d2A = [ball(v, m) for v, m in zip(p.d2A, errors.d2A)]
    delta = [ball(v, m) for v, m in zip(p.delta, errors.delta)]
    g, H = ball(p.g, errors.g), ball(p.H, errors.H)
    assert g is not None and H is not None
    N = p.g.shape[0]
    # forward R-pass
    RI: list[_Ball] = []
    RO: list[_Ball] = []
    for l, entry in enumerate(spec.activations):
        RI_l = _matmul(u[l], VW[l], rho)
        if l > 0:
            RI_l = _add(RI_l, _matmul(RO[l - 1], W[l], rho), rho)
        if Vb is not None:
            RI_l = _add(RI_l, _Ball(np.broadcast_to(Vb[l].v, RI_l.v.shape), np.zeros(RI_l.v.shape)), rho)
        a1, O_l = dA[l], O[l]
        RO_l = _mul(a1, RI_l, rho) if entry.elementwise and a1 is not None else _softmax_jvp(_need(O_l), RI_l, rho)
        RI.append(RI_l)
        RO.append(RO_l)
    Rg = _hessian_times(H, RO[-1], rho)
    scale = 1.0 / N if spec.reduction == "mean" else 1.0
    if kind == "gnvp":
        d = _mul(_need(dA[-1]), Rg, rho) if out.elementwise else _softmax_jvp(_need(O[-1]), Rg, rho)
        R_delta = [_scaled(d, scale, rho)]
        for l in range(spec.depth - 2, -1, -1):
            R_delta.insert(0, _mul(_matmul(R_delta[0], _T(W[l + 1]), rho), _need(dA[l]), rho))
        return _products(u, R_delta, RO, None, Vb, rho)
    if spec.canonical:
        R_out = RO[-1]
    elif out.elementwise:
        R_out = _add(_mul(_mul(_need(d2A[-1]), RI[-1], rho), g, rho), _mul(_need(dA[-1]), Rg, rho), rho)
    else:
        Ol = _need(O[-1])
        Og = _rowsum(_mul(Ol, g, rho), rho)
        sums = _add(_rowsum(_mul(Ol, Rg, rho), rho), _rowsum(_mul(RO[-1], g, rho), rho), rho)
        R_out = _add(
            _add(_mul(RO[-1], _add(g, Og, rho, -1.0), rho), _mul(Ol, Rg, rho), rho), _mul(Ol, sums, rho), rho, -1.0
        )
    R_delta = [_scaled(R_out, scale, rho)]
    for l in range(spec.depth - 2, -1, -1):
        back = _matmul(_need(delta[l + 1]), _T(W[l + 1]), rho)
        R_back = _add(_matmul(R_delta[0], _T(W[l + 1]), rho), _matmul(_need(delta[l + 1]), _T(VW[l + 1]), rho), rho)
        term = _add(_mul(R_back, _need(dA[l]), rho), _mul(_mul(back, _need(d2A[l]), rho), RI[l], rho), rho)
        R_delta.insert(0, term)
    return _products(u, R_delta, RO, [_need(d) for d in delta], Vb, rho)


def _need(a: _Ball | None) -> _Ball:
    if a is None:  # an elementwise entry always has A' and A'', softmax always has y*
        raise ValueError("a factor the R-pass needs is missing from the parts")
    return a


def _scaled(a: _Ball, scale: float, rho: _Unit) -> _Ball:
    if scale == 1.0:
        return a
    return _Ball(a.v * scale, a.e * scale + rho.one * np.abs(a.v * scale))


def _products(
    u: list[_Ball], R_delta: list[_Ball], RO: list[_Ball], delta: list[_Ball] | None, Vb: list[_Ball] | None, rho: _Unit
) -> list[np.ndarray]:
    """The radii of (HV)_W = u^T R{delta} (+ R{u}^T delta for HV) and (HV)_b = sum_n R{delta}, in
    Params' order (W1, b1, W2, ...)."""
    out = []
    for l, Rd in enumerate(R_delta):
        HW = _matmul(_T(u[l]), Rd, rho)
        if delta is not None and l > 0:
            HW = _add(HW, _matmul(_T(RO[l - 1]), delta[l], rho), rho)
        out.append(HW.e)
        if Vb is not None:
            out.append(_colsum(Rd, rho).e)
    return out
