r"""A running error bound of the R-passes (the second-order tolerance model's signed form, issue 21).

Each quantity q of the R-passes is a ball: its value :math:`\hat q` (float64, from the reference)
and a radius :math:`e_q` with :math:`|q_{\text{computed}} - q| \le e_q` for any right evaluation in
the case's dtype. The inputs' radii are the first-order model's, :math:`\varepsilon\kappa\,m_x`
(:mod:`torch_ref.second_order.tolerance`: A', A'', y*, the deltas, the loss's g and H_L); the
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

The output form run is the one :mod:`manual` evaluates: the canonical one (R{y*}), the general one,
or, for a pair with a cancelled form (:attr:`manual.Loss.r_cancelled`, ``gn_cancelled``), that form
itself, run unchanged on affine error forms (:mod:`torch_ref.second_order.affine`: its terms of 1/(1 - y*)^2
cancel back by 1 - y*, and so must their errors; balls gave 1e20 on a product of 100). The
cancelled pairs' radius therefore models the cancelled form, not the general one a hand derivation
may write (measured: the 2000-case campaign's manual and torch products, torch's Gauss-Newton in
the general form among them, stay within it); a form calling an operation the affine forms lack,
or reading I, keeps the absolute-value model (:func:`radius` returns None, or an infinite radius).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from manual import Params

from .affine import Unsupported, run
from .balls import (
    _T,
    _add,
    _Ball,
    _colsum,
    _exact,
    _matmul,
    _mul,
    _rowsum,
    _softmax_jvp,
    _Unit,
)
from .products import SecondOrderParts

__all__ = ["radius"]


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
    magnitude m_x (the radius is eps kappa m_x). None where a cancelled form cannot run on affine forms."""
    spec = p.spec
    out = spec.activations[-1]
    table = spec.loss.gn_cancelled if kind == "gnvp" else spec.loss.r_cancelled
    form = None if kind == "hvp" and spec.canonical else table.get(out.name)
    if form is not None and p.Y is None:
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
    if form is not None:
        try:
            cancelled = _cancelled(form, p, O[-1], RI[-1], RO[-1], rho)
        except Unsupported:  # a form written with operations the balls do not model
            return None
    if kind == "gnvp":
        if form is not None:
            d = cancelled
        else:
            d = _mul(_need(dA[-1]), Rg, rho) if out.elementwise else _softmax_jvp(_need(O[-1]), Rg, rho)
        R_delta = [_scaled(d, scale, rho)]
        for l in range(spec.depth - 2, -1, -1):
            R_delta.insert(0, _mul(_matmul(R_delta[0], _T(W[l + 1]), rho), _need(dA[l]), rho))
        return _products(u, R_delta, RO, None, Vb, rho)
    if spec.canonical:
        R_out = RO[-1]
    elif form is not None:
        R_out = cancelled
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


def _cancelled(form: Any, p: SecondOrderParts, O: _Ball | None, RI: _Ball, RO: _Ball, rho: _Unit) -> _Ball:
    """The loss's cancelled output form run on affine error forms (:mod:`torch_ref.second_order.affine`: the
    errors of y*, R{I} and R{y*} cancel as the form's terms do), y exact (the case's own targets).
    I's radius is not carried here (no built-in form reads I): it is infinite, so a form that reads
    I gets an infinite (or NaN) radius, and the absolute-value model stands (np.fmin keeps it)."""
    I = _Ball(np.asarray(p.I[-1], dtype=np.float64), np.full(np.shape(p.I[-1]), np.inf))
    return run(form, I, _need(O), np.asarray(p.Y), RI, RO, rho)


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
