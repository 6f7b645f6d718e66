"""What the oracle holds for one built-in layer beside manual's entry: its torch twin, its draw and
its catalogue of published mistakes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LayerInfo", "Mistake"]


@dataclass(frozen=True)
class Mistake:
    """A published wrong backward of one layer, as code.

    Attributes:
        name: what it does wrong, as a report names it ("batch statistics treated as constants").
        backward: the wrong backward, with the layer's backward signature
            (``backward(dout, x, **params, **constants) -> dict``), array-API code.
        source: where it was published (a URL, a course, a paper), or "" where none is known.
        formula: the wrong formula in one line, the slides' notation.
        regime: the hard regime it needs to show (``"ties"``), or None where any case shows it.
    """

    name: str
    backward: Callable[..., dict[str, Any]]
    source: str = ""
    formula: str = ""
    regime: str | None = None


@dataclass(frozen=True)
class LayerInfo:
    """The oracle's side of one built-in layer.

    Attributes:
        name: the entry's name in :data:`manual.LAYERS`.
        twin: torch's own functional with the forward's signature (``twin(x, **params,
            **constants) -> out`` on tensors): the reference, differentiated by autograd.
        draw: ``draw(dtype) -> SearchStrategy[LayerCase]``: cases that reach the layer's hard
            regimes.
        regimes: every regime ``draw`` can reach (what coverage reports against).
        mistakes: the catalogue of published wrong backwards.
        convention: the conventions the check follows for it (ties, subgradients), one line each.
        algorithms: other right algorithms, ``algorithm(arrays, dout, constants) -> (out, grads)``, whose
            roundings the rounding model takes too (a staged batch norm), beside autograd's of the
            twin and manual's own.
    """

    name: str
    twin: Callable[..., Any]
    draw: Callable[[Any], Any]
    regimes: tuple[str, ...] = ()
    mistakes: tuple[Mistake, ...] = ()
    convention: tuple[str, ...] = field(default_factory=tuple)
    algorithms: tuple[Callable[..., Any], ...] = ()
