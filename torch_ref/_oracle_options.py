"""Validation of the oracle's keyword options: each bad option is a ValueError naming it, raised
before anything is drawn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from manual import Activation, Loss

from .strategies import output_pairs, resolve

__all__ = ["Options", "parse_dtype", "parse_options"]


@dataclass(frozen=True)
class Options:
    max_examples: int
    seed: int | None
    dtype: str
    device: str
    arrays: str
    activations: tuple[Activation, ...]
    losses: tuple[Loss, ...]
    depths: tuple[int, int]
    widths: tuple[int, int]
    batch: tuple[int, int]
    bias: bool | None
    reductions: tuple[str, ...]
    strict: bool = False
    # the caller's variable for each user entry (id -> name), so the Reproduce lines can name it
    entry_vars: tuple[tuple[int, str], ...] = ()

    def spec_options(self) -> dict[str, Any]:
        return dict(
            depths=self.depths,
            widths=self.widths,
            activations=self.activations,
            losses=self.losses,
            bias=self.bias,
            reductions=self.reductions,
        )


def parse_dtype(dtype: Any) -> str:
    """``"float32"`` or ``"float64"`` from a name, a NumPy dtype or scalar type, or a torch dtype."""
    text = str(dtype).removeprefix("torch.")
    if text not in ("float32", "float64"):
        try:
            text = np.dtype(dtype).name
        except TypeError:
            pass
    if text not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64 (a name, a NumPy or a torch dtype), got {dtype!r}")
    return text


def _range(name: str, value: Any, low: int) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or value[0] < low
        or value[1] < value[0]
    ):
        raise ValueError(f"{name} must be an int >= {low} or a pair (lo, hi) with {low} <= lo <= hi, got {value!r}")
    return int(value[0]), int(value[1])


def _entries(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, (str, Activation, Loss)) and not tuple(value):
        raise ValueError(f"{name} must be a non-empty selection of names or entries, got {value!r}")


def _names(name: str, value: Any, allowed: Sequence[str]) -> tuple[str, ...]:
    if value is None:
        return tuple(allowed)
    if isinstance(value, str):
        value = (value,)
    value = tuple(value)
    unknown = [v for v in value if v not in allowed]
    if not value or unknown:
        raise ValueError(f"{name} must be a non-empty selection from {tuple(allowed)}, got {value!r}")
    return value


def parse_options(
    *,
    max_examples: int,
    seed: int | None,
    dtype: Any,
    device: str,
    arrays: str | None,
    activations: Any,
    losses: Any,
    depths: Any,
    widths: Any,
    batch: Any,
    bias: Any,
    reductions: Any,
    strict: Any = False,
) -> Options:
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples must be an int >= 1, got {max_examples!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an int or None, got {seed!r}")
    if not isinstance(strict, bool):
        raise ValueError(f"strict must be True or False, got {strict!r}")
    dtype = parse_dtype(dtype)
    if not isinstance(device, str) or not device:
        raise ValueError(f"device must be a torch device string such as 'cpu' or 'cuda', got {device!r}")
    if arrays is None:
        arrays = "numpy" if device == "cpu" else "torch"
    if arrays not in ("numpy", "torch"):
        raise ValueError(f"arrays must be 'numpy' or 'torch', got {arrays!r}")
    if arrays == "numpy" and device != "cpu":
        raise ValueError(f"arrays='numpy' lives on the CPU; with device={device!r} pass arrays='torch'")
    if device != "cpu":
        import torch

        try:
            torch.empty(0, device=device)
        except (RuntimeError, AssertionError) as exc:
            raise ValueError(f"device {device!r} is not available here: {exc}") from exc
    _entries("activations", activations)
    _entries("losses", losses)
    acts, loss_names = resolve(activations, losses)  # ValueError naming an unknown entry
    if bias is not None and not isinstance(bias, bool):
        raise ValueError(f"bias must be True, False or None (both), got {bias!r}")
    reds = _names("reductions", reductions, ("sum", "mean"))
    d = _range("depths", depths, 1)
    w = _range("widths", widths, 1)
    if losses is None:
        # every loss that the chosen activations and widths can serve
        usable = tuple(loss for loss in loss_names if _serves(acts, loss, w))
        loss_names = usable or loss_names
    output_pairs(acts, loss_names, w, d)  # ValueError naming what leaves nothing to draw
    return Options(
        max_examples, seed, dtype, device, arrays, acts, loss_names, d, w, _range("batch", batch, 1), bias, reds, strict
    )


def _serves(activations: tuple[Activation, ...], loss: Loss, widths: tuple[int, int]) -> bool:
    try:
        output_pairs(activations, (loss,), widths)
    except ValueError:
        return False
    return True
