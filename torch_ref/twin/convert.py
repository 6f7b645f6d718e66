"""Moving arrays between the caller's library and torch, so results come back as they went in."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from manual import Params

__all__ = ["as_numpy64", "from_torch", "to_torch"]


def to_torch(a: Any) -> torch.Tensor:
    """A torch tensor holding ``a`` (shared memory for NumPy input; tensors pass through)."""
    if isinstance(a, torch.Tensor):
        return a
    return torch.from_numpy(np.ascontiguousarray(a))


def from_torch(t: torch.Tensor, like: Any) -> Any:
    """``t`` detached, as a NumPy array when ``like`` is one, else as a tensor."""
    t = t.detach()
    if isinstance(like, np.ndarray):
        return t.cpu().numpy()
    return t


def as_numpy64(a: Any) -> np.ndarray:
    """A float64 NumPy copy of an array or tensor, for reference arithmetic."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def params_as_numpy64(params: Params) -> Params:
    """Every array of ``params`` as float64 NumPy."""
    return params.map(as_numpy64)
