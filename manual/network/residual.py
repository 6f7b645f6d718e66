r"""A residual connection around a sub-sequence of nodes: :math:`out = x + F(x)`.

The δ recursion splits and joins: the δ arriving from above goes both through the body and past it,
and the two are added (the skip's Jacobian is the identity):

.. math::
    \delta_{in} = \delta_{out} + \delta_{in}^{F}, \qquad \delta_{in}^{F} = \text{the body's backward of } \delta_{out}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .entries import entry

__all__ = ["Residual"]


@dataclass(frozen=True, eq=False)
class Residual:
    """``x + body(x)``; ``body`` is a sequence of network entries whose output has the input's shape.

    Example:
        >>> from manual.network import Residual, layer_norm, linear
        >>> Residual([layer_norm(4), linear(4, 4)]).label
        'residual'
    """

    body: tuple[Any, ...]
    label: str = "residual"

    def __init__(self, body: Sequence[Any], label: str = "residual") -> None:
        if isinstance(body, (str, bytes)) or not hasattr(body, "__iter__"):
            raise TypeError(f"Residual(body): body must be a sequence of network entries, got {body!r}")
        entries = tuple(e if isinstance(e, Residual) else entry(e, f"Residual body[{k}]") for k, e in enumerate(body))
        if not entries:
            raise ValueError("Residual(body): body is empty (x + x needs no network)")
        object.__setattr__(self, "body", entries)
        object.__setattr__(self, "label", label)

    def join(self, past: Any, through: Any) -> Any:
        r""":math:`\delta_{in} = \delta_{out} + \delta_{in}^{F}`: the δ that went past the body and the δ
        that went through it, added."""
        return past + through

    def __repr__(self) -> str:
        return f"Residual([{', '.join(map(repr, self.body))}])"
