"""What an activation entry and a loss entry share: they are named, and equal to their name."""

from __future__ import annotations

__all__ = ["NamedEntry"]


class NamedEntry:
    """Base of :class:`manual.Activation` and :class:`manual.Loss`.

    An entry equals itself and its name, so code that reads ``spec.activations[l] == "sigmoid"`` or
    ``spec.loss == "bce"`` (a derivation written against names) keeps working; two different entries
    are never equal. The hash is the name's, consistent with that; ``str`` is the name.
    """

    name: str

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return other == self.name
        return other is self

    def __hash__(self) -> int:
        return hash(self.name)
