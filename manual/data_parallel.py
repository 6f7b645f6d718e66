r"""Data-parallel gradients: the batch split over workers, each computing its shard's part of the
slides' sums, and an all-reduce adding the parts up.

Slide "Weight updates: compact representation": the gradient of the summed objective is a sum over
examples, :math:`\nabla W^{(l)} = \sum_n u_n^{(l)T} \delta_n^{(l)}`, so over shards :math:`k`

.. math::
    \nabla W^{(l)} = \sum_k U_k^{(l)T} \Delta_k^{(l)}, \qquad \nabla b^{(l)} = \sum_k \sum_{n \in k} \delta_n^{(l)},

each worker computing its own term and an all-reduce the sum. For ``reduction="mean"`` the sum is
divided by the *global* :math:`N = \sum_k N_k`, itself summed by the same all-reduce: dividing each
shard's sum by its own :math:`N_k` and averaging over the workers (what averaging the workers' own
mean-reduced gradients does) equals this only when every shard has the same size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ._xp import Array, namespace
from .backward import gradients
from .params import Params
from .spec import Spec
from .validate import check_inputs, check_params

__all__ = ["data_parallel_gradients"]


def data_parallel_gradients(
    spec: Spec, params: Params, X: Array, Y: Array, allreduce: Callable[[Array], Array]
) -> Params:
    """This worker's share of the batch in, the whole batch's gradient out (the same on every worker).

    Args:
        spec, params: the network and its weights (the same on every worker).
        X, Y: this worker's shard, ``(N_k, D)`` and ``(N_k, J)``; ``N_k = 0`` (an empty shard) is
            allowed and contributes zeros.
        allreduce: ``allreduce(a) -> sum of a over all workers``, an array of the same shape and kind
            (NumPy in, NumPy out; a tensor in, a tensor out), e.g.
            :func:`torch_ref.data_parallel.distributed.allreduce` on ``torch.distributed``. Called the same number of
            times in the same order on every worker, as a collective must be: once per parameter array
            (``W1, b1, W2, ...``), then once with ``[N_k]`` when the reduction is ``"mean"``.

    Returns:
        ``Params``: the gradient of the objective over the union of the shards, in the layout of
        ``params``.
    """
    check_params(spec, params)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y must be (N_k, D) and (N_k, J) with one N_k, got {tuple(X.shape)} and {tuple(Y.shape)}"
        )
    N_k = int(X.shape[0])
    xp = namespace(params.weights[0])
    summed = replace(spec, reduction="sum")
    if N_k > 0:
        check_inputs(spec, params, X, Y)
        local = gradients(summed, params, X, Y)
    else:
        local = params.map(xp.zeros_like)
    total = local.map(lambda a: _summed(allreduce, a))
    if spec.reduction == "sum":
        return total
    N = _summed(allreduce, xp.asarray([float(N_k)], dtype=params.weights[0].dtype, device=_device(params)))
    count = float(N[0])
    if not count >= 1:
        raise ValueError(f"every shard is empty (allreduce gave a global N of {count}): nothing to average over")
    return total.map(lambda a: a / count)


def _device(params: Params) -> object:
    W = params.weights[0]
    return getattr(W, "device", "cpu")


def _summed(allreduce: Callable[[Array], Array], a: Array) -> Array:
    """``allreduce(a)``, checked: it must give back an array of ``a``'s shape."""
    out = allreduce(a)
    if getattr(out, "shape", None) != a.shape:
        raise ValueError(
            f"allreduce must return the sum over workers as an array of the shape it was given, "
            f"{tuple(a.shape)}; {allreduce!r} returned {type(out).__name__} of shape {getattr(out, 'shape', None)}"
        )
    return out
