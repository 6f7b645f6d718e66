"""Validation of the oracle's keyword options: each bad option is a ValueError naming it, raised
before anything is drawn."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from manual import Activation, Loss
from manual._entry import did_you_mean
from manual.registry import ACTIVATIONS

from ..strategies import TARGET_MODES, Case, narrow, output_pairs, resolve
from ..twins import activation_twin

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
    hidden: tuple[Activation, ...] = ()  # what hidden layers draw from (elementwise)
    outputs: tuple[Activation, ...] = ()  # what the output layer draws from
    output_width: tuple[int, int] | None = None  # the output width J's range (None: widths)
    targets: str = "soft"
    where: Callable[[Case], bool] | None = None
    lrs: tuple[float, ...] = (0.01, 0.1, 0.5, 1.0)
    # the caller's variable for each user entry (id -> name), so the Reproduce lines can name it
    entry_vars: tuple[tuple[int, str], ...] = ()

    def spec_options(self) -> dict[str, Any]:
        return dict(
            depths=self.depths,
            widths=self.widths,
            hidden_activations=self.hidden,
            output_activations=self.outputs,
            output_width=self.output_width,
            losses=self.losses,
            bias=self.bias,
            reductions=self.reductions,
        )

    @property
    def out_range(self) -> tuple[int, int]:
        return self.widths if self.output_width is None else self.output_width

    def admits(self, case: Case) -> bool:
        """Whether ``case`` lies within every option (the one test every case handed to a derivation
        passes, drawn or built for coverage)."""
        spec = case.spec
        lo, hi = self.out_range
        return (
            self.depths[0] <= spec.depth <= self.depths[1]
            and all(self.widths[0] <= w <= self.widths[1] for w in spec.sizes[:-1])
            and lo <= spec.sizes[-1] <= hi
            and all(a in self.hidden for a in spec.activations[:-1])
            and spec.activations[-1] in self.outputs
            and spec.loss in self.losses
            and (self.bias is None or spec.bias == self.bias)
            and spec.reduction in self.reductions
            and self.batch[0] <= case.X.shape[0] <= self.batch[1]
            and case.targets == self.targets
            and case.lr in self.lrs
            and self.accepts(case)
        )

    def accepts(self, case: Case) -> bool:
        """``where(case)``; a predicate that raises is a ``ValueError`` naming it and the case."""
        if self.where is None:
            return True
        try:
            return bool(self.where(case))
        except Exception as exc:
            raise ValueError(f"where(case) raised {type(exc).__name__}: {exc} (on {case!r})") from None


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


def _range(name: str, given: Any, low: int) -> tuple[int, int]:
    value = (given, given) if isinstance(given, int) and not isinstance(given, bool) else given
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or value[0] < low
        or value[1] < value[0]
    ):
        raise ValueError(f"{name} must be an int >= {low} or a pair (lo, hi) with {low} <= lo <= hi, got {given!r}")
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
        hint = did_you_mean(unknown[0], allowed) if unknown and isinstance(unknown[0], str) else ""
        raise ValueError(f"{name} must be a non-empty selection from {tuple(allowed)}, got {value!r}{hint}")
    return value


def _check_where(where: Any) -> None:
    if not callable(where):
        raise ValueError(f"where must be None or a callable where(case) -> bool, got {where!r}")
    try:
        signature = inspect.signature(where)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(None)
    except TypeError:
        raise ValueError(
            f"where must take one argument, the drawn torch_ref.strategies.Case; {where!r} has signature {signature}"
        ) from None


def _lrs(lr: Any) -> tuple[float, ...]:
    values = (lr,) if isinstance(lr, (int, float)) and not isinstance(lr, bool) else lr
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        out = ()
    if not out or any(isinstance(v, bool) or not (np.isfinite(v) and v > 0) for v in out):
        raise ValueError(f"lr must be a finite number > 0 or a non-empty sequence of them, got {lr!r}")
    return out


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
    hidden_activations: Any = None,
    output_activations: Any = None,
    output_width: Any = None,
    targets: Any = "soft",
    where: Any = None,
    lr: Any = (0.01, 0.1, 0.5, 1.0),
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
    for name, value in (
        ("activations", activations),
        ("losses", losses),
        ("hidden_activations", hidden_activations),
        ("output_activations", output_activations),
    ):
        _entries(name, value)
    acts, loss_names = resolve(activations, losses)  # ValueError naming an unknown entry
    hidden, outputs = narrow(activations, hidden_activations, output_activations)
    for entry in dict.fromkeys((*acts, *hidden, *outputs)):
        if ACTIVATIONS.get(entry.name) is not entry:
            activation_twin(entry)  # a user entry's probe (elementwise, no custom backward), before any draw
    if bias is not None and not isinstance(bias, bool):
        raise ValueError(f"bias must be True, False or None (both), got {bias!r}")
    if targets not in TARGET_MODES:
        raise ValueError(f"targets must be one of {TARGET_MODES}, got {targets!r}")
    if where is not None:
        _check_where(where)
    reds = _names("reductions", reductions, ("sum", "mean"))
    d = _range("depths", depths, 1)
    w = _range("widths", widths, 1)
    out_w = None if output_width is None else _range("output_width", output_width, 1)
    out_range = w if out_w is None else out_w
    if losses is None:
        # every loss that the chosen activations and widths can serve
        usable = tuple(loss for loss in loss_names if _serves(outputs, loss, out_range))
        loss_names = usable or loss_names
    output_pairs(outputs, loss_names, out_range, d, hidden)  # ValueError naming what leaves nothing to draw
    return Options(
        max_examples,
        seed,
        dtype,
        device,
        arrays,
        tuple(dict.fromkeys((*hidden, *outputs))) if (hidden_activations or output_activations) else acts,
        loss_names,
        d,
        w,
        _range("batch", batch, 1),
        bias,
        reds,
        strict,
        hidden=tuple(a for a in hidden if a.elementwise),
        outputs=outputs,
        output_width=out_w,
        targets=targets,
        where=where,
        lrs=_lrs(lr),
    )


def _serves(activations: tuple[Activation, ...], loss: Loss, widths: tuple[int, int]) -> bool:
    try:
        output_pairs(activations, (loss,), widths)
    except ValueError:
        return False
    return True
