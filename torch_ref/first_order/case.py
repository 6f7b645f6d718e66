"""``check_case``: one case of a first-order check, its verdict printable as the report (the
Reproduce lines of a failing check call it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ..strategies import Case
from .quantities import classify_kind
from .report import explain
from .verdict import Verdict, check_callable, classify

__all__ = ["check_case"]


def check_case(
    fn: Callable,
    case: Case,
    *,
    update: bool = False,
    kind: str = "gradients",
    arrays: str = "numpy",
    device: str = "cpu",
) -> Verdict:
    """Check ``fn`` (a ``grad_fn(spec, params, X, Y)``, or with ``update=True`` a
    ``step_fn(spec, params, X, Y, lr)``, or with ``kind="deltas"``, ``"input"`` or ``"per-example"``
    the callables of :func:`torch_ref.check_deltas`, :func:`~torch_ref.check_input_gradient`,
    :func:`~torch_ref.check_per_example`) on one :class:`~torch_ref.strategies.Case`; ``print`` the
    :class:`Verdict` for its report. ``arrays="torch"`` hands torch tensors on ``device``.

    Example:
        >>> import manual
        >>> from torch_ref.strategies import case_from
        >>> case = case_from(manual.Spec((2, 3, 1), ("tanh", "sigmoid"), "bce"), N=4, seed=0)
        >>> check_case(manual.gradients, case).kind
        'agree'
    """
    kinds = ("gradients", "update", "deltas", "input", "per-example")
    if kind not in kinds:
        raise ValueError(f"kind must be one of {kinds} (training: check_training_case), got {kind!r}")
    update = update or kind == "update"
    check_callable(fn, "step_fn" if update else "grad_fn", 5 if update else 4)
    if not isinstance(case, Case):
        raise TypeError(f"case must be a torch_ref.strategies.Case (e.g. from case_from), got {type(case).__name__}")
    if arrays not in ("numpy", "torch"):
        raise ValueError(f"arrays must be 'numpy' or 'torch', got {arrays!r}")
    if update and not case.lr > 0:
        raise ValueError(
            f"an update check needs case.lr > 0 (the step is compared through the gradient it "
            f"implies, (W - W_new) / lr), got lr={case.lr!r}"
        )
    if kind in ("deltas", "input", "per-example"):
        return classify_kind(kind, fn, case, arrays=arrays, device=device)
    v = classify(fn, case, update=update, arrays=arrays, device=device)
    return replace(v, explained=tuple(explain(v)))
