"""The oracle's side of every built-in layer by name (:class:`~torch_ref.layers.info.LayerInfo`),
collected from :mod:`torch_ref.layers.builtins`, one module per family of :mod:`manual.layers`."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping

from manual.layers import LAYERS
from manual.layers.registry import _FAMILIES

from .info import LayerInfo

__all__ = ["info", "infos"]


@functools.cache
def infos() -> Mapping[str, LayerInfo]:
    """Every built-in's :class:`LayerInfo`; a built-in of :data:`manual.LAYERS` without one is an error."""
    found: dict[str, LayerInfo] = {}
    for family in _FAMILIES:
        try:
            module = importlib.import_module(f".builtins.{family}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.builtins.{family}":
                raise
            continue
        for entry in module.INFOS_HERE:
            found[entry.name] = entry
    missing = sorted(set(LAYERS) - set(found))
    if missing:
        raise RuntimeError(f"built-in layers without a twin and a draw in torch_ref.layers.builtins: {missing}")
    return found


def info(name: str) -> LayerInfo:
    """The built-in ``name``'s :class:`LayerInfo` (``ValueError`` listing the known ones)."""
    table = infos()
    if name not in table:
        raise ValueError(f"unknown layer {name!r}; known: {sorted(table)}")
    return table[name]
