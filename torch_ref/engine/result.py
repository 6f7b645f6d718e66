"""What a user's derivation may return, turned into float64 ``Params`` with one explanation when it
cannot be: ``manual.Params``, a ``(weights, biases)`` pair of sequences, or a plain sequence of
weight arrays when the network has no biases; NumPy arrays or torch tensors on any device."""

from __future__ import annotations

from typing import Any

from manual import Params, Spec

from ..twin.convert import as_numpy64

__all__ = ["normalise", "result_dtypes"]


def _is_array(a: Any) -> bool:
    return hasattr(a, "shape") and hasattr(a, "dtype")


def _sequence(a: Any) -> bool:
    return isinstance(a, (list, tuple)) and not _is_array(a)


def normalise(spec: Spec, result: Any, what: str) -> tuple[Params | None, str, Params | None]:
    """``(float64 Params, "", the result as Params)`` or ``(None, the problem in words, None)``."""
    if isinstance(result, Params):
        p = result
    elif (
        isinstance(result, tuple)
        and len(result) == 2
        and _sequence(result[0])
        and (result[1] is None or _sequence(result[1]))
    ):
        p = Params(result[0], result[1])  # (weights, biases)
    elif _sequence(result) and all(_is_array(a) for a in result):
        if spec.bias:
            return (
                None,
                (
                    f"{what} returned a plain sequence of {len(result)} arrays, but the spec has biases: "
                    f"return manual.Params(weights, biases) or a (weights, biases) pair"
                ),
                None,
            )
        p = Params(result)
    else:
        return (
            None,
            (
                f"{what} returned {type(result).__name__}; expected manual.Params, a (weights, biases) "
                f"pair, or a list of weight arrays when the spec has no biases"
            ),
            None,
        )
    if len(p.weights) != spec.depth:
        return (
            None,
            (
                f"{what} returned {len(p.weights)} weight array(s) for a network of {spec.depth} "
                f"layer{'s' if spec.depth != 1 else ''}"
            ),
            None,
        )
    if spec.bias and p.biases is None:
        return None, f"{what} returned no biases, but the spec has bias=True", None
    if not spec.bias and p.biases is not None:
        return None, f"{what} returned biases, but the spec has bias=False", None
    if p.biases is not None and len(p.biases) != spec.depth:
        return (
            None,
            (
                f"{what} returned {len(p.biases)} bias array(s) for a network of {spec.depth} "
                f"layer{'s' if spec.depth != 1 else ''}"
            ),
            None,
        )
    for name, a in p.arrays():
        if not _is_array(a):
            return None, f"{what} returned {type(a).__name__} for {name}; expected an array", None
    try:
        return p.map(as_numpy64), "", p
    except Exception as exc:  # any array-like's conversion may raise anything: the result's fault
        return None, f"{what} returned something that is not a float array: {type(exc).__name__}: {exc}", None


def result_dtypes(p: Params) -> set[str]:
    """The dtype names of a result's arrays (``float32``, ``float64``, ...)."""
    return {str(a.dtype).removeprefix("torch.") for _, a in p.arrays()}
