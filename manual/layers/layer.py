r"""One layer and its hand-derived backward: one registry entry (:data:`manual.LAYERS`).

The slides' δ recursion, for any layer: the layer receives :math:`\delta_{out} = \partial E/\partial
\mathrm{out}` from above and returns :math:`\delta_{in} = \partial E/\partial x` for the layer below,
with the gradient of each of its parameters. ``backward`` computes exactly that, by hand, in
array-API code (NumPy arrays or torch tensors, never autograd). Every consumer (the oracle's twin,
its draws, its tolerance model, its diagnosis) reads the entry and never switches on a name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import Any

from .._xp import Array

__all__ = ["Layer"]


@dataclass(frozen=True, eq=False)
class Layer:
    r"""A layer ``out = forward(x, **params, **constants)`` and its backward.

    Args:
        name: the registry's name, torch's functional's where one exists (``"layer_norm"``).
        forward: ``forward(x, **params, **constants) -> out``, array-API code (the namespace from
            :func:`manual._xp.namespace` of the arrays).
        backward: ``backward(dout, x, **params, **constants) -> dict``: :math:`\delta_{in}` under
            ``"x"`` and each parameter's gradient under its name; ``None`` for an array not
            differentiated (integer indices, a dropout mask). ``dout`` has the shape of ``out``.

    Keyword-only:
        params: the parameter arrays' names after ``x``, in torch's functional's order
            (``("weight", "bias")``).
        shapes: each array's shape in named dims, ``"out"`` included: ``{"x": "N D", "weight": "D",
            "out": "N D"}`` (documentation, and what the generic draw reads).
        constants: the non-array arguments and their defaults (``{"eps": 1e-5}``).
        nondiff: the arrays that are not differentiated (``("mask",)``; ``("x",)`` for indices).
        description: the formula in one line, for listings.
    """

    name: str
    forward: Callable[..., Array]
    backward: Callable[..., dict[str, Array | None]]
    _: KW_ONLY
    params: tuple[str, ...] = ()
    shapes: Mapping[str, str] = field(default_factory=dict)
    constants: Mapping[str, Any] = field(default_factory=dict)
    nondiff: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"Layer name must be an identifier, got {self.name!r}")
        for what in ("forward", "backward"):
            if not callable(getattr(self, what)):
                raise TypeError(f"Layer {self.name!r}: {what} must be callable, got {getattr(self, what)!r}")
        unknown = sorted(set(self.nondiff) - {"x", *self.params})
        if unknown:
            raise ValueError(f"Layer {self.name!r}: nondiff names {unknown}, which are not x or one of {self.params}")
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "shapes", MappingProxyType(dict(self.shapes)))
        object.__setattr__(self, "constants", MappingProxyType(dict(self.constants)))

    @property
    def arrays(self) -> tuple[str, ...]:
        """``("x", *params)``: every array argument, in order."""
        return ("x", *self.params)

    @property
    def differentiated(self) -> tuple[str, ...]:
        """The arrays whose gradient ``backward`` returns (those not in ``nondiff``)."""
        return tuple(a for a in self.arrays if a not in self.nondiff)

    def __repr__(self) -> str:
        return f"Layer({self.name!r})"

    def signature(self) -> str:
        """``"layer_norm(x, weight, bias, *, eps=1e-05)"``, for listings and errors."""
        consts = ", ".join(f"{k}={v!r}" for k, v in self.constants.items())
        return f"{self.name}({', '.join(self.arrays)}{', *, ' + consts if consts else ''})"


def takes(fn: Callable[..., Any], names: tuple[str, ...]) -> bool:
    """Whether ``fn`` can be called with keyword arguments ``names`` (a callable Python cannot read
    is taken on trust)."""
    try:
        inspect.signature(fn).bind(**dict.fromkeys(names))
    except TypeError:
        return False
    except ValueError:
        return True
    return True
