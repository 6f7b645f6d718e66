r"""A network's gradient computed data-parallel: each rank runs the δ recursion on its shard of the
batch, and an all-reduce sums the ranks' results.

The objective's sum over examples splits over the shards: :math:`\nabla \sum_n L_n = \sum_r \nabla
\sum_{n \in r} L_n`, so each rank differentiates its shard's *sum* and the all-reduce adds them; for
``"mean"`` the sum is divided by the whole batch's count (examples, or positions for cross-entropy
over sequences), itself all-reduced from the shards' counts, never by the shard's own. Batch
normalization is not data-parallel this way (each rank's statistics are its shard's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .._xp import Array, namespace
from .head import CROSS_ENTROPY
from .network import Network

__all__ = ["data_parallel_gradients"]


def data_parallel_gradients(
    net: Network,
    params: Mapping[str, Array],
    X: Array,
    Y: Array,
    allreduce: Callable[[Array], Array],
    *,
    masks: Mapping[str, Array] | None = None,
) -> dict[str, Array]:
    """The whole batch's gradients on every rank, from this rank's shard ``X``, ``Y`` (``masks``: its rows
    of every dropout mask) and ``allreduce`` (sums an array over the ranks, in place or returned).
    A rank with an empty shard contributes zeros."""
    if any(node.name == "batch_norm" for _, node in net.nodes()):
        raise ValueError(
            "a network with batch_norm has no data-parallel gradient of the whole batch (per-shard statistics)"
        )
    xp = namespace(*params.values())
    summed = Network(net.layers, net.loss, reduction="sum")
    if X.shape[0]:
        grads = summed.gradients(params, X, Y, masks=masks)
    else:
        grads = {k: xp.zeros_like(p) for k, p in params.items()}
    count = Y.size if net.loss == CROSS_ENTROPY else Y.shape[0]
    first = next(iter(params.values()))
    total = allreduce(xp.asarray([float(count)], dtype=first.dtype, device=getattr(first, "device", None)))
    out = {}
    for k in net.parameters():
        g = allreduce(grads[k])
        out[k] = g / total[0] if net.reduction == "mean" else g
    return out
