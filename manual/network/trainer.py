r"""Training a :class:`~manual.network.Network`: its backward (the δ recursion) and an update rule of
:mod:`manual.optim`, each parameter updated in place.

- ``"sgd"``: ``torch.optim.SGD`` (momentum, dampening, Nesterov, weight decay; the slides' plain
  :math:`P \leftarrow P - \xi \nabla P` by default), :class:`manual.optim.SGD`;
- ``"adam"``: ``torch.optim.Adam`` (weight decay as an L2 term), :class:`manual.optim.Adam`;
- ``"adamw"``: ``torch.optim.AdamW`` (decoupled weight decay, torch's default ``weight_decay=0.01``).

Every step's gradients come from the parameters before the step (the whole backward first, then the
updates), as torch's ``loss.backward(); optimizer.step()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import optim
from .._xp import Array, namespace
from .network import Network

__all__ = ["OPTIMIZERS", "NetworkTrainer"]

OPTIMIZERS = ("sgd", "adam", "adamw")


class NetworkTrainer:
    """Owns a copy of a network's parameters and steps them in place.

    Args:
        net: the network.
        params: its starting parameters by name (copied), NumPy arrays or torch tensors.
        lr: the learning rate :math:`\\xi`.
        optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"``.
        **options: the rule's options (:class:`manual.optim.SGD`: momentum, dampening, nesterov,
            weight_decay; :class:`manual.optim.Adam`: betas, eps, weight_decay), as torch.optim's.

    Example:
        >>> import numpy as np
        >>> from manual.network import Network, linear
        >>> net = Network([linear(2, 3), "relu", linear(3, 2)])
        >>> t = NetworkTrainer(net, net.init(np.random.default_rng(0)), lr=0.1, optimizer="adamw")
        >>> round(float(t.step(np.ones((4, 2)), np.zeros(4, dtype=np.int64))), 3) > 0
        True
    """

    def __init__(self, net: Network, params: Mapping[str, Array], *, lr: float, optimizer: str = "sgd", **options: Any):
        if not isinstance(net, Network):
            raise TypeError(f"net must be a manual.network.Network, got {type(net).__name__}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        net.check_params(params)
        where = f"manual.network.NetworkTrainer(optimizer={optimizer!r})"
        if optimizer == "sgd":
            self.rule: optim.SGD | optim.Adam = optim.make_rule(optim.SGD, lr, options, where=where)
        else:
            if "decoupled" in options:
                raise TypeError(f"{where}: decoupled is set by the optimizer's name ('adam' or 'adamw')")
            given = {"weight_decay": 0.01, **options} if optimizer == "adamw" else dict(options)
            self.rule = optim.make_rule(optim.Adam, lr, {**given, "decoupled": optimizer == "adamw"}, where=where)
        self.net, self.optimizer, self.lr = net, optimizer, self.rule.lr
        first = next(iter(params.values()))
        xp = namespace(first)
        self.params: dict[str, Array] = {k: xp.asarray(_plain(v), copy=True) for k, v in params.items()}

    def step(
        self, X: Array, Y: Array, *, masks: Mapping[str, Array] | None = None, rng: np.random.Generator | None = None
    ) -> Array:
        """One step on the batch ``(X, Y)``; dropout masks from ``masks`` or drawn from ``rng``. Returns
        the objective before the step."""
        if masks is None and rng is not None:
            masks = self.net.forward(self.params, X, rng=rng).masks
        value, grads, _ = self.net.backward(self.params, X, Y, masks=masks)
        self.rule.begin_step()
        for name, P in self.params.items():
            self.rule.update(name, P, grads[name])
        return value


def _plain(a: Array) -> Array:
    return a.detach() if getattr(a, "requires_grad", False) else a
