r"""The backward pass: the delta recursion of the slides, general to any depth.

``delta[l-1]`` is :math:`\delta^{(l)} = \partial(\text{objective}) / \partial I^{(l)}`, shape
``(N, sizes[l])``, the objective being :math:`\sum_n L` (reduction ``"sum"``) or that sum over N.
"""

from __future__ import annotations

from typing import Any

from ._xp import Array, namespace
from .activation import Activation
from .forward import Forward, _forward
from .loss import Loss
from .params import Params
from .spec import Spec
from .validate import check_inputs

__all__ = ["deltas", "gradients", "head_delta", "input_gradient", "output_delta"]


def output_delta(spec: Spec, I: Array, O: Array, Y: Array, *, simplified: bool | None = None) -> Array:
    r"""The output layer's delta :math:`\delta^{(L)} = \partial(\text{objective})/\partial I^{(L)}`,
    shape ``(N, J)``.

    - simplified (canonical pairs only, :attr:`manual.Loss.canonical`: sigmoid + bce, softmax + ce,
      identity + squared): :math:`\delta^{(L)} = y^* - y` (slide "Weight updates: compact
      representation", :math:`\delta^{(2)} = (y^* - y)`).
    - a cancelled form the loss's entry gives for this output (:attr:`manual.Loss.cancelled`;
      sigmoid + ce: :math:`-y(1 - y^*)`, y* cancelled so an output that underflowed gives the limit).
    - general: :math:`\delta^{(L)} = \partial L/\partial y^* \odot \mathcal{A}'(I^{(L)})`, and for a
      vector-valued output (softmax) its vector-Jacobian product of
      :math:`h = y^* \odot \partial L/\partial y^*` (:meth:`manual.Loss.h`, y* cancelled where the
      loss allows, ce: :math:`h = -y`), :math:`\delta = h - y^* \sum_k h_k` for softmax.

    Either is divided by N for ``reduction="mean"``.

    Args:
        spec: the network.
        I, O: the output layer's pre-activation and output y*, shape ``(N, J)``.
        Y: the targets y, shape ``(N, J)``.
        simplified: ``None`` takes the simplification wherever it applies; ``True`` demands it
            (``ValueError`` for a non-canonical pair); ``False`` forces the general formula.
    """
    return head_delta(spec.activations[-1], spec.loss, spec.reduction, I, O, Y, simplified=simplified)


def head_delta(
    out: Activation, loss: Loss, reduction: str, I: Array, O: Array, Y: Array, *, simplified: bool | None = None
) -> Array:
    """:func:`output_delta` for an output activation ``out`` and a ``loss`` (any network's head, not only
    a :class:`~manual.Spec`'s), ``I``, ``O``, ``Y`` of shape ``(N, J)``."""
    canonical = out.name in loss.canonical
    if simplified is None:
        simplified = canonical
    if simplified and not canonical:
        raise ValueError(
            f"simplified=True needs a canonical output/loss pair (loss {loss.name!r} declares "
            f"{loss.canonical or 'none'}), got {out.name}+{loss.name}"
        )
    xp = namespace(O, Y)
    if simplified:
        delta = O - Y
    elif not out.elementwise:
        delta = out.pullback(O, loss.h(O, Y, xp), xp)
    elif out.name in loss.cancelled:
        delta = loss.cancelled[out.name](I, O, Y, xp)
    else:
        delta = loss.gradient(O, Y, xp) * out.prime(I, O, xp)
    if reduction == "mean":
        delta = delta / Y.shape[0]
    return delta


def _deltas(spec: Spec, params: Params, fwd: Forward, Y: Array, simplified: bool | None) -> list[Array]:
    return _back_from(spec, params, fwd, output_delta(spec, fwd.I[-1], fwd.O[-1], Y, simplified=simplified))


