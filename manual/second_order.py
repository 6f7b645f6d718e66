r"""Second order by hand: Pearlmutter's R-operator carried through the slides' forward and backward
passes, giving the exact Hessian of the objective times a direction V (:func:`hvp`) and the
generalized Gauss-Newton product (:func:`gnvp`), with no Hessian ever formed and no autograd.

:math:`\mathcal{R}\{q\} = \frac{d}{dt} q(\theta + tV)\big|_{t=0}` is the directional derivative of any
quantity q of the passes along V (V holds a direction :math:`V_W^{(l)}`, :math:`V_b^{(l)}` for every
weight and bias). Applied to the gradient it gives :math:`\mathcal{R}\{\nabla\} = H V`. The rules are
those of a derivative (:math:`\mathcal{R}\{ab\} = \mathcal{R}\{a\} b + a \mathcal{R}\{b\}`,
:math:`\mathcal{R}\{W\} = V_W`), applied to every line of the passes.

Forward R-pass, for l = 1..L (slide "Going forward...."):

.. math::
    \mathcal{R}\{u^{(1)}\} = 0, \qquad
    \mathcal{R}\{I^{(l)}\} = \mathcal{R}\{u^{(l)}\} W^{(l)} + u^{(l)} V_W^{(l)} (+ V_b^{(l)}), \qquad
    \mathcal{R}\{O^{(l)}\} = \mathcal{A}'(I^{(l)}) \odot \mathcal{R}\{I^{(l)}\} = \mathcal{R}\{u^{(l+1)}\}

(softmax: :math:`\mathcal{R}\{O\} = O \odot r - O \sum_k O_k r_k` with :math:`r = \mathcal{R}\{I\}`,
its Jacobian being symmetric).

Backward R-pass, the delta recursion (slide "Going backward....")
:math:`\delta^{(l)} = (\delta^{(l+1)} W^{(l+1)T}) \odot \mathcal{A}'(I^{(l)})` differentiated:

.. math::
    \mathcal{R}\{\delta^{(l)}\} = \left(\mathcal{R}\{\delta^{(l+1)}\} W^{(l+1)T}
        + \delta^{(l+1)} V_W^{(l+1)T}\right) \odot \mathcal{A}'(I^{(l)})
        + \left(\delta^{(l+1)} W^{(l+1)T}\right) \odot \mathcal{A}''(I^{(l)}) \odot \mathcal{R}\{I^{(l)}\}

and the gradient :math:`\nabla W^{(l)} = u^{(l)T} \delta^{(l)}`, :math:`\nabla b^{(l)} = \sum_n \delta^{(l)}_n`:

.. math::
    (HV)_W^{(l)} = \mathcal{R}\{u^{(l)}\}^T \delta^{(l)} + u^{(l)T} \mathcal{R}\{\delta^{(l)}\}, \qquad
    (HV)_b^{(l)} = \sum_n \mathcal{R}\{\delta^{(l)}_n\}

At the output, with :math:`g = \partial L / \partial y^*` and :math:`H_L` the loss's second derivative
in y* (:attr:`manual.Loss.hessian`), :math:`\mathcal{R}\{g\} = H_L \mathcal{R}\{y^*\}` and

- a canonical pair (:math:`\delta^{(L)} = y^* - y`): :math:`\mathcal{R}\{\delta^{(L)}\} = \mathcal{R}\{y^*\}`;
- a pair whose loss gives a cancelled form (:attr:`manual.Loss.r_cancelled`; sigmoid + ce:
  :math:`y \odot \mathcal{R}\{y^*\}`): that form;
- an elementwise output: :math:`\mathcal{R}\{\delta^{(L)}\} = \mathcal{A}''(I^{(L)}) \odot \mathcal{R}\{I^{(L)}\} \odot g
  + \mathcal{A}'(I^{(L)}) \odot \mathcal{R}\{g\}`;
- softmax, :math:`\delta = O \odot g - O (O^T g)`:
  :math:`\mathcal{R}\{\delta\} = \mathcal{R}\{O\} \odot (g - O^T g) + O \odot \mathcal{R}\{g\}
  - O\,(O^T \mathcal{R}\{g\} + \mathcal{R}\{O\}^T g)`.

Everything is divided by N for ``reduction="mean"``. The generalized Gauss-Newton product
:math:`J^T H_L J V` (J the Jacobian of y* in the parameters) keeps only the path through
:math:`H_L`: the same forward R-pass gives :math:`J V = \mathcal{R}\{y^*\}`, and the first-order
backward pass carries :math:`H_L J V` down in place of :math:`\partial L/\partial y^*`.
"""

from __future__ import annotations

from typing import Any

from ._xp import Array, namespace
from .backward import _back_from, _deltas, _from_deltas
from .forward import Forward, _forward
from .params import Params
from .spec import Spec
from .validate import _check_array, _check_finite, check_inputs

__all__ = ["gnvp", "hvp"]


