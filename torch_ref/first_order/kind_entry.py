"""The table entries of the first-order kinds (gradients, update, training, deltas, input,
per-example) share their report: the head and minimal case, the comparison table, the layer where
the two part, the diagnosis, finite-difference blame and the Reproduce lines of
:mod:`torch_ref.first_order.report`; and their precision warning."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..engine.kind import Kind
from ..engine.naming import caller_names, optimizer_naming
from ..engine.options import Options
from ..strategies import Case
from .quantities import classify_kind
from .report import failure_lines, render_precision
from .verdict import check_callable, classify

__all__ = ["classifier", "first_order_kind", "quantity"]


def _report(v: Any, fn: Any, names: tuple[str, ...], opt: Options, extra: Mapping[str, Any], before: Any = None):
    steps = extra.get("steps")
    if steps is None:
        return failure_lines(v, fn, names, opt, None)
    optimizer = extra.get("optimizer")
    naming_of = None if optimizer is None else optimizer_naming(optimizer, caller_names(optimizer))
    return failure_lines(v, fn, names, opt, (steps, naming_of))


def _precision(v: Any, fn: Any, names: tuple[str, ...], opt: Options, count: int, total: int) -> str:
    return render_precision(v, fn, names, opt, count, total)


def _callable_of(what: str, nargs: int) -> Callable[[Callable, Mapping[str, Any]], dict[str, Any]]:
    def prepare(fn: Callable, extra: Mapping[str, Any]) -> dict[str, Any]:
        check_callable(fn, what, nargs)
        return dict(extra)

    return prepare


def classifier(update: bool) -> Callable[..., Any]:
    """The judge of a gradients (``update=False``) or update check: :func:`~torch_ref.first_order.verdict.classify`."""

    def judge(fn: Callable, case: Case, opt: Options, extra: Mapping[str, Any]) -> Any:
        return classify(fn, case, update=update, arrays=opt.arrays, device=opt.device)

    return judge


def quantity(kind: str) -> Callable[..., Any]:
    """The judge of a deltas, input or per-example check: :func:`~torch_ref.first_order.quantities.classify_kind`."""

    def judge(fn: Callable, case: Case, opt: Options, extra: Mapping[str, Any]) -> Any:
        return classify_kind(kind, fn, case, arrays=opt.arrays, device=opt.device)

    return judge


def first_order_kind(
    name: str,
    *,
    check: str,
    what: str,
    call: str,
    reference: str,
    judge: Callable[..., Any],
    nargs: int = 4,
    **fields: Any,
) -> Kind:
    """A first-order kind's entry: its own fields, the shared report, precision warning and tolerance."""
    fields.setdefault("prepare", _callable_of(what, nargs))
    fields.setdefault(
        "not_judged",
        "Narrow the draw to cases the {dtype} check can judge (e.g. a smaller lr or fewer steps for a "
        "diverging training run, or dtype='float64').",
    )
    fields.setdefault(
        "tolerance",
        "the first-order rounding model of torch_ref.numerics.tolerance (per entry, from eps and the sums' lengths)",
    )
    return Kind(
        name=name,
        check=check,
        what=what,
        call=call,
        reference=reference,
        judge=judge,
        report=_report,
        precision=_precision,
        **fields,
    )
