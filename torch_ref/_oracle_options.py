"""Validation of the oracle's keyword options: each bad option is a ValueError naming it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from manual import ACTIVATIONS, LOSSES, VALID_PAIRS

from .strategies import HIDDEN_ACTIVATIONS

@dataclass(frozen=True)
class Options:
    max_examples: int
    seed: int | None
    dtype: str
    device: str
    arrays: str
    activations: tuple[str, ...]
    losses: tuple[str, ...]
    depths: tuple[int, int]
    widths: tuple[int, int]
    batch: tuple[int, int]
    bias: bool | None
    reductions: tuple[str, ...]

    def spec_options(self) -> dict[str, Any]:
        return dict(depths=self.depths, widths=self.widths, activations=self.activations, losses=self.losses,
                    bias=self.bias, reductions=self.reductions)


def _range(name: str, value: Any, low: int) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or value[0] < low or value[1] < value[0]):
        raise ValueError(f"{name} must be an int >= {low} or a pair (lo, hi) with {low} <= lo <= hi, got {value!r}")
    return int(value[0]), int(value[1])


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


def parse_options(max_examples: int, seed: int | None, dtype: str, device: str, arrays: str | None,
             activations: Any, losses: Any, depths: Any, widths: Any, batch: Any, bias: Any,
             reductions: Any) -> Options:
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples must be an int >= 1, got {max_examples!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an int or None, got {seed!r}")
    dtype = str(dtype).removeprefix("torch.")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
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
    acts = _names("activations", activations, ACTIVATIONS)
    loss_names = _names("losses", losses, LOSSES)
    if bias is not None and not isinstance(bias, bool):
        raise ValueError(f"bias must be True, False or None (both), got {bias!r}")
    reds = _names("reductions", reductions, ("sum", "mean"))
    d = _range("depths", depths, 1)
    outputs = [a for loss in loss_names for a in VALID_PAIRS[loss] if a in acts]
    if not outputs:
        raise ValueError(f"no valid output activation among {acts} for losses {loss_names}; "
                         f"valid pairs: { {k: v for k, v in VALID_PAIRS.items()} }")
    if d[1] > 1 and not any(a in HIDDEN_ACTIVATIONS for a in acts):
        raise ValueError(f"depths {d} need a hidden activation from {HIDDEN_ACTIVATIONS}, got {acts}")
    return Options(max_examples, seed, dtype, device, arrays, acts, loss_names, d, _range("widths", widths, 1),
                    _range("batch", batch, 1), bias, reds)


