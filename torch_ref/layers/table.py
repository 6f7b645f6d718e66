"""The oracle's side of every built-in layer by name (:class:`~torch_ref.layers.info.LayerInfo`),
collected from :mod:`torch_ref.layers.builtins`, one module per family of :mod:`manual.layers`."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping

import numpy as np
from hypothesis.strategies import SearchStrategy

from manual.layers import LAYERS
from manual.layers.registry import _FAMILIES

from .case import LayerCase
from .info import LayerInfo

__all__ = ["info", "infos", "layer_cases"]


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


def layer_cases(
    name: str,
    *,
    dtype: str = "float64",
    where: Callable[[LayerCase], bool] | None = None,
    names: Mapping[str, str] | None = None,
) -> SearchStrategy[LayerCase]:
    """The built-in ``name``'s draw (its hard regimes included), narrowed by ``where(case) -> bool``
    and renamed into your names (``names={"gamma": "weight"}``, as check_layer's): pass it as
    ``inputs=`` to check your layer on the built-in's cases, or on the part of them it supports::

        inputs=layer_cases("conv2d", where=lambda c: c.constants["groups"] == 1 and c.constants["dilation"] == 1)
    """
    strategy = info(name).draw(np.dtype(dtype))
    if where is not None:
        strategy = strategy.filter(where)
    if names:
        back = {b: u for u, b in names.items()}
        strategy = strategy.map(
            lambda c: LayerCase(
                c.x,
                {back.get(k, k): v for k, v in c.params.items()},
                {back.get(k, k): v for k, v in c.constants.items()},
                c.regimes,
                c.dims,
                tuple(back.get(k, k) for k in c.order),
            )
        )
    return strategy
