r"""One entry of a :class:`manual.Network`: a layer with the shapes of its parameters and its constants.

A node is to a :class:`manual.Layer` what ``nn.Linear(3, 4)`` is to ``F.linear``: the layer's
hand-derived forward and backward, plus what a network needs to hold it (each parameter's shape, its
initialisation, the constants it is called with). Its backward is the layer's, untouched:

.. math::
    \delta_{in},\ \{\nabla p\} = \mathrm{backward}(\delta_{out}, x, p, \text{constants})

Arrays a layer takes that are not trained are made by the node on each call: a dropout mask comes
from the network's ``masks`` (one per dropout node and call), a batch norm's running statistics, an
attention mask that keeps every key, are fixed (:attr:`Node.fixed`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from .._xp import Array
from ..layers.layer import Layer

__all__ = ["Init", "Node"]

Init = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]
"""``init(rng, shape) -> float64 array``: how one parameter is drawn."""


@dataclass(frozen=True, eq=False)
class Node:
    """A layer in a network.

    Args:
        layer: the :class:`manual.Layer` (a built-in of :data:`manual.LAYERS`, or your own).
        shapes: each trained parameter's shape, in the layer's names (``{"weight": (3, 4), "bias": (4,)}``).
        constants: the layer's non-array arguments (``{"eps": 1e-5}``); the layer's defaults for the rest.
        init: each trained parameter's initialisation, ``init(rng, shape)``.
        fixed: ``fixed(x, xp) -> {name: array}``: arrays the layer takes that are not trained
            (running statistics, a mask that keeps every key), made for the input ``x``.
        masked: the name of the argument that takes the network's dropout mask for this node (``"mask"``),
            or ``""``; the mask is drawn per call, ``rng.random(x.shape) >= p``.
        tokens: the layer works on the last axis (linear, layer norm): an input ``(N, T, D)`` is handed
            to it as ``(N*T, D)`` and its results reshaped back.
        label: how reports name the node (``"linear 3->4"``); the layer's name by default.
        activation: the :class:`manual.Activation` when the node is one (the loss head reads it).
        call: the Python that builds the node (``"linear(3, 4)"``), its repr; reports print it.
    """

    layer: Layer
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    constants: Mapping[str, Any] = field(default_factory=dict)
    init: Mapping[str, Init] = field(default_factory=dict)
    fixed: Callable[[Array, Any], dict[str, Array]] | None = None
    masked: str = ""
    tokens: bool = False
    label: str = ""
    activation: Any = None
    call: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.layer, Layer):
            raise TypeError(f"Node.layer must be a manual.Layer, got {self.layer!r} ({type(self.layer).__name__})")
        unknown = sorted(set(self.shapes) - set(self.layer.params))
        if unknown:
            raise ValueError(
                f"Node {self.layer.name!r}: shapes names {unknown}, which are not parameters of the layer "
                f"({', '.join(self.layer.params) or 'none'})"
            )
        unknown = sorted(set(self.constants) - set(self.layer.constants))
        if unknown:
            raise ValueError(
                f"Node {self.layer.name!r}: constants {unknown} are not the layer's (it takes "
                f"{', '.join(self.layer.constants) or 'none'})"
            )
        missing = sorted(set(self.shapes) - set(self.init))
        if missing:
            raise ValueError(f"Node {self.layer.name!r}: no init for {missing}")
        object.__setattr__(self, "shapes", MappingProxyType({k: tuple(v) for k, v in self.shapes.items()}))
        object.__setattr__(self, "constants", MappingProxyType(dict(self.constants)))
        object.__setattr__(self, "init", MappingProxyType(dict(self.init)))
        if not self.label:
            object.__setattr__(self, "label", self.layer.name)

    @property
    def name(self) -> str:
        """The layer's name."""
        return self.layer.name

    def arguments(self, x: Array, params: Mapping[str, Array], mask: Array | None, xp: Any) -> dict[str, Any]:
        """Every argument after ``x``: the trained parameters, the fixed arrays, the mask, the constants."""
        args: dict[str, Any] = dict(params)
        if self.fixed is not None:
            args.update(self.fixed(x, xp))
        if self.masked:
            if mask is None:
                raise ValueError(f"node {self.label!r} needs a dropout mask: pass masks= (or rng=) to Network.forward")
            args[self.masked] = mask
        return {**args, **self.constants}

    def forward(self, x: Array, params: Mapping[str, Array], mask: Array | None, xp: Any) -> Array:
        """``out = layer.forward(x, **params, **constants)`` (tokens flattened to rows and back)."""
        rows = _rows(x, xp) if self.tokens else x
        out = self.layer.forward(rows, **self.arguments(rows, params, mask, xp))
        return xp.reshape(out, (*x.shape[:-1], out.shape[-1])) if self.tokens else out

    def backward(
        self, dout: Array, x: Array, params: Mapping[str, Array], mask: Array | None, xp: Any
    ) -> tuple[Array, dict[str, Array]]:
        r""":math:`\delta_{in}` for the node below, and each trained parameter's gradient."""
        rows = _rows(x, xp) if self.tokens else x
        drows = _rows(dout, xp) if self.tokens else dout
        got = self.layer.backward(drows, rows, **self.arguments(rows, params, mask, xp))
        dx = got["x"]
        if self.tokens and dx is not None:
            dx = xp.reshape(dx, x.shape)
        return dx, {k: got[k] for k in self.shapes}

    def __repr__(self) -> str:
        return self.call or f"Node({self.label!r})"


def _rows(a: Array, xp: Any) -> Array:
    return a if a.ndim == 2 else xp.reshape(a, (-1, a.shape[-1]))
