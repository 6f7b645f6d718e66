"""The network specification: layer sizes, activations, loss and reduction.

The slides ("Training a neural network") pick a loss, an activation per layer and minimise
``sum_n L(y^(n), y*^(n))`` over the weights. :class:`Spec` records exactly those choices, validated
once, so every later function can trust them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACTIVATIONS", "CANONICAL_PAIRS", "LOSSES", "REDUCTIONS", "VALID_PAIRS", "Spec"]

ACTIVATIONS = ("identity", "relu", "sigmoid", "softmax", "tanh")
LOSSES = ("bce", "ce", "squared")
REDUCTIONS = ("mean", "sum")

# Which output activation each loss accepts. bce and ce need outputs in (0, 1); squared takes any.
VALID_PAIRS: dict[str, tuple[str, ...]] = {
    "squared": ("identity", "relu", "sigmoid", "softmax", "tanh"),
    "bce": ("sigmoid", "softmax"),
    "ce": ("sigmoid", "softmax"),
}

# Pairs where dL/dI of the output layer simplifies to y* - y (slide "Weight updates: compact
# representation": delta^(2) = y* - y for sigmoid + bce; the same cancellation holds for
# softmax + ce and identity + squared).
CANONICAL_PAIRS = frozenset({("sigmoid", "bce"), ("softmax", "ce"), ("identity", "squared")})


def _pairs_text() -> str:
    return "; ".join(f"{loss}: {', '.join(acts)}" for loss, acts in VALID_PAIRS.items())


@dataclass(frozen=True)
class Spec:
    """A fully connected network ``D -> H1 -> ... -> J`` and its training objective.

    Args:
        sizes: ``(D, H1, ..., J)``, at least two ints >= 1; layer ``l`` maps ``sizes[l-1]`` to ``sizes[l]``.
        activations: one name per layer (``len(sizes) - 1``) from :data:`ACTIVATIONS`;
            ``"softmax"`` only on the last layer (and not over a single unit with ``"bce"``, whose
            objective would be infinite); ``"relu"`` takes the subgradient 0 at 0 (as torch).
        loss: ``"squared"`` (1/2 sum_j (y*_j - y_j)^2), ``"bce"``
            (sum_j -y_j log y*_j - (1 - y_j) log(1 - y*_j)) or ``"ce"`` (-sum_j y_j log y*_j),
            each summed over the J outputs of one example.
        bias: whether every layer has a bias ``b`` (``I = u @ W + b``).
        reduction: ``"sum"`` is the slides' objective sum_n L; ``"mean"`` divides it by N (the number
            of examples, not N * J).

    Example:
        >>> Spec((2, 2, 1), ("sigmoid", "sigmoid"), "bce").depth
        2
    """

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str
    bias: bool = False
    reduction: str = "sum"

    def __init__(
        self,
        sizes: tuple[int, ...] | list[int],
        activations: tuple[str, ...] | list[str],
        loss: str,
        *,
        bias: bool = False,
        reduction: str = "sum",
    ) -> None:
        # A hand-written __init__ keeps bias and reduction keyword-only while the dataclass stays
        # frozen; values are validated before they are stored.
        sizes = _check_sizes(sizes)
        activations = _check_activations(activations, len(sizes) - 1)
        _check_loss(loss, activations[-1], sizes[-1])
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be True or False, got {bias!r} ({type(bias).__name__})")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        for name, value in (("sizes", sizes), ("activations", activations), ("loss", loss),
                            ("bias", bias), ("reduction", reduction)):
            object.__setattr__(self, name, value)

    @property
    def depth(self) -> int:
        """The number of layers L (weight matrices)."""
        return len(self.sizes) - 1

    @property
    def canonical(self) -> bool:
        """True when the output delta simplifies to ``y* - y`` (see :data:`CANONICAL_PAIRS`)."""
        return (self.activations[-1], self.loss) in CANONICAL_PAIRS

    def shapes(self) -> list[tuple[int, int]]:
        """The shape ``(in, out)`` of each layer's ``W``."""
        return list(zip(self.sizes[:-1], self.sizes[1:]))

    def __str__(self) -> str:
        arch = "-".join(map(str, self.sizes))
        extra = ", bias" if self.bias else ""
        return f"{arch} [{','.join(self.activations)}] {self.loss}/{self.reduction}{extra}"


def _check_sizes(sizes: object) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"sizes must be a sequence of ints such as (2, 2, 1), got {sizes!r}")
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least two entries (D, ..., J), got {sizes!r}")
    for k, size in enumerate(sizes):
        if isinstance(size, bool) or not isinstance(size, int) and not hasattr(size, "__index__"):
            raise TypeError(f"sizes[{k}] must be an int, got {size!r} ({type(size).__name__})")
        if int(size) < 1:
            raise ValueError(f"sizes[{k}] must be >= 1, got {size!r}")
    return tuple(int(s) for s in sizes)


def _check_activations(activations: object, depth: int) -> tuple[str, ...]:
    if isinstance(activations, str) or not hasattr(activations, "__iter__"):
        raise TypeError(
            f"activations must be a sequence of {depth} names such as {('sigmoid',) * depth}, "
            f"got {activations!r}"
        )
    activations = tuple(activations)
    if len(activations) != depth:
        raise ValueError(
            f"activations needs one name per layer ({depth} for {depth + 1} sizes), "
            f"got {len(activations)}: {activations!r}"
        )
    for k, name in enumerate(activations):
        if name not in ACTIVATIONS:
            raise ValueError(f"activations[{k}] must be one of {ACTIVATIONS}, got {name!r}")
        if name == "softmax" and k != depth - 1:
            raise ValueError(
                f"activations[{k}] is 'softmax', which is accepted on the last layer only "
                f"(index {depth - 1})"
            )
    return activations


def _check_loss(loss: object, output_activation: str, J: int) -> None:
    if loss not in VALID_PAIRS:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if output_activation not in VALID_PAIRS[loss]:
        raise ValueError(
            f"loss {loss!r} does not accept output activation {output_activation!r}; "
            f"valid pairs (loss: output activations) are {_pairs_text()}"
        )
    if (output_activation, loss) == ("softmax", "bce") and J == 1:
        # softmax over one unit is the constant 1: log(1 - y*) = log 0, so the objective is infinite
        # unless every target is 1, and its gradient is not defined (torch's BCELoss only returns a
        # number because it clamps the log at -100)
        raise ValueError(
            "loss 'bce' with a one-unit 'softmax' output is not accepted: softmax over one unit is the "
            "constant 1, so log(1 - y*) = log 0 and the objective is infinite unless every target is 1; "
            "use 'sigmoid' for a single output, or J >= 2 units"
        )