def _check_direction(spec: Spec, params: Params, V: Any) -> None:
    if not isinstance(V, Params):
        raise TypeError(f"V must be a manual.Params of the parameters' shapes, got {type(V).__name__}")
    if len(V.weights) != spec.depth:
        raise ValueError(f"V.weights must hold {spec.depth} arrays (one per layer of {spec}), got {len(V.weights)}")
    if (V.biases is None) != (params.biases is None):
        raise ValueError(
            f"V.biases must be {'given' if params.biases is not None else 'None'}, as params.biases "
            f"(spec bias={spec.bias})"
        )
    ref = params.weights[0]
    for l, (W, shape) in enumerate(zip(V.weights, spec.shapes())):
        _check_array(f"V.weights[{l}]", W, shape, ref)
        _check_finite(f"V.weights[{l}]", W)
        if V.biases is not None:
            _check_array(f"V.biases[{l}]", V.biases[l], (shape[1],), ref)
            _check_finite(f"V.biases[{l}]", V.biases[l])


def _r_forward(spec: Spec, params: Params, V: Params, fwd: Forward, xp: Any) -> tuple[list[Array], list[Array]]:
    """R{I} and R{O} of every layer (index l - 1); R{u^(1)} = R{X} = 0."""
    RI: list[Array] = []
    RO: list[Array] = []
    for l, entry in enumerate(spec.activations):
        RI_l = fwd.u[l] @ V.weights[l]
        if l > 0:
            RI_l = RI_l + RO[l - 1] @ params.weights[l]
        if V.biases is not None:
            RI_l = RI_l + V.biases[l]
        if entry.elementwise:
            RO_l = entry.prime(fwd.I[l], fwd.O[l], xp) * RI_l
        else:  # softmax: J r = O r - O (O . r), J symmetric, so its vjp of O r
            RO_l = entry.pullback(fwd.O[l], fwd.O[l] * RI_l, xp)
        RI.append(RI_l)
        RO.append(RO_l)
    return RI, RO


def _scaled(spec: Spec, a: Array, N: int) -> Array:
    return a / N if spec.reduction == "mean" else a


def _output_r_delta(spec: Spec, fwd: Forward, Y: Array, RI: Array, RO: Array, xp: Any) -> Array:
    """R{delta^(L)} (the module docstring's three cases), divided by N for a mean."""
    out, loss = spec.activations[-1], spec.loss
    I, O = fwd.I[-1], fwd.O[-1]
    if spec.canonical:
        R_delta = RO
    elif out.name in loss.r_cancelled:
        R_delta = loss.r_cancelled[out.name](I, O, Y, RI, RO, xp)
    else:
        g = loss.gradient(O, Y, xp)
        Rg = loss.hessian_times(O, Y, RO, xp)
        if out.elementwise:
            R_delta = out.second(I, O, xp) * RI * g + out.prime(I, O, xp) * Rg
        else:
            Og = xp.sum(O * g, axis=-1, keepdims=True)
            R_delta = (
                RO * (g - Og)
                + O * Rg
                - O * (xp.sum(O * Rg, axis=-1, keepdims=True) + xp.sum(RO * g, axis=-1, keepdims=True))
            )
    return _scaled(spec, R_delta, Y.shape[0])


def _exact_deltas(spec: Spec, params: Params, fwd: Forward, Y: Array, xp: Any) -> list[Array]:
    """Every delta of the objective whose Hessian :func:`hvp` takes: the first-order deltas, from
    the loss's exact output delta where it gives one for this output (:attr:`manual.Loss.exact_delta`;
    bce on softmax, whose first-order delta follows torch's floor max(y*(1 - y*), 1e-12) while its
    R{delta} is the exact objective's: with the floored delta the hidden layers' terms were of
    another objective, off by a relative 36 on a saturated case; issue 21)."""
    exact = spec.loss.exact_delta.get(spec.activations[-1].name)
    if exact is None:
        return _deltas(spec, params, fwd, Y, None)
    return _back_from(spec, params, fwd, _scaled(spec, exact(fwd.I[-1], fwd.O[-1], Y, xp), Y.shape[0]))


def _output_gn_delta(spec: Spec, fwd: Forward, Y: Array, RI: Array, RO: Array, xp: Any) -> Array:
    """The output delta of the Gauss-Newton pass: H_L R{y*} pulled back through the output
    activation, divided by N for a mean."""
    out, O = spec.activations[-1], fwd.O[-1]
    if out.name in spec.loss.gn_cancelled:
        return _scaled(spec, spec.loss.gn_cancelled[out.name](fwd.I[-1], O, Y, RI, RO, xp), Y.shape[0])
    HJV = spec.loss.hessian_times(O, Y, RO, xp)
    if out.elementwise:
        d = out.prime(fwd.I[-1], O, xp) * HJV
    else:
        d = out.pullback(O, O * HJV, xp)
    return _scaled(spec, d, Y.shape[0])


def _needs(spec: Spec, second: bool) -> None:
    """Ask every entry for what the products need before any arithmetic (a ValueError naming it):
    the loss's hessian (not for the Hessian of a canonical pair), and with ``second`` A''."""
    if spec.loss.hessian is None and not (second and spec.canonical):
        spec.loss.hessian_times(None, None, None, None)  # raises, naming the loss
    if second:
        for entry in spec.activations[:-1] if spec.canonical else spec.activations:
            if entry.elementwise and entry.second_derivative is None:
                entry.second(None, None, None)  # raises, naming the activation


