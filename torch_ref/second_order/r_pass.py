r"""The R-passes on reference values: :math:`HV` and :math:`J^T H_L J V` by the R-operator passes
of :mod:`manual.second_order`'s docstring, written a second time, here on the reference's float64
NumPy values (:class:`torch_ref.second_order.products.SecondOrderParts`: u, I, O, A', A'' by
autograd of the torch twins, the loss's gradient and Hessian in y* by autograd), never from
:mod:`manual`.

- :func:`r_pass`: the passes, forward (:math:`\mathcal{R}\{I\}`, :math:`\mathcal{R}\{O\}`), at the
  loss and the output, backward (:math:`\mathcal{R}\{\delta\}`), and the gradient's formulas
  differentiated. With ``drop`` it leaves out one term (a key of :data:`DROPPABLE`), which is how the
  oracle's diagnosis (:mod:`torch_ref.second_order.diagnosis`) computes a candidate mistake; with
  ``absolute=True`` it runs on absolute values, which is the tolerance model's magnitude
  (:mod:`torch_ref.second_order.tolerance`).
- :data:`DROPPABLE`: the terms ``drop`` can leave out, each a second-order derivation mistake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from manual import Params, Spec

from .products import SecondOrderParts

__all__ = ["DROPPABLE", "r_pass"]


# what r_pass can leave out, each a second-order derivation mistake
DROPPABLE = {
    "second_derivative": "the A'' term (delta^(l+1) W^(l+1)T) * A''(I) * R{I} of the hidden layers",
    "output_second_derivative": "the output's A'' term A''(I^(L)) * R{I^(L)} * dL/dy*",
    "Ru_delta": "the R{u}^T delta term of (HV)_W",
    "delta_VW": "the delta^(l+1) V_W^(l+1)T term of R{delta}",
    "loss_hessian": "the loss's second derivative H_L R{y*} at the output",
    "bias_direction": "the biases' direction V_b in R{I}",
}


def _softmax_jvp(O: np.ndarray, r: np.ndarray, absolute: bool, diagonal: bool = False) -> np.ndarray:
    if diagonal:  # a mistake: softmax's Jacobian taken as its diagonal O (1 - O)
        return O * (1 - O) * r
    if absolute:
        return O * r + O * np.sum(O * r, axis=-1, keepdims=True)
    return O * r - O * np.sum(O * r, axis=-1, keepdims=True)


def _finite(a: np.ndarray) -> np.ndarray:
    """``a`` with its non-finite entries (a magnitude that overflowed) taken as 0."""
    return np.where(np.isfinite(a), a, 0.0)


def _general_gn(out: Any, dA: list, O: list, Rg: np.ndarray, absolute: bool) -> np.ndarray:
    """The Gauss-Newton pass's output delta, general form: A' H_L R{y*} (softmax: its vjp of y* H_L R{y*})."""
    with np.errstate(all="ignore"):
        return dA[-1] * Rg if out.elementwise else _softmax_jvp(O[-1], Rg, absolute)


def _general_r(
    out: Any,
    dA: list,
    d2A: list,
    O: list,
    RI: list,
    RO: list,
    g: np.ndarray,
    Rg: np.ndarray,
    absolute: bool,
    drop: frozenset[str],
) -> np.ndarray:
    """R{delta^(L)} by the general formula (module docstring of manual.second_order)."""
    with np.errstate(all="ignore"):
        if out.elementwise:
            second = 0.0 if "output_second_derivative" in drop else d2A[-1] * RI[-1] * g
            return second + dA[-1] * Rg
        Og = np.sum(O[-1] * g, axis=-1, keepdims=True)
        sums = np.sum(O[-1] * Rg, axis=-1, keepdims=True) + np.sum(RO[-1] * g, axis=-1, keepdims=True)
        if absolute:
            return RO[-1] * (g + Og) + O[-1] * Rg + O[-1] * sums
        return RO[-1] * (g - Og) + O[-1] * Rg - O[-1] * sums


@dataclass(frozen=True)
class _Values:
    """The reference's values as the R-passes take them, float64: as they are, or with ``absolute``
    their absolute values (the tolerance model's magnitude). Index ``l - 1`` for layer l."""

    W: list[np.ndarray]
    VW: list[np.ndarray]
    Vb: list[np.ndarray] | None
    u: list[np.ndarray]
    O: list[np.ndarray]
    dA: list[np.ndarray | None]
    d2A: list[np.ndarray | None]
    delta: list[np.ndarray]
    g: np.ndarray
    H: np.ndarray
    scale: float


def _values(p: SecondOrderParts, V: Params, absolute: bool) -> _Values:
    f = np.abs if absolute else (lambda a: a)
    N = p.g.shape[0]
    return _Values(
        W=[f(w) for w in p.params.weights],
        VW=[f(np.asarray(v, dtype=np.float64)) for v in V.weights],
        Vb=None if V.biases is None else [f(np.asarray(v, dtype=np.float64)) for v in V.biases],
        u=[f(a) for a in p.u],
        O=[f(a) for a in p.O],
        dA=[None if a is None else f(a) for a in p.dA],
        d2A=[None if a is None else f(a) for a in p.d2A],
        delta=[f(a) for a in p.delta],
        g=f(p.g),
        H=np.abs(p.H) if absolute else p.H,
        scale=1.0 / N if p.spec.reduction == "mean" else 1.0,
    )


def _forward_r(
    spec: Spec, v: _Values, drop: frozenset[str], absolute: bool, softmax_diagonal: bool
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    r"""The forward R-pass, :math:`\mathcal{R}\{I^{(l)}\}` and :math:`\mathcal{R}\{O^{(l)}\}` for l = 1..L:

    .. math::
        \mathcal{R}\{I^{(l)}\} = \mathcal{R}\{u^{(l)}\} W^{(l)} + u^{(l)} V_W^{(l)} (+ V_b^{(l)}), \qquad
        \mathcal{R}\{O^{(l)}\} = \mathcal{A}'(I^{(l)}) \odot \mathcal{R}\{I^{(l)}\} = \mathcal{R}\{u^{(l+1)}\}

    with :math:`\mathcal{R}\{u^{(1)}\} = 0` (softmax: its Jacobian-vector product).
    """
    RI: list[np.ndarray] = []
    RO: list[np.ndarray] = []
    for l, entry in enumerate(spec.activations):
        RI_l = v.u[l] @ v.VW[l]
        if l > 0:
            RI_l = RI_l + RO[l - 1] @ v.W[l]
        if v.Vb is not None and "bias_direction" not in drop:
            RI_l = RI_l + v.Vb[l]
        RO_l = v.dA[l] * RI_l if entry.elementwise else _softmax_jvp(v.O[l], RI_l, absolute, softmax_diagonal)
        RI.append(RI_l)
        RO.append(RO_l)
    return RI, RO


def _loss_r(v: _Values, RO_L: np.ndarray, drop: frozenset[str]) -> np.ndarray:
    r""":math:`\mathcal{R}\{g\} = H_L \mathcal{R}\{y^*\}`, per example (``RO_L`` is
    :math:`\mathcal{R}\{y^*\} = \mathcal{R}\{O^{(L)}\}`)."""
    if "loss_hessian" in drop:
        return np.zeros_like(RO_L)
    return np.einsum("njk,nk->nj", v.H, RO_L)


def _output_gn_delta(
    p: SecondOrderParts, v: _Values, RI: list[np.ndarray], RO: list[np.ndarray], Rg: np.ndarray, absolute: bool
) -> np.ndarray:
    r"""The Gauss-Newton pass's output delta, :math:`\mathcal{A}'(I^{(L)}) \odot H_L \mathcal{R}\{y^*\}`
    (softmax: its vjp of :math:`y^* \odot H_L \mathcal{R}\{y^*\}`), not yet divided by N. With
    ``absolute``, the magnitude of the loss's cancelled form is added where it has one."""
    out = p.spec.activations[-1]
    d = _general_gn(out, v.dA, v.O, Rg, absolute)
    cancel_gn = p.spec.loss.gn_cancelled.get(out.name)
    if absolute and cancel_gn is not None and p.Y is not None:
        # the magnitude covers the cancelled form too, and keeps it alone where the general
        # form's factors overflow (y* saturated: y / y*^2 times y*^2)
        Y_abs = np.abs(p.Y)
        with np.errstate(all="ignore"):
            stable = _finite(np.abs(cancel_gn(np.abs(p.I[-1]), v.O[-1], Y_abs, RI[-1], RO[-1], np))) + Y_abs * RI[-1]
        d = stable + _finite(d)
    return d


def _output_r_delta(
    p: SecondOrderParts,
    v: _Values,
    RI: list[np.ndarray],
    RO: list[np.ndarray],
    Rg: np.ndarray,
    absolute: bool,
    drop: frozenset[str],
    canonical: bool | None,
) -> np.ndarray:
    r""":math:`\mathcal{R}\{\delta^{(L)}\}`, not yet divided by N: :math:`\mathcal{R}\{y^*\}` for a
    canonical pair, else the general formula (:func:`_general_r`, the module docstring of
    :mod:`manual.second_order`). With ``absolute``, the general form's magnitude plus that of the
    canonical or cancelled form, either of which a correct product may take."""
    spec, out = p.spec, p.spec.activations[-1]
    use_canonical = spec.canonical if canonical is None else canonical
    if use_canonical and not absolute:
        return RO[-1]
    R_out = _general_r(out, v.dA, v.d2A, v.O, RI, RO, v.g, Rg, absolute, drop)
    if not absolute:
        return R_out
    # either form a correct product may take: the general one where it is finite, and the
    # canonical (R{y*}) or cancelled one, which stays finite where y* saturates
    cancel_r = spec.loss.r_cancelled.get(out.name)
    stable = None
    if spec.canonical:
        stable = RO[-1]
    elif cancel_r is not None and p.Y is not None:
        Y_abs = np.abs(p.Y)
        with np.errstate(all="ignore"):
            stable = _finite(np.abs(cancel_r(np.abs(p.I[-1]), v.O[-1], Y_abs, RI[-1], RO[-1], np))) + Y_abs * RO[-1]
    return R_out if stable is None else stable + _finite(R_out)


def _backward_gn(v: _Values, delta_L: np.ndarray) -> list[np.ndarray]:
    r"""The slides' first-order backward pass from the Gauss-Newton output delta:
    :math:`\delta^{(l)} = (\delta^{(l+1)} W^{(l+1)T}) \odot \mathcal{A}'(I^{(l)})`."""
    R_delta = [delta_L]
    for l in range(len(v.W) - 2, -1, -1):
        R_delta.insert(0, (R_delta[0] @ v.W[l + 1].T) * v.dA[l])
    return R_delta


def _backward_r(v: _Values, RI: list[np.ndarray], R_delta_L: np.ndarray, drop: frozenset[str]) -> list[np.ndarray]:
    r"""The backward R-pass, the delta recursion differentiated, for l = L-1..1:

    .. math::
        \mathcal{R}\{\delta^{(l)}\} = \left(\mathcal{R}\{\delta^{(l+1)}\} W^{(l+1)T}
            + \delta^{(l+1)} V_W^{(l+1)T}\right) \odot \mathcal{A}'(I^{(l)})
            + \left(\delta^{(l+1)} W^{(l+1)T}\right) \odot \mathcal{A}''(I^{(l)}) \odot \mathcal{R}\{I^{(l)}\}
    """
    R_delta = [R_delta_L]
    for l in range(len(v.W) - 2, -1, -1):
        back = v.delta[l + 1] @ v.W[l + 1].T
        R_back = R_delta[0] @ v.W[l + 1].T
        if "delta_VW" not in drop:
            R_back = R_back + v.delta[l + 1] @ v.VW[l + 1].T
        term = R_back * v.dA[l]
        if "second_derivative" not in drop:
            term = term + back * v.d2A[l] * RI[l]
        R_delta.insert(0, term)
    return R_delta


def _assemble(v: _Values, R_delta: list[np.ndarray], Ru: list[np.ndarray] | None) -> Params:
    r"""The gradient's formulas differentiated, :math:`\nabla W^{(l)} = u^{(l)T} \delta^{(l)}`,
    :math:`\nabla b^{(l)} = \sum_n \delta^{(l)}_n`:

    .. math::
        (HV)_W^{(l)} = \mathcal{R}\{u^{(l)}\}^T \delta^{(l)} + u^{(l)T} \mathcal{R}\{\delta^{(l)}\}, \qquad
        (HV)_b^{(l)} = \sum_n \mathcal{R}\{\delta^{(l)}_n\}

    ``Ru`` holds :math:`\mathcal{R}\{u^{(l+1)}\} = \mathcal{R}\{O^{(l)}\}`; ``None`` (the
    Gauss-Newton pass, whose u carries no R-term, or the term left out): without the first term.
    """
    HW = [v.u[0].T @ R_delta[0]]
    for l in range(1, len(v.W)):
        HW_l = v.u[l].T @ R_delta[l]
        if Ru is not None:
            HW_l = HW_l + Ru[l - 1].T @ v.delta[l]
        HW.append(HW_l)
    Hb = None if v.Vb is None else [np.sum(d, axis=0) for d in R_delta]
    return Params(HW, Hb)


def r_pass(
    p: SecondOrderParts,
    V: Params,
    *,
    drop: frozenset[str] = frozenset(),
    absolute: bool = False,
    gauss_newton: bool = False,
    canonical: bool | None = None,
    softmax_diagonal: bool = False,
) -> Params:
    r""":math:`HV` (or with ``gauss_newton`` :math:`J^T H_L J V`) by the R-passes of
    :mod:`manual.second_order`'s docstring, on the reference's values, float64.

    ``drop``: terms left out (keys of :data:`DROPPABLE`). ``absolute``: every quantity replaced by
    its absolute value and every difference by a sum (the magnitude :math:`M` of the tolerance
    model; ``canonical`` is then False: the general output formula's terms). ``canonical``: take
    :math:`\mathcal{R}\{\delta^{(L)}\} = \mathcal{R}\{y^*\}` (default: where the pair is canonical).
    ``softmax_diagonal``: a mistake, softmax's Jacobian taken as its diagonal in the forward R-pass.
    """
    v = _values(p, V, absolute)
    RI, RO = _forward_r(p.spec, v, drop, absolute, softmax_diagonal)
    Rg = _loss_r(v, RO[-1], drop)
    if gauss_newton:
        d = _output_gn_delta(p, v, RI, RO, Rg, absolute)
        return _assemble(v, _backward_gn(v, d * v.scale), None)
    R_out = _output_r_delta(p, v, RI, RO, Rg, absolute, drop, canonical)
    R_delta = _backward_r(v, RI, R_out * v.scale, drop)
    return _assemble(v, R_delta, None if "Ru_delta" in drop else RO)
