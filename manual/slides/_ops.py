"""Elementary functions for the transcriptions, dispatched on the operand's library.

The same transcription runs on Python or NumPy scalars, on torch tensors (so autograd can
differentiate the formula exactly as written) and on sympy expressions (so each step can be checked
symbolically). sympy is imported only when a sympy object is passed in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_array_api_obj

__all__ = ["exp", "log", "relu"]


def _library(*xs: Any) -> Any:
    for x in xs:
        if type(x).__module__.startswith("sympy"):
            import sympy

            return sympy
    arrays = [x for x in xs if is_array_api_obj(x) and not isinstance(x, np.generic)]
    return array_namespace(*arrays) if arrays else np


def exp(x: Any) -> Any:
    return _library(x).exp(x)


def log(x: Any) -> Any:
    return _library(x).log(x)


def relu(z: Any) -> Any:
    """max(z, 0) in the operand's library."""
    lib = _library(z)
    if getattr(lib, "__name__", "") == "sympy":
        return lib.Max(z, 0)
    if lib is np:
        return np.maximum(z, 0.0)
    return lib.where(z > 0, z, lib.zeros_like(z))