def _prepared(
    spec: Spec, params: Params, X: Array, Y: Array, V: Params, *, second: bool
) -> tuple[Any, Forward, list[Array], list[Array]]:
    """What both products start from: every argument checked and every entry asked for what the
    product needs (``second``: A'' too, for :func:`hvp`), then the forward pass and the forward
    R-pass. Returns the arrays' namespace, the forward pass, R{I} and R{O}."""
    check_inputs(spec, params, X, Y)
    _check_direction(spec, params, V)
    _needs(spec, second=second)
    xp = namespace(X)
    fwd = _forward(spec, params, X)
    RI, RO = _r_forward(spec, params, V, fwd, xp)
    return xp, fwd, RI, RO


def hvp(spec: Spec, params: Params, X: Array, Y: Array, V: Params) -> Params:
    r"""The Hessian of the objective times V, :math:`H V`, in the layout of ``params``, by the
    forward and backward R-passes of the module docstring (about the cost of two backward passes;
    the Hessian is never formed).

    Args:
        spec: the network; every elementwise activation needs ``second_derivative`` (the built-ins
            have it; an output of a canonical pair does not) and the loss ``hessian``, except where
            the canonical shortcut :math:`\mathcal{R}\{\delta^{(L)}\} = \mathcal{R}\{y^*\}` applies.
        params: the point, as for :func:`manual.gradients`.
        X, Y: inputs ``(N, D)`` and targets ``(N, J)``.
        V: the direction, a ``Params`` of the parameters' shapes, library and dtype.

    Example:
        >>> import numpy as np
        >>> from manual import Spec, init_params
        >>> spec = Spec((2, 3, 1), ("tanh", "identity"), "squared")
        >>> p = init_params(spec, np.random.default_rng(0))
        >>> HV = hvp(spec, p, np.ones((4, 2)), np.zeros((4, 1)), p)
        >>> [a.shape for a in HV.weights]
        [(2, 3), (3, 1)]
    """
    xp, fwd, RI, RO = _prepared(spec, params, X, Y, V, second=True)
    delta = _exact_deltas(spec, params, fwd, Y, xp)
    R_delta = [_output_r_delta(spec, fwd, Y, RI[-1], RO[-1], xp)]
    for l in range(spec.depth - 2, -1, -1):
        entry = spec.activations[l]
        back = delta[l + 1] @ params.weights[l + 1].T  # delta^(l+1) W^(l+1)T
        R_back = R_delta[0] @ params.weights[l + 1].T + delta[l + 1] @ V.weights[l + 1].T
        R_delta.insert(
            0,
            R_back * entry.prime(fwd.I[l], fwd.O[l], xp) + back * entry.second(fwd.I[l], fwd.O[l], xp) * RI[l],
        )
    HV_W = [fwd.u[0].T @ R_delta[0]]
    HV_W += [RO[l - 1].T @ delta[l] + fwd.u[l].T @ R_delta[l] for l in range(1, spec.depth)]
    HV_b = None if params.biases is None else [xp.sum(d, axis=0) for d in R_delta]
    return Params(HV_W, HV_b)


def gnvp(spec: Spec, params: Params, X: Array, Y: Array, V: Params) -> Params:
    r"""The generalized Gauss-Newton matrix times V, :math:`J^T H_L J V`, in the layout of ``params``:
    J the Jacobian of the network's output y* in the parameters, :math:`H_L` the loss's second
    derivative in y* (:attr:`manual.Loss.hessian`). One forward R-pass gives
    :math:`JV = \mathcal{R}\{y^*\}`; the slides' backward pass then carries
    :math:`\delta^{(L)} = \mathcal{A}'(I^{(L)}) \odot H_L JV` (softmax: its vjp of
    :math:`y^* \odot H_L JV`; where the loss gives a cancelled form for the output,
    :attr:`manual.Loss.gn_cancelled`, that form, e.g. sigmoid + ce :math:`y (1 - y^*)^2 \mathcal{R}\{I\}`)
    down with :math:`\delta^{(l)} = (\delta^{(l+1)} W^{(l+1)T}) \odot
    \mathcal{A}'(I^{(l)})` and gives :math:`u^{(l)T} \delta^{(l)}`, :math:`\sum_n \delta^{(l)}_n`.
    No second derivative of an activation enters. Divided by N for ``reduction="mean"``.

    Where the loss is convex in y* (every built-in: :math:`H_L` is diagonal and >= 0), the product is
    that of a positive semi-definite matrix: :math:`\langle V, GV \rangle = \|JV\|^2_{H_L} \ge 0`.
    """
    xp, fwd, RI, RO = _prepared(spec, params, X, Y, V, second=False)
    delta = _back_from(spec, params, fwd, _output_gn_delta(spec, fwd, Y, RI[-1], RO[-1], xp))
    return _from_deltas(fwd, delta, params.biases is not None, xp)
