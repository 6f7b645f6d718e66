"""What a layer check compares, resolved from ``check_layer``'s arguments before anything is drawn:
the user's forward and backward in one calling form, the torch reference, the draw, the names.

Names: a built-in names its arrays and constants as torch's functional does (``weight``, ``bias``,
``eps``, ``stride``); ``names={"gamma": "weight"}`` maps the user's names onto them. Every case, every
report and every call of the user's code uses the user's names; only the twin is called with the
built-in's.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis.strategies import SearchStrategy

from manual.layers import LAYERS, Layer

from .case import LayerCase
from .draw import from_function, from_shapes, from_strategy, parse_shapes
from .info import LayerInfo
from .table import info as builtin_info

__all__ = ["CONVENTIONS", "LayerSetup", "resolve"]

CONVENTIONS = ("grads", "cache")


@dataclass(frozen=True)
class LayerSetup:
    """A layer check's parts, in the user's names.

    Attributes:
        forward: ``forward(x, **params, **constants) -> out`` (a "cache" forward's ``out``).
        backward: ``backward(dout, x, **params, **constants) -> dict`` (a "cache" backward's tuple
            read in the forward's argument order).
        reference: the torch function differentiated by autograd (float64), same signature.
        reference_label: what the reference is, for reports (``torch's F.layer_norm``).
        strategy: ``SearchStrategy[LayerCase]`` in the checked dtype.
        nondiff: the arrays not differentiated (the user's ``nondiff``, the built-in's, and every
            integer or boolean array).
        names: user name -> built-in name (empty without a built-in).
        builtin: the built-in layer named (forward or reference), if any.
        info: its :class:`LayerInfo` (twin, regimes, catalogue), if any.
        convention: "grads" or "cache".
        user_forward, user_backward: the callables as given (for reports and Reproduce lines).
    """

    forward: Callable[..., Any]
    backward: Callable[..., Any]
    reference: Callable[..., Any]
    reference_label: str
    strategy: SearchStrategy[LayerCase]
    nondiff: frozenset[str]
    names: Mapping[str, str] = field(default_factory=dict)
    builtin: Layer | None = None
    info: LayerInfo | None = None
    convention: str = "grads"
    user_forward: Any = None
    user_backward: Any = None
    fd: bool = False  # the reference is finite differences of forward (a Function checked without one)
    kind: str = "layer"  # "function": a torch.autograd.Function's backward (check_function)
    user_reference: Any = None  # the reference as given (a name, a function, or None)
    constants: Mapping[str, Any] = field(default_factory=dict)  # constants= as given, over the draw's

    def differentiated(self, case: LayerCase) -> tuple[str, ...]:
        """The arrays of ``case`` whose gradient the backward must give, in order."""
        return tuple(k for k, v in case.arrays.items() if k not in self.nondiff and np.issubdtype(v.dtype, np.floating))


def _builtin(value: Any, what: str) -> Layer | None:
    if isinstance(value, Layer):
        return value
    if isinstance(value, str):
        if value not in LAYERS:
            from manual._entry import did_you_mean

            raise ValueError(
                f"{what}={value!r} names no built-in layer{did_you_mean(value, LAYERS)}; known: {sorted(LAYERS)}"
            )
        return LAYERS[value]
    return None


def _renamed(names: Mapping[str, str]) -> Callable[[LayerCase], LayerCase]:
    """A built-in's case in the user's names."""
    back = {b: u for u, b in names.items()}

    def rename(case: LayerCase) -> LayerCase:
        return LayerCase(
            case.x,
            {back.get(k, k): v for k, v in case.params.items()},
            {back.get(k, k): v for k, v in case.constants.items()},
            case.regimes,
            case.dims,
            tuple(back.get(k, k) for k in case.order),
        )

    return rename


def _twin_in_user_names(twin: Callable[..., Any], names: Mapping[str, str]) -> Callable[..., Any]:
    if not names:
        return twin

    def reference(x: Any, **kwargs: Any) -> Any:
        return twin(x, **{names.get(k, k): v for k, v in kwargs.items()})

    reference.__name__ = getattr(twin, "__name__", "twin")
    return reference


def _in_builtin_names(forward: Callable[..., Any], names: Mapping[str, str]) -> Callable[..., Any]:
    """A built-in's forward called with the user's names (``gamma`` for ``weight``)."""
    if not names:
        return forward

    def renamed(x: Any, **kwargs: Any) -> Any:
        return forward(x, **{names.get(k, k): v for k, v in kwargs.items()})

    renamed.__name__ = getattr(forward, "__name__", "forward")
    return renamed


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or (type(value).__module__.startswith("torch") and hasattr(value, "shape"))


def _split(kwargs: Mapping[str, Any], order: list[str]) -> tuple[list[str], dict[str, Any]]:
    """A "cache" call's positional arrays (the given order, else the arrays in the order drawn) and
    its keyword constants."""
    arrays = [k for k in order if k in kwargs] if order else [k for k, v in kwargs.items() if _is_array(v)]
    return arrays, {k: v for k, v in kwargs.items() if k not in arrays}


def _cache_forward(forward: Callable[..., Any], order: list[str]) -> Callable[..., Any]:
    """A CS231n forward, ``forward(x, *params, **constants) -> (out, cache)``, as ``out``."""

    def out(x: Any, **kwargs: Any) -> Any:
        arrays, rest = _split(kwargs, order)
        result = forward(x, *[kwargs[k] for k in arrays], **rest)
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(f"convention='cache': forward must return (out, cache), got {type(result).__name__}")
        return result[0]

    return out


def _check_callable(fn: Any, what: str) -> None:
    if not callable(fn):
        raise TypeError(f"{what} must be callable, got {type(fn).__name__}")


def resolve(backward: Any, forward: Any, extra: Mapping[str, Any], dtype: np.dtype) -> LayerSetup:
    """The setup of ``check_layer(backward, forward, **extra)``; ``TypeError``/``ValueError`` naming
    the argument for anything it cannot use."""
    _check_callable(backward, "backward")
    convention = extra.get("convention", "grads")
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    names = dict(extra.get("names") or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in names.items()):
        raise ValueError(f"names must map the user's names to the built-in's (str -> str), got {names!r}")
    reference = extra.get("reference")
    by_forward, by_reference = _builtin(forward, "forward"), _builtin(reference, "reference")
    if by_forward is not None and by_reference is not None and by_forward is not by_reference:
        raise ValueError(f"forward names {by_forward.name!r} and reference names {by_reference.name!r}: name one layer")
    builtin = by_forward or by_reference
    if names and builtin is None:
        raise ValueError("names maps onto a built-in's names: name a built-in layer as forward or reference")
    if builtin is not None:
        given = {names.get(k, k) for k in (extra.get("constants") or {})}
        unknown = sorted(given - set(builtin.constants))
        if unknown:
            raise ValueError(
                f"constants={dict(extra.get('constants') or {})!r}: {builtin.name} takes the constants "
                f"{sorted(builtin.constants)} (in its own names, or yours through names=), not {unknown}; a forward of "
                "yours must take them as keywords too (CS231n's param dicts: give reference= a function of yours)"
            )
    if builtin is not None and names:
        known = {*builtin.arrays, *builtin.constants}
        wrong = sorted(v for v in names.values() if v not in known)
        if wrong:
            raise ValueError(f"names maps onto {wrong}, which {builtin.name} does not take; it takes {sorted(known)}")
    if convention == "cache" and by_forward is not None:
        raise ValueError(
            "convention='cache' needs your own forward, which gives the cache: pass it as forward and the "
            f"built-in as reference={by_forward.name!r}"
        )
    the_info = builtin_info(builtin.name) if builtin is not None and builtin.name in LAYERS else None
    if by_forward is not None:
        user_forward = _in_builtin_names(by_forward.forward, names)
    else:
        _check_callable(forward, "forward")
        user_forward = forward
    case_names = _case_order(extra, builtin, names)
    fwd = _cache_forward(user_forward, case_names) if convention == "cache" and by_forward is None else user_forward
    if by_reference is not None or (reference is None and by_forward is not None):
        if the_info is None or builtin is None:
            raise ValueError(f"{builtin!r} is not a built-in: give reference= a torch function")
        ref = _twin_in_user_names(the_info.twin, names)
        label = f"torch's own {builtin.name} (torch_ref's twin of it)"
    elif reference is not None:
        _check_callable(reference, "reference")
        ref, label = reference, f"autograd of the reference {getattr(reference, '__name__', repr(reference))}()"
    else:
        ref, label = fwd, f"autograd of the forward {getattr(user_forward, '__name__', repr(user_forward))}() itself"
    strategy = _strategy(extra, the_info, names, dtype)
    nondiff = set(extra.get("nondiff") or ())
    if builtin is not None:
        back = {b: u for u, b in names.items()}
        nondiff |= {back.get(k, k) for k in builtin.nondiff}
    bwd = _cache_backward(backward, user_forward, case_names) if convention == "cache" else backward
    return LayerSetup(
        forward=fwd,
        backward=bwd,
        reference=ref,
        reference_label=label,
        strategy=strategy,
        nondiff=frozenset(nondiff),
        names=names,
        builtin=builtin,
        info=the_info,
        convention=convention,
        user_forward=forward,
        user_backward=backward,
        user_reference=reference,
        constants=dict(extra.get("constants") or {}),
    )


def _case_order(extra: Mapping[str, Any], builtin: Layer | None, names: Mapping[str, str]) -> list[str]:
    """The parameter arrays' order for a "cache" forward: the shapes' order, else the built-in's."""
    shapes = extra.get("shapes")
    if isinstance(shapes, Mapping):
        return [k for k in shapes if k != "x"]
    if builtin is not None:
        back = {b: u for u, b in names.items()}
        return [back.get(k, k) for k in builtin.params]
    return []


def _cache_backward(backward: Callable[..., Any], forward: Callable[..., Any], order: list[str]) -> Callable[..., Any]:
    """A CS231n backward, ``backward(dout, cache) -> (dx, dparam, ...)``, in the calling form of the
    others: the forward runs to give the cache, and the tuple is read in the forward's order."""

    def grads(dout: Any, x: Any, **kwargs: Any) -> dict[str, Any]:
        arrays, rest = _split(kwargs, order)
        _, cache = forward(x, *[kwargs[k] for k in arrays], **rest)
        result = backward(dout, cache)
        if not isinstance(result, tuple):
            raise TypeError(
                f"convention='cache': backward must return a tuple (dx, {', '.join('d' + k for k in arrays)}), got {type(result).__name__}"
            )
        if len(result) != 1 + len(arrays):
            raise TypeError(
                f"convention='cache': backward returned {len(result)} values; expected {1 + len(arrays)}, "
                f"(dx, {', '.join('d' + k for k in arrays)}) in the forward's order"
            )
        return dict(zip(["x", *arrays], result))

    return grads


def _strategy(extra: Mapping[str, Any], the_info: LayerInfo | None, names: Mapping[str, str], dtype: np.dtype) -> Any:
    inputs, shapes = extra.get("inputs"), extra.get("shapes")
    constants = dict(extra.get("constants") or {})
    if inputs is not None and shapes is not None:
        raise ValueError("give inputs= or shapes= (with dims=), not both")
    if inputs is not None:
        if isinstance(inputs, SearchStrategy):
            strategy = from_strategy(inputs, dtype)
        elif callable(inputs):
            if len(inspect.signature(inputs).parameters) != 1:
                raise TypeError("inputs must be draw(rng) -> (x, params), one argument, or a Hypothesis strategy")
            strategy = from_function(inputs, dtype)
        else:
            raise TypeError(
                f"inputs must be draw(rng) -> (x, params) or a Hypothesis strategy, got {type(inputs).__name__}"
            )
    elif shapes is not None:
        parsed, ranges = parse_shapes(shapes, extra.get("dims"))
        return from_shapes(parsed, ranges, constants, dtype)
    elif the_info is not None:
        strategy = the_info.draw(dtype).map(_renamed(names))
    else:
        raise ValueError(
            "check_layer needs inputs: give inputs=draw(rng) -> (x, params), or shapes= with dims=, or name a built-in "
            f"layer as forward or reference (known: {sorted(LAYERS)})"
        )
    if constants:
        strategy = strategy.map(
            lambda c: LayerCase(c.x, c.params, {**c.constants, **constants}, c.regimes, c.dims, c.order)
        )
    return strategy
