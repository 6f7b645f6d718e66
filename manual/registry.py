"""The registry: every built-in activation and loss by name, and the one lookup every caller uses.

A name is looked up here; an :class:`~manual.Activation` or :class:`~manual.Loss` object (a user's
own entry) is taken as it is. An unknown name is a ``ValueError`` that lists the registered ones;
nothing falls through to a default, and a misspelt name gets the closest registered one
("unknown activation 'sigmod'; did you mean 'sigmoid'?").
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeVar

from ._entry import did_you_mean, pickle_by_name
from .activation import Activation
from .activations import BUILTIN_ACTIVATIONS
from .loss import Loss
from .losses import BUILTIN_LOSSES

__all__ = ["ACTIVATIONS", "LOSSES", "activation", "builtin", "loss"]

ACTIVATIONS: Mapping[str, Activation] = MappingProxyType({a.name: a for a in BUILTIN_ACTIVATIONS})
LOSSES: Mapping[str, Loss] = MappingProxyType({loss.name: loss for loss in BUILTIN_LOSSES})


Entry = TypeVar("Entry", Activation, Loss)


def _lookup(kind: str, value: object, table: Mapping[str, Entry], cls: type[Entry], where: str) -> Entry:
    if isinstance(value, cls):
        builtin = table.get(value.name)
        if builtin is not None and builtin is not value:
            raise ValueError(
                f"{where}: a user {kind} may not take the built-in name {value.name!r}; pass the string "
                f"{value.name!r} for the built-in, or give yours another name"
            )
        return value
    if isinstance(value, str):
        if value in table:
            return table[value]
        raise ValueError(
            f"{where}: unknown {kind} {value!r}{did_you_mean(value, table)}; registered: {', '.join(table)} "
            f"(or pass a manual.{cls.__name__} of your own)"
        )
    article = "an" if kind[0] in "aeiou" else "a"
    raise TypeError(
        f"{where} must be {article} {kind} name or a manual.{cls.__name__}, got {value!r} ({type(value).__name__})"
    )


def builtin(kind: str, name: str) -> Activation | Loss:
    """The registered ``"Activation"`` or ``"Loss"`` of that name (how a built-in entry unpickles)."""
    return ACTIVATIONS[name] if kind == "Activation" else LOSSES[name]


pickle_by_name([*ACTIVATIONS.values(), *LOSSES.values()], builtin)


def activation(value: str | Activation, where: str = "activation") -> Activation:
    """The :class:`Activation` for a registered name, or ``value`` itself when it is one."""
    return _lookup("activation", value, ACTIVATIONS, Activation, where)


def loss(value: str | Loss, where: str = "loss") -> Loss:
    """The :class:`Loss` for a registered name, or ``value`` itself when it is one."""
    return _lookup("loss", value, LOSSES, Loss, where)
