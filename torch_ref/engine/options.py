"""Validation of the oracle's keyword options: each bad option is a ValueError naming it, raised
before anything is drawn."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np

from manual import Activation, Loss
from manual._entry import did_you_mean
from manual.registry import ACTIVATIONS

from ..strategies import TARGET_MODES, Case, narrow, output_pairs, resolve
from ..twins import activation_twin

__all__ = ["DEFAULTS", "OPTIONS_DOC", "CheckOptions", "Options", "parse_dtype", "parse_options"]


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


class CheckOptions(TypedDict, total=False):
    """The options every kind of check takes (the one signature of ``check_*(fn, **options)``);
    :data:`DEFAULTS` gives their defaults and :data:`OPTIONS_DOC` their meaning."""

    max_examples: int
    seed: int | None
    dtype: Any
    device: str
    arrays: str | None
    activations: Sequence[str | Activation] | None
    hidden_activations: Sequence[str | Activation] | None
    output_activations: Sequence[str | Activation] | None
    losses: Sequence[str | Loss] | None
    depths: int | tuple[int, int]
    widths: int | tuple[int, int]
    output_width: int | tuple[int, int] | None
    batch: int | tuple[int, int]
    bias: bool | None
    reductions: Sequence[str] | None
    targets: str
    where: Callable[[Case], bool] | None
    strict: bool
    # networks of layers: check_derivation, check_training, check_per_example and check_data_parallel
    # hand a call with networks= to their network kind (torch_ref.kinds.network*), which draws them
    networks: Any


DEFAULTS: dict[str, Any] = {
    "max_examples": 100,
    "seed": None,
    "dtype": "float64",
    "device": "cpu",
    "arrays": None,
    "activations": None,
    "hidden_activations": None,
    "output_activations": None,
    "losses": None,
    "depths": (1, 4),
    "widths": (1, 6),
    "output_width": None,
    "batch": (1, 5),
    "bias": None,
    "reductions": None,
    "targets": "soft",
    "where": None,
    "strict": False,
}

OPTIONS_DOC = """
        max_examples: random networks drawn by Hypothesis (then a fixed set of small coverage cases).
        seed: makes the draw reproducible; ``None`` draws afresh.
        dtype: ``"float64"`` or ``"float32"``; the reference is always float64 autograd on the same
            values, the tolerance that of the derivation's dtype.
        device, arrays: what the callable receives: NumPy arrays (default on ``"cpu"``) or torch
            tensors on ``device``.
        activations: what every layer draws from (names or :class:`manual.Activation` objects;
            default every registered one).
        hidden_activations, output_activations: narrow the hidden layers and the output layer
            further (each within ``activations`` when that is given).
        losses, depths, widths, batch, bias, reductions: narrow what is drawn to what the derivation
            claims to cover (defaults: everything, depth 1-4, widths 1-6, N 1-5).
        output_width: the output width J, an int or ``(lo, hi)`` (default: from ``widths``).
        targets: ``"soft"`` (default: as the loss declares, e.g. ce rows on the simplex) or
            ``"onehot"`` (class labels: ce one 1 per row, bce entries in {0, 1}).
        where: ``where(case) -> bool``, your own predicate on the drawn
            :class:`~torch_ref.strategies.Case`; only cases it accepts are checked.
        strict: fail on *precision* too (agreement to rounding level but beyond the derived
            bound); by default such cases pass with a :class:`~torch_ref.PrecisionWarning`.
"""


def parse_options(lr: Any = (0.01, 0.1, 0.5, 1.0), **given: Any) -> Options:
    """Every option validated (a ``ValueError`` naming the first bad one, before anything is drawn),
    the defaults of :data:`DEFAULTS` where one is not given. ``lr``: the learning rates drawn into
    the cases (update and training checks)."""
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise TypeError(f"unexpected option(s) {unknown}; accepted: {sorted(DEFAULTS)}")
    o = {**DEFAULTS, **given}
    _run_options(o["max_examples"], o["seed"], o["strict"])
    dtype, device, arrays = _placement(o["dtype"], o["device"], o["arrays"])
    acts, loss_names, hidden, outputs = _entry_options(
        o["activations"], o["losses"], o["hidden_activations"], o["output_activations"]
    )
    _data_options(o["bias"], o["targets"], o["where"])
    reds = _names("reductions", o["reductions"], ("sum", "mean"))
    d = _range("depths", o["depths"], 1)
    w = _range("widths", o["widths"], 1)
    out_w = None if o["output_width"] is None else _range("output_width", o["output_width"], 1)
    loss_names = _usable_losses(o["losses"], loss_names, outputs, w if out_w is None else out_w)
    output_pairs(outputs, loss_names, w if out_w is None else out_w, d, hidden)  # ValueError naming what leaves nothing
    narrowed = o["hidden_activations"] or o["output_activations"]
    return Options(
        o["max_examples"],
        o["seed"],
        dtype,
        device,
        arrays,
        tuple(dict.fromkeys((*hidden, *outputs))) if narrowed else acts,
        loss_names,
        d,
        w,
        _range("batch", o["batch"], 1),
        o["bias"],
        reds,
        o["strict"],
        hidden=tuple(a for a in hidden if a.elementwise),
        outputs=outputs,
        output_width=out_w,
        targets=o["targets"],
        where=o["where"],
        lrs=_lrs(lr),
    )


def _run_options(max_examples: Any, seed: Any, strict: Any) -> None:
    """How many cases, from which seed, and whether precision fails."""
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples must be an int >= 1, got {max_examples!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an int or None, got {seed!r}")
    if not isinstance(strict, bool):
        raise ValueError(f"strict must be True or False, got {strict!r}")


def _placement(dtype: Any, device: Any, arrays: Any) -> tuple[str, str, str]:
    """The dtype, and where the callable's arrays live: NumPy on the CPU, or torch tensors on a device."""
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
    return dtype, device, arrays


def _entry_options(
    activations: Any, losses: Any, hidden_activations: Any, output_activations: Any
) -> tuple[tuple[Activation, ...], tuple[Loss, ...], tuple[Activation, ...], tuple[Activation, ...]]:
    """The activations and losses drawn from; a user's own entry probed before any draw."""
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
    return acts, loss_names, hidden, outputs


def _data_options(bias: Any, targets: Any, where: Any) -> None:
    """Bias on, off or both; the targets' form; the user's own predicate."""
    if bias is not None and not isinstance(bias, bool):
        raise ValueError(f"bias must be True, False or None (both), got {bias!r}")
    if targets not in TARGET_MODES:
        raise ValueError(f"targets must be one of {TARGET_MODES}, got {targets!r}")
    if where is not None:
        _check_where(where)


def _usable_losses(
    given: Any, loss_names: tuple[Loss, ...], outputs: tuple[Activation, ...], out_range: tuple[int, int]
) -> tuple[Loss, ...]:
    """With no losses named: every loss that the chosen output activations and widths can serve."""
    if given is not None:
        return loss_names
    usable = tuple(loss for loss in loss_names if _serves(outputs, loss, out_range))
    return usable or loss_names


def _serves(activations: tuple[Activation, ...], loss: Loss, widths: tuple[int, int]) -> bool:
    try:
        output_pairs(activations, (loss,), widths)
    except ValueError:
        return False
    return True
