r"""The second-order tolerance model (see :mod:`torch_ref.second_order.check`'s docstring): the
R-passes run on absolute values with each factor's own error carried, times 2 eps kappa (2L + 2).

Each factor x of the R-passes is a value :math:`|x|` and an error magnitude :math:`m_x` (the
factor is off by at most :math:`u\,m_x`, :math:`u = 2\varepsilon\kappa_2`). With :math:`P(t)` the
R-passes on absolute values run on :math:`|x| + t\,m_x` (a polynomial in t with coefficients
:math:`a_k \ge 0`), a correct product's error is at most :math:`u` times

.. math::
    M = P(0) + \frac{P(u) - P(0)}{u} = a_0 + a_1 + a_2 u + a_3 u^2 + \dots

the rounding of every operation (:math:`a_0`), each factor's error carried (:math:`a_1`), and the
products of errors with their own powers of u. (Running the passes on :math:`|x| + m_x`, i.e.
:math:`P(1)`, would give a product of two errors the weight of one: where two factors are both
far less accurate than their size, as A' and the loss's H_L at a saturated y*, that bound was
wider than the products themselves, and a wrong product in a saturated row passed; issue 21.)
The difference is taken in ``np.longdouble``; its own rounding, at most a unit of that precision
per operation of P (at most :math:`\kappa_2` of them on a path) divided by u, is added as
:math:`(\varepsilon_w / \varepsilon) P(u)`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from manual import Params, Spec

from ..numerics.tolerance import _forward_terms, tolerance
from .products import SecondOrderParts
from .r_pass import r_pass
from .running_error import radius

_FIELDS = ("u", "O", "dA", "d2A", "delta")
_WORK = np.longdouble  # the precision the difference P(u) - P(0) is taken in


def _values_and_errors(
    p: SecondOrderParts, spec: Spec, params: Params, X: Any, Y: Any
) -> tuple[SecondOrderParts, SecondOrderParts]:
    """Every factor's size |x| and its error magnitude m_x (the model in the module docstring):
    A' off by |A''| s_I + T1, A'' by |A'''| s_I + T2, O by |A'| s_I plus its formula's own rounding
    (the first-order model's forward terms: gelu's is of the size of |I| where O is tiny), each of
    the three also by an underflow (1 + |I|) tiny, the deltas by the first-order model's magnitude,
    H_L by its own rounding and |dH_L/dy*| s_y*, dL/dy* by its own and |H_L| s_y*."""
    underflow = float(np.finfo(np.asarray(X).dtype).tiny) / _unit(spec, X)  # an absolute tiny, as u m
    W = [np.abs(np.asarray(w, dtype=np.float64)) for w in params.weights]
    b = None if params.biases is None else [np.abs(np.asarray(v, dtype=np.float64)) for v in params.biases]
    # the deltas here are the exact objective's (SecondOrderParts.delta), so their error is the first-order
    # model's around the exact reference (its own where torch's bce floor is in effect, issue 21)
    first = tolerance(spec, params, X, Y).for_exact
    m_delta = [d / (2 * first.eps * first.kappa) for d in first.deltas]
    v_u, e_u = [np.abs(p.u[0])], [np.zeros_like(p.u[0])]
    v_O, e_O, v_dA, e_dA, v_d2A, e_d2A = [], [], [], [], [], []
    for l, entry in enumerate(spec.activations):
        # I's rounding (the sum of |u||W| + |b|) and u's error carried: I is off by s_I
        s_I = (v_u[l] + e_u[l]) @ W[l] + (0.0 if b is None else b[l])
        I_abs = np.abs(p.I[l])
        O_abs = np.abs(p.O[l])
        if entry.elementwise:
            a1, a2, a3 = (np.abs(np.asarray(q[l])) for q in (p.dA, p.d2A, p.d3A))
            if entry.exact:
                T1 = np.zeros_like(a1)
            elif entry.derivative_terms is not None:
                with np.errstate(all="ignore"):
                    T1 = np.abs(np.asarray(entry.derivative_terms(p.I[l], np), dtype=np.float64))
            else:
                T1 = np.maximum(a1, 1.0) * (1 + I_abs)
            T2 = np.where(p.d2A[l] == 0, 0.0, np.maximum(a2, 1.0) * (1 + I_abs) ** 2)
            under = (1 + I_abs) * underflow
            v_dA.append(a1)
            e_dA.append(a2 * s_I + T1 + under)
            v_d2A.append(a2)
            e_d2A.append(a3 * s_I + T2 + under)
            # I's error carried, and the formula's own rounding (none for an exact entry: ReLU, identity)
            own = 0.0 if entry.exact else _forward_terms(entry, p.I[l], p.O[l], a1) + under
            e = a1 * s_I + own
        else:
            v_dA.append(None)
            e_dA.append(None)
            v_d2A.append(None)
            e_d2A.append(None)
            e = _softmax_carried(O_abs, s_I)
        v_O.append(O_abs)
        e_O.append(e)
        v_u.append(O_abs)
        e_u.append(e)
    s_y = v_O[-1] + e_O[-1]
    H, g = np.abs(p.H), np.abs(p.g)
    values = replace(p, u=tuple(v_u[:-1]), O=tuple(v_O), dA=tuple(v_dA), d2A=tuple(v_d2A), g=g, H=H)
    values = replace(values, delta=tuple(np.abs(d) for d in p.delta))
    errors = replace(
        p,
        u=tuple(e_u[:-1]),
        O=tuple(e_O),
        dA=tuple(e_dA),
        d2A=tuple(e_d2A),
        delta=tuple(m_delta),
        g=g + np.einsum("njk,nk->nj", H, s_y),
        H=H + np.einsum("njkm,nm->njk", np.abs(p.dH), s_y),
    )
    return values, errors


def _softmax_carried(O: np.ndarray, s_I: np.ndarray) -> np.ndarray:
    r"""The error magnitude of a softmax output from its input's error (I off by at most
    :math:`u\,s_I`) and its own rounding: with :math:`\sum_k y_k = 1`,

    .. math::
        dy_j = y_j \textstyle\sum_k y_k (dI_j - dI_k) = y_j \sum_{k \ne j} y_k (dI_j - dI_k),
        \qquad |dy_j| \le y_j \sum_{k \ne j} y_k (s_j + s_k),

    plus :math:`y_j` for the rounding of exp, the sum and the division (a few ulps of y_j). The
    form without the cancelled term, :math:`y_j (s_j + \max_k s_k)`, gave an output rounded to 1 an
    error of :math:`u s` on a difference :math:`y_j (1 - y_j)` far smaller, which a product of the
    error with the other factors' sizes carried to the whole bound (issue 21: 4600 of M's 4700 on a
    float32 case with outputs within 2e-5 of 1). The sums of the others are taken as sums (no
    :math:`1 - y_j`), so that they keep their digits where y_j rounds to 1."""
    J = O.shape[-1]
    others = np.ones((J, J)) - np.eye(J)
    return O * (s_I * (O @ others) + (O * s_I) @ others) + O


def _at(values: SecondOrderParts, errors: SecondOrderParts, t: float) -> SecondOrderParts:
    """Every factor at |x| + t m_x, in the working precision."""

    def mix(v: Any, e: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, tuple):
            return tuple(mix(a, c) for a, c in zip(v, e))
        return np.asarray(v, dtype=_WORK) + _WORK(t) * np.asarray(e, dtype=_WORK)

    return replace(values, **{f: mix(getattr(values, f), getattr(errors, f)) for f in (*_FIELDS, "g", "H")})


def _unit(spec: Spec, X: Any) -> float:
    """u = 2 eps kappa_2, kappa_2 = (max(sizes, N) + 5)(2L + 2)."""
    kappa = max(*spec.sizes, np.shape(X)[0]) + 5
    return 2 * float(np.finfo(np.asarray(X).dtype).eps) * kappa * (2 * spec.depth + 2)


def bounds(spec: Spec, params: Params, X: Any, Y: Any, V: Params, p: SecondOrderParts, kind: str) -> list[np.ndarray]:
    """The allowed difference per entry of every array (``2 eps kappa_2 M``, the model in
    :mod:`torch_ref.second_order.check`'s docstring and this module's)."""
    eps = float(np.finfo(np.asarray(X).dtype).eps)
    kappa = max(*spec.sizes, np.shape(X)[0]) + 5
    kappa2 = kappa * (2 * spec.depth + 2)
    unit = 2 * eps * kappa2
    values, errors = _values_and_errors(p, spec, params, X, Y)
    absV = V.map(lambda a: np.abs(np.asarray(a, dtype=np.float64)))
    gn = kind == "gnvp"
    with np.errstate(all="ignore"):  # an overflow gives an infinite bound: the case is not judged
        P0, Pu = (
            [m for _, m in r_pass(_at(values, errors, t), absV, absolute=True, gauss_newton=gn).arrays()]
            for t in (0.0, unit)
        )
        slack = float(np.finfo(_WORK).eps) / eps
        M = [a + np.maximum(c - a, 0) / _WORK(unit) + _WORK(slack) * c for a, c in zip(P0, Pu)]
        tiny = float(np.finfo(np.asarray(X).dtype).tiny)
        wide = [np.asarray(2 * eps * kappa2 * m + kappa2 * tiny, dtype=np.float64) for m in M]
        # the running error bound (signed values, errors carried with the other factor's value):
        # both are bounds of a right evaluation, so the smaller one is
        ball = radius(p, errors, V, kind, eps, kappa)
        if ball is None:
            return wide
        # the float64 reference's own error is the same radius at float64's eps: (1 + eps_64 / eps) r
        both = 1 + float(np.finfo(np.float64).eps) / eps
        return [np.fmin(a, both * r + kappa2 * tiny) for a, r in zip(wide, ball)]
