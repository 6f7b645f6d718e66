"""Every built-in layer by name, and the one lookup (an unknown name lists the known ones)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType

from .._entry import did_you_mean
from .layer import Layer

__all__ = ["LAYERS", "layer"]

# the families, in listing order; each module defines LAYERS_HERE, a tuple of its entries
_FAMILIES = ("dense", "norms", "lookup", "softmax", "conv", "pooling", "attention")


def _collect() -> dict[str, Layer]:
    found: dict[str, Layer] = {}
    for family in _FAMILIES:
        try:
            module = importlib.import_module(f".{family}", __package__)
        except ModuleNotFoundError as exc:  # a family not written yet (during development only)
            if exc.name != f"{__package__}.{family}":
                raise
            continue
        for entry in module.LAYERS_HERE:
            if entry.name in found:
                raise ValueError(f"two layers named {entry.name!r}")
            found[entry.name] = entry
    return found


LAYERS: Mapping[str, Layer] = MappingProxyType(_collect())


def layer(value: str | Layer) -> Layer:
    """The entry ``value`` names (a :class:`Layer` is returned as it is); ``ValueError`` for an
    unknown name, listing the known ones."""
    if isinstance(value, Layer):
        return value
    if isinstance(value, str) and value in LAYERS:
        return LAYERS[value]
    raise ValueError(f"unknown layer {value!r}{did_you_mean(str(value), LAYERS)}; known: {sorted(LAYERS)}")
