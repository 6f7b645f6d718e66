"""One drawn layer case: the input, the parameter arrays and the constants, with the hard regimes
it was verified to meet."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["LayerCase"]


@dataclass(frozen=True)
class LayerCase:
    """A layer's arguments, as NumPy arrays in the drawn dtype (integer arrays for indices, bool for
    masks).

    Attributes:
        x: the input (``x`` of ``forward(x, **params)``).
        params: the parameter arrays by name, in the forward's order.
        constants: the non-array arguments (eps, stride, ...).
        regimes: the hard regimes this case meets, each verified on its values ("ties",
            "repeated indices", ...), for coverage and reports.
        dims: the named dims drawn (``{"N": 2, "D": 1}``), for reports.
        order: the order the draw gave params and constants in (``fn.apply(x, *values)``); empty:
            params, then constants.
    """

    def positional(self) -> list[Any]:
        """Every value after ``x``, in the drawn order (arrays and constants alike)."""
        order = self.order or (*self.params, *self.constants)
        both = {**self.params, **self.constants}
        return [both[k] for k in order]

    x: np.ndarray
    params: Mapping[str, np.ndarray] = field(default_factory=dict)
    constants: Mapping[str, Any] = field(default_factory=dict)
    regimes: tuple[str, ...] = ()
    dims: Mapping[str, int] = field(default_factory=dict)
    order: tuple[str, ...] = ()  # the drawn dict's order of params and constants (a Function's apply order)

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """``{"x": x, **params}``."""
        return {"x": self.x, **self.params}

    @property
    def dtype(self) -> np.dtype:
        """The floating dtype of the case (of the first floating array)."""
        for a in self.arrays.values():
            if np.issubdtype(a.dtype, np.floating):
                return a.dtype
        raise ValueError("a layer case needs at least one floating array")

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.arrays.items())
        consts = ", ".join(f"{k}={v!r}" for k, v in self.constants.items())
        regimes = f" [{', '.join(self.regimes)}]" if self.regimes else ""
        return f"LayerCase({shapes}{'; ' + consts if consts else ''}){regimes}"
