"""The network specification: layer sizes, activations, loss and reduction.

The slides ("Training a neural network") pick a loss, an activation per layer and minimise
``sum_n L(y^(n), y*^(n))`` over the weights. :class:`Spec` records exactly those choices, validated
once, so every later function can trust them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .activation import Activation
from .loss import Loss
from .registry import ACTIVATIONS, LOSSES, activation
from .registry import loss as resolve_loss

__all__ = ["REDUCTIONS", "Spec"]

REDUCTIONS = ("mean", "sum")


@dataclass(frozen=True)
class Spec:
    """A fully connected network ``D -> H1 -> ... -> J`` and its training objective.

    Args:
        sizes: ``(D, H1, ..., J)``, at least two ints >= 1; layer ``l`` maps ``sizes[l-1]`` to ``sizes[l]``.
        activations: one per layer (``len(sizes) - 1``): a registered name (:data:`manual.ACTIVATIONS`)
            or a :class:`manual.Activation` of your own; a vector-valued one (``"softmax"``) only on
            the last layer (and not over a single unit with ``"bce"``, whose objective would be
            infinite); ``"relu"`` takes the subgradient 0 at 0 (as torch). Stored as entries.
        loss: a registered name (:data:`manual.LOSSES`: ``"squared"`` 1/2 sum_j (y*_j - y_j)^2,
            ``"bce"``, ``"ce"``, ``"huber"``) or a :class:`manual.Loss`, summed over the J outputs of
            one example; it must accept the output activation (:meth:`manual.Loss.accepts`).
        bias: whether every layer has a bias ``b`` (``I = u @ W + b``).
        reduction: ``"sum"`` is the slides' objective sum_n L; ``"mean"`` divides it by N (the number
            of examples, not N * J).

    Example:
        >>> Spec((2, 2, 1), ("sigmoid", "sigmoid"), "bce").depth
        2
    """

    sizes: tuple[int, ...]
    activations: tuple[Activation, ...]
    loss: Loss
    bias: bool = False
    reduction: str = "sum"

    def __init__(
        self,
        sizes: tuple[int, ...] | list[int],
        activations: Sequence[str | Activation],
        loss: str | Loss,
        *,
        bias: bool = False,
        reduction: str = "sum",
    ) -> None:
        # A hand-written __init__ keeps bias and reduction keyword-only while the dataclass stays
        # frozen; values are validated before they are stored.
        sizes = _check_sizes(sizes)
        activations = _check_activations(activations, len(sizes) - 1)
        loss = _check_loss(loss, activations[-1], sizes[-1])
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be True or False, got {bias!r} ({type(bias).__name__})")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        for name, value in (
            ("sizes", sizes),
            ("activations", activations),
            ("loss", loss),
            ("bias", bias),
            ("reduction", reduction),
        ):
            object.__setattr__(self, name, value)

    @property
    def depth(self) -> int:
        """The number of layers L (weight matrices)."""
        return len(self.sizes) - 1

    @property
    def canonical(self) -> bool:
        """True when the output delta simplifies to ``y* - y`` (:attr:`manual.Loss.canonical`)."""
        return self.activations[-1].name in self.loss.canonical

    @property
    def names(self) -> tuple[str, ...]:
        """The activations' names, layer by layer."""
        return tuple(a.name for a in self.activations)

    def shapes(self) -> list[tuple[int, int]]:
        """The shape ``(in, out)`` of each layer's ``W``."""
        return list(zip(self.sizes[:-1], self.sizes[1:]))

    def __str__(self) -> str:
        arch = "-".join(map(str, self.sizes))
        extra = ", bias" if self.bias else ""
        return f"{arch} [{','.join(self.names)}] {self.loss.name}/{self.reduction}{extra}"

    def __repr__(self) -> str:
        extra = ", bias=True" if self.bias else ""
        return f"Spec({self.sizes}, {self.names}, {self.loss.name!r}{extra}, reduction={self.reduction!r})"


def _check_sizes(sizes: object) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"sizes must be a sequence of ints such as (2, 2, 1), got {sizes!r}")
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least two entries (D, ..., J), got {sizes!r}")
    for k, size in enumerate(sizes):
        if isinstance(size, bool) or (not isinstance(size, int) and not hasattr(size, "__index__")):
            raise TypeError(f"sizes[{k}] must be an int, got {size!r} ({type(size).__name__})")
        if int(size) < 1:
            raise ValueError(f"sizes[{k}] must be >= 1, got {size!r}")
    return tuple(int(s) for s in sizes)


def _check_activations(activations: object, depth: int) -> tuple[Activation, ...]:
    if isinstance(activations, (str, Activation)) or not hasattr(activations, "__iter__"):
        raise TypeError(
            f"activations must be a sequence of {depth} names or manual.Activation objects such as "
            f"{('sigmoid',) * depth}, got {activations!r}"
        )
    given = tuple(activations)
    if len(given) != depth:
        raise ValueError(
            f"activations needs one entry per layer ({depth} for {depth + 1} sizes), got {len(given)}: {given!r}"
        )
    entries = tuple(activation(a, f"activations[{k}]") for k, a in enumerate(given))
    for k, entry in enumerate(entries):
        if not entry.elementwise and k != depth - 1:
            raise ValueError(
                f"activations[{k}] is {entry.name!r}, a vector-valued activation, which is accepted on the "
                f"last layer only (index {depth - 1})"
            )
    return entries


def _accepted(loss: Loss) -> str:
    names = [a for a, entry in ACTIVATIONS.items() if loss.accepts(entry)]
    extra = " and any elementwise activation of your own" if loss.outputs is None else ""
    return ", ".join(names) + extra


def _check_loss(loss: str | Loss, output: Activation, J: int) -> Loss:
    entry = resolve_loss(loss)
    if not entry.accepts(output):
        raise ValueError(
            f"loss {entry.name!r} does not accept output activation {output.name!r}; it accepts "
            f"{_accepted(entry)} (registered losses: {', '.join(LOSSES)})"
        )
    if entry.targets == "unit" and not output.elementwise and J == 1:
        # softmax over one unit is the constant 1: log(1 - y*) = log 0, so the objective is infinite
        # unless every target is 1, and its gradient is not defined (torch's BCELoss only returns a
        # number because it clamps the log at -100)
        raise ValueError(
            f"loss {entry.name!r} with a one-unit {output.name!r} output is not accepted: softmax over one unit is "
            "the constant 1, so log(1 - y*) = log 0 and the objective is infinite unless every target is 1; "
            "use 'sigmoid' for a single output, or J >= 2 units"
        )
    return entry
