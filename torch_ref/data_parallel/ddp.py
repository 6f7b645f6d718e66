r"""The reference twin of a data-parallel derivation: torch's ``DistributedDataParallel`` on the
:mod:`torch_ref` network, on this rank's shard.

DDP's convention: each rank differentiates its own objective on its own shard, and DDP's all-reduce
*averages* the ranks' gradients (the sum over ranks divided by the world size W). So, with shard
sizes :math:`N_1, \dots, N_W` and :math:`G_k` the summed gradient of shard k,

- ``reduction="sum"``: DDP gives :math:`\frac{1}{W}\sum_k G_k`, the whole batch's gradient divided by W;
- ``reduction="mean"``: DDP gives :math:`\frac{1}{W}\sum_k G_k / N_k`, the mean of the ranks' own
  means, which is the whole batch's mean gradient :math:`\sum_k G_k / N` only when every
  :math:`N_k = N / W`.

An empty shard has no mean of its own (torch would give NaN, 0/0); here it contributes a zero
gradient to DDP's average, as a rank with no examples and a summed objective would. (torch's
``DistributedSampler`` never makes one: it pads the shards to equal sizes by repeating examples.)

:func:`ddp_gradients` has the signature of a ``dp_grad_fn``: ``check_data_parallel(ddp_gradients)``
shows DDP's convention against the whole batch's gradient, and the oracle's reports run it on the
failing case's shards to say whether a derivation does what DDP does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from manual import Params, Spec

from ..twin.build import Network, build
from ..twin.convert import to_torch

__all__ = ["ddp_gradients"]


class _Objective(nn.Module):
    """The network's objective as a module's forward, so that DDP's forward sees the whole step."""

    def __init__(self, net: Network, empty: bool) -> None:
        super().__init__()
        self.net, self.empty = net, empty

    def forward(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        if self.empty:  # every parameter still takes part (a zero gradient), as DDP requires
            return sum(((p * 0).sum() for p in self.net.parameters()), torch.zeros((), dtype=X.dtype))
        return self.net.objective(X, Y)


def ddp_gradients(spec: Spec, params: Params, X: Any, Y: Any, allreduce: Any = None) -> Params:
    """The gradient torch DDP leaves in ``.grad`` on this rank: the :func:`torch_ref.build` network of
    ``spec`` holding ``params``, wrapped in ``DistributedDataParallel`` in the current default process
    group, its objective (``spec.reduction`` over this rank's shard ``X``, ``Y``) differentiated by
    ``.backward()``. ``allreduce`` is not used (DDP does its own); it is there so that this function
    is a ``dp_grad_fn``. Returns tensors of the parameters' dtype and device in the slides' layout
    (CUDA parameters need nccl and one device per rank, as DDP requires).
    """
    del allreduce
    if not torch.distributed.is_initialized():
        raise RuntimeError(
            "ddp_gradients needs a torch.distributed process group: call torch_ref.data_parallel.distributed.init first"
        )
    net = build(spec, params)
    weight = net.layers()[0].weight
    dtype, device = weight.dtype, weight.device
    X_t = to_torch(X).to(device=device, dtype=dtype)
    Y_t = to_torch(Y).to(device=device, dtype=dtype)
    ddp = DistributedDataParallel(
        _Objective(net, X_t.shape[0] == 0),
        device_ids=None if device.type == "cpu" else [device.index or 0],
    )
    ddp(X_t, Y_t).backward()
    return net.grads()