def _back_from(spec: Spec, params: Params, fwd: Forward, delta_L: Array) -> list[Array]:
    """Every layer's delta from the output layer's ``delta_L`` down (also the Gauss-Newton pass of
    :func:`manual.gnvp`, which starts from another output delta)."""
    xp = namespace(delta_L)
    delta = [delta_L]
    for l in range(spec.depth - 2, -1, -1):
        # slide "Going backward....": delta^(l) = (delta^(l+1) (w^(l+1))^T) ⊙ A'(I^(l))
        W_next = params.weights[l + 1]
        delta.insert(0, (delta[0] @ W_next.T) * spec.activations[l].prime(fwd.I[l], fwd.O[l], xp))
    return delta


def _from_deltas(fwd: Forward, delta: list[Array], bias: bool, xp: Any) -> Params:
    """slide "Going backward....": the update w^(l) - xi u^(l) delta^(l), i.e. grad W^(l) = u^(l)^T
    delta^(l), which sums over the N examples; grad b^(l) = sum_n delta^(l)_n."""
    grad_W = [u.T @ d for u, d in zip(fwd.u, delta)]
    grad_b = [xp.sum(d, axis=0) for d in delta] if bias else None
    return Params(grad_W, grad_b)


def deltas(spec: Spec, params: Params, X: Array, Y: Array, *, simplified: bool | None = None) -> list[Array]:
    r"""Every layer's delta, ``[delta^(1), ..., delta^(L)]``, each of shape ``(N, sizes[l])``.

    .. math::
        \delta^{(l)} = \left(\delta^{(l+1)} (W^{(l+1)})^T\right) \odot \mathcal{A}'(I^{(l)})

    the slide "Going backward...." recursion (there :math:`\delta^{(1)} =
    (\delta^{(2)} (\mathbf{w}^{(2)})^T) \odot \mathcal{Z}`), applied from the output down.
    ``simplified`` chooses the output delta's formula, see :func:`output_delta`.
    """
    check_inputs(spec, params, X, Y)
    return _deltas(spec, params, _forward(spec, params, X), Y, simplified)


def _gradients(spec: Spec, params: Params, X: Array, Y: Array, simplified: bool | None = None) -> Params:
    fwd = _forward(spec, params, X)
    return _from_deltas(fwd, _deltas(spec, params, fwd, Y, simplified), params.biases is not None, namespace(X))


def gradients(spec: Spec, params: Params, X: Array, Y: Array, *, simplified: bool | None = None) -> Params:
    r"""The gradient of the objective with respect to every weight and bias, in the layout of ``params``.

    .. math::
        \nabla W^{(l)} = (u^{(l)})^T \delta^{(l)} \quad (in, out), \qquad
        \nabla b^{(l)} = \sum_n \delta^{(l)}_n \quad (out,)

    Args:
        spec: the network.
        params: its weights, arrays of one library (NumPy or torch) and one dtype.
        X: inputs, shape ``(N, D)``.
        Y: targets, shape ``(N, J)``.
        simplified: the output delta's formula, see :func:`output_delta`.

    Example:
        >>> import numpy as np
        >>> from manual import Spec, init_params
        >>> spec = Spec((2, 2, 1), ("sigmoid", "sigmoid"), "bce")
        >>> p = init_params(spec, np.random.default_rng(0))
        >>> [g.shape for g in gradients(spec, p, np.ones((3, 2)), np.ones((3, 1))).weights]
        [(2, 2), (2, 1)]
    """
    check_inputs(spec, params, X, Y)
    return _gradients(spec, params, X, Y, simplified)


def input_gradient(spec: Spec, params: Params, X: Array, Y: Array) -> Array:
    r"""The gradient of the objective with respect to the inputs, :math:`\delta^{(1)} (W^{(1)})^T`,
    shape ``(N, D)``."""
    check_inputs(spec, params, X, Y)
    return _deltas(spec, params, _forward(spec, params, X), Y, None)[0] @ params.weights[0].T
