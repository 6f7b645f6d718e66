"""The array namespace: one code path for NumPy arrays and torch tensors.

``array_api_compat.array_namespace`` returns a standard-conforming wrapper for whichever library
the arrays come from; torch is only imported by that wrapper when a tensor is passed in, so
``import manual`` never imports torch.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace, device, is_numpy_array, is_torch_array

__all__ = ["Array", "device", "holds", "is_numpy_array", "is_torch_array", "namespace"]

Array = Any  # an array-API array: numpy.ndarray or torch.Tensor


def namespace(*arrays: Array) -> Any:
    """The array-API namespace shared by ``arrays`` (``None`` entries are skipped).

    Raises:
        TypeError: when the arrays come from different libraries (NumPy and torch mixed).
    """
    present = [a for a in arrays if a is not None]
    try:
        return array_namespace(*present)
    except TypeError as exc:
        kinds = sorted({type(a).__module__.split(".")[0] + "." + type(a).__name__ for a in present})
        raise TypeError(
            f"arrays must all come from one library (all numpy.ndarray or all torch.Tensor), got {kinds}"
        ) from exc


def holds(flag: Array) -> bool:
    """Whether a 0-d boolean array (a validation's ``xp.any(...)``) is true; False where its value
    cannot be read, as while torch_ref traces the code into a graph for its rounding model (the
    check then runs on the real values, when the code runs)."""
    try:
        return bool(flag)
    except RuntimeError:
        return False
