"""The weights of a network, in the slides' layout, and their random initialisation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._xp import Array
from .spec import Spec

__all__ = ["Params", "init_params"]


@dataclass(frozen=True)
class Params:
    """Weights (and biases) of every layer, or gradients with the same layout.

    Attributes:
        weights: ``weights[l-1]`` is the slides' ``w^(l)`` with shape ``(in, out)``, so that
            ``I^(l) = u^(l) @ W^(l) (+ b^(l))`` (the slides' ``I = w^T u`` for a batch of row vectors).
        biases: ``biases[l-1]`` has shape ``(out,)``; ``None`` when the spec has ``bias=False``.
    """

    weights: tuple[Array, ...]
    biases: tuple[Array, ...] | None = None

    def __init__(self, weights: Any, biases: Any = None) -> None:
        if isinstance(weights, (str, bytes)) or not hasattr(weights, "__iter__"):
            raise TypeError(f"weights must be a sequence of arrays, got {type(weights).__name__}")
        if biases is not None and (isinstance(biases, (str, bytes)) or not hasattr(biases, "__iter__")):
            raise TypeError(f"biases must be a sequence of arrays or None, got {type(biases).__name__}")
        object.__setattr__(self, "weights", tuple(weights))
        object.__setattr__(self, "biases", None if biases is None else tuple(biases))

    def arrays(self) -> list[tuple[str, Array]]:
        """``[("W1", ...), ("b1", ...), ("W2", ...), ...]``: every array with its name, layer by layer."""
        named = []
        for l, W in enumerate(self.weights, start=1):
            named.append((f"W{l}", W))
            if self.biases is not None:
                named.append((f"b{l}", self.biases[l - 1]))
        return named

    def map(self, fn: Callable[[Array], Array]) -> Params:
        """A new :class:`Params` with ``fn`` applied to every array."""
        biases = None if self.biases is None else [fn(b) for b in self.biases]
        return Params([fn(W) for W in self.weights], biases)


def init_params(
    spec: Spec,
    rng: np.random.Generator,
    *,
    gain: float = 1.0,
    dtype: Any = np.float64,
) -> Params:
    """Draw weights uniformly from ``[-gain / sqrt(in), gain / sqrt(in)]`` (torch's ``nn.Linear`` rule
    at ``gain=1``), biases likewise, as NumPy arrays.

    Args:
        spec: the network.
        rng: the random generator; results depend on nothing else.
        gain: scales every bound; larger values drive sigmoid and tanh into saturation.
        dtype: the NumPy dtype of the arrays.

    Example:
        >>> p = init_params(Spec((2, 3, 1), ("tanh", "sigmoid"), "bce"), np.random.default_rng(0))
        >>> [W.shape for W in p.weights]
        [(2, 3), (3, 1)]
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    weights, biases = [], []
    for fan_in, fan_out in spec.shapes():
        bound = gain / np.sqrt(fan_in)
        weights.append(rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(dtype))
        biases.append(rng.uniform(-bound, bound, size=(fan_out,)).astype(dtype))
    return Params(weights, biases if spec.bias else None)
