"""The second-order tolerance model (see :mod:`torch_ref.second_order_check`'s docstring): the
R-passes run on absolute values with each factor's own error carried, times 2 eps kappa (2L + 2).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from manual import Params, Spec

from .second_order import SecondOrderParts, r_pass
from .tolerance import tolerance


def _magnitudes(p: SecondOrderParts, spec: Spec, params: Params, X: Any, Y: Any) -> SecondOrderParts:
    """The parts with each factor replaced by its size plus its own error (the model in
    :mod:`torch_ref.second_order_check`'s docstring)."""
    W = [np.abs(np.asarray(w, dtype=np.float64)) for w in params.weights]
    b = None if params.biases is None else [np.abs(np.asarray(v, dtype=np.float64)) for v in params.biases]
    first = tolerance(spec, params, X, Y)
    m_delta = [d / (2 * first.eps * first.kappa) for d in first.deltas]
    s_u = np.abs(p.u[0])
    u, O, dA, d2A = [s_u], [], [], []
    for l, entry in enumerate(spec.activations):
        s_I = s_u @ W[l] + (0.0 if b is None else b[l])
        I_abs = np.abs(p.I[l])
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
            dA.append(a1 + a2 * s_I + T1)
            d2A.append(a2 + a3 * s_I + T2)
            s_O = np.abs(p.O[l]) + a1 * s_I
        else:
            dA.append(None)
            d2A.append(None)
            s_O = np.abs(p.O[l]) * (1 + s_I + np.max(s_I, axis=-1, keepdims=True))
        O.append(s_O)
        s_u = s_O
        u.append(s_u)
    s_y = O[-1]
    H = np.abs(p.H) + np.abs(p.H) + np.einsum("njkm,nm->njk", np.abs(p.dH), s_y)
    g = np.abs(p.g) + np.abs(p.g) + np.einsum("njk,nk->nj", np.abs(p.H), s_y)
    delta = tuple(np.abs(d) + m for d, m in zip(p.delta, m_delta))
    return replace(
        p,
        u=tuple(u[:-1]),
        O=tuple(O),
        dA=tuple(dA),
        d2A=tuple(d2A),
        delta=delta,
        g=g,
        H=H,
    )


def bounds(spec: Spec, params: Params, X: Any, Y: Any, V: Params, p: SecondOrderParts, kind: str) -> list[np.ndarray]:
    """The allowed difference per entry of every array (``2 eps kappa_2 M``, the model in
    :mod:`torch_ref.second_order_check`'s docstring)."""
    eps = float(np.finfo(np.asarray(X).dtype).eps)
    kappa = max(*spec.sizes, np.shape(X)[0]) + 5
    kappa2 = kappa * (2 * spec.depth + 2)
    M = r_pass(_magnitudes(p, spec, params, X, Y), V.map(np.abs), absolute=True, gauss_newton=kind == "gnvp")
    tiny = float(np.finfo(np.asarray(X).dtype).tiny)
    return [2 * eps * kappa2 * m + kappa2 * tiny for _, m in M.arrays()]
