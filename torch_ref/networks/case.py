"""One drawn network case: the architecture, its parameters, the batch, the targets and the dropout
masks, all rebuilt from (network, input shape, seed, dtype) by :func:`network_case`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from manual.network import CROSS_ENTROPY, Network

__all__ = ["NetworkCase", "network_case"]


@dataclass(frozen=True)
class NetworkCase:
    """A network and the values one check runs it on (NumPy, the drawn dtype; integer tokens and
    class indices as int64, masks as bool).

    Attributes:
        net: the architecture.
        params: every parameter by name, in forward order.
        X, Y: the batch and its targets.
        masks: each dropout node's mask by path.
        shape: X's shape; seed: the seed every value was drawn from (``network_case`` rebuilds them).
        family: the draw's family ("mlp", "cnn", "transformer"; "" for a given network).
        regimes: what the case meets, verified on its values ("ties", "causal", "dropout", ...).
    """

    net: Network
    params: Mapping[str, np.ndarray]
    X: np.ndarray
    Y: np.ndarray
    masks: Mapping[str, np.ndarray]
    shape: tuple[int, ...]
    seed: int
    family: str = ""
    regimes: tuple[str, ...] = field(default=())

    @property
    def dtype(self) -> np.dtype:
        return next(iter(self.params.values())).dtype

    def rebuild(self) -> str:
        """Python that rebuilds the case (``from manual.network import *`` and ``import torch_ref``)."""
        return (
            f"torch_ref.network_case({self.net!r}, {tuple(self.shape)!r}, seed={self.seed}, dtype={self.dtype.name!r})"
        )

    def params_as(self, dtype: Any) -> dict[str, np.ndarray]:
        """The parameters converted to ``dtype``."""
        return {k: v.astype(dtype) for k, v in self.params.items()}

    @property
    def N(self) -> int:
        return int(self.X.shape[0])

    def __repr__(self) -> str:
        regimes = f" [{', '.join(self.regimes)}]" if self.regimes else ""
        return f"{self.net}, X{tuple(self.X.shape)}{regimes}"


def _inputs(net: Network, shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype) -> np.ndarray:
    first = next(net.nodes())[1]
    if first.name == "embedding":
        return rng.integers(0, first.shapes["weight"][0], size=shape).astype(np.int64)
    return rng.standard_normal(shape).astype(dtype)


def _targets(net: Network, out: np.ndarray, rng: np.random.Generator, dtype: np.dtype) -> np.ndarray:
    if net.head.loss == CROSS_ENTROPY:
        return rng.integers(0, out.shape[-1], size=out.shape[:-1]).astype(np.int64)
    name = net.head.name
    if name == "ce":  # a distribution per example
        return rng.dirichlet(np.ones(out.shape[-1]), size=out.shape[0]).astype(dtype)
    if name == "bce":
        return rng.random(out.shape).astype(dtype)
    return rng.standard_normal(out.shape).astype(dtype)


def _params(net: Network, rng: np.random.Generator, dtype: np.dtype) -> dict[str, np.ndarray]:
    """The nodes' own initialisation, then norms' γ and β moved off 1 and 0 (so that a gradient
    that forgets γ, or β's, is visible)."""
    params = net.init(rng)
    for path, node in net.nodes():
        if node.name in ("layer_norm", "rms_norm", "batch_norm"):
            D = node.shapes["weight"]
            params[f"{path}.weight"] = rng.uniform(0.5, 1.5, size=D)
            if "bias" in node.shapes:
                params[f"{path}.bias"] = rng.uniform(-0.5, 0.5, size=D)
    return {k: v.astype(dtype) for k, v in params.items()}


def network_case(
    net: Network, shape: tuple[int, ...], seed: int, dtype: Any = "float64", *, family: str = ""
) -> NetworkCase:
    """The case of ``net`` on an input of ``shape`` whose values (parameters, batch, targets, dropout
    masks) are drawn from ``numpy.random.default_rng(seed)``, in ``dtype``.

    Example:
        >>> from manual.network import Network, linear
        >>> network_case(Network([linear(3, 2)]), (4, 3), seed=0).Y.shape
        (4,)
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    rng = np.random.default_rng(seed)
    params = _params(net, rng, dtype)
    X = _inputs(net, tuple(shape), rng, dtype)
    fwd = net.forward(params, X, rng=rng)
    Y = _targets(net, np.asarray(fwd.out), rng, dtype)
    regimes = _regimes(net, fwd)
    return NetworkCase(net, params, X, Y, dict(fwd.masks), tuple(shape), seed, family, regimes)


def _regimes(net: Network, fwd: Any) -> tuple[str, ...]:
    found = []
    names = {node.name for _, node in net.nodes()}
    if any(node.constants.get("causal") for _, node in net.nodes()):
        found.append("causal mask")
    if "dropout" in names:
        found.append("dropout")
    if any(True for _ in net.blocks()):
        found.append("residual")
    if names & {"layer_norm", "batch_norm", "rms_norm"}:
        found.append("normalization")
    if names & {"max_pool2d", "avg_pool2d"}:
        found.append("pooling")
    return tuple(found)
