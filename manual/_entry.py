"""What an activation entry and a loss entry share: they are named, and equal to their name."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["NamedEntry", "check_signature", "did_you_mean", "pickle_by_name"]


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``" (did you mean 'tanh'?)"`` for the known name closest to a misspelt ``word`` (difflib's
    ratio of at least 0.6), else ``""``: appended to an "unknown name" error."""
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_signature(kind: str, name: str, field: str, fn: Any, params: str) -> None:
    """TypeError unless ``fn`` can be called with the positional arguments ``params`` names
    (``"I, xp"``); a callable whose signature Python cannot read (a NumPy ufunc) is taken on trust."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*params.split(", "))
    except TypeError:
        raise TypeError(
            f"{kind} {name!r}: {field} must take ({params}), positionally; got a callable with signature "
            f"{signature}"
            + (
                " (xp is the arrays' namespace: use xp.exp, xp.tanh, ... so it runs on NumPy and torch)"
                if "xp" in params
                else ""
            )
        ) from None


class MissingDerivativeError(ValueError):
    """An entry lacks a derivative a computation needs (``second_derivative``, ``hessian``): a usage
    error, which the oracle raises as it is instead of calling it a mismatch."""


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

    def __reduce_ex__(self, protocol: Any) -> Any:
        # a built-in pickles as its name (see pickle_by_name); a user's entry pickles field by field
        by_name = self.__dict__.get("_pickled_as")
        return by_name if by_name is not None else super().__reduce_ex__(protocol)


def pickle_by_name(entries: Iterable[NamedEntry], restore: Callable[[str, str], NamedEntry]) -> None:
    """Make each of ``entries`` pickle as ``restore(kind, name)`` (``kind`` its class's name), so it
    unpickles as the very same object: a Spec sent to another process stays equal to itself.

    :mod:`manual.registry` marks its built-ins so, passing its own lookup in: the registry imports
    this module, and this module never imports the registry.
    """
    for entry in entries:
        object.__setattr__(entry, "_pickled_as", (restore, (type(entry).__name__, entry.name)))
