"""Update: ``step_fn(spec, params, X, Y, lr)`` against one step of ``torch.optim.SGD``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from typing_extensions import Unpack

from manual import Params, Spec

from ..engine.options import CheckOptions
from ..engine.run import run
from ..engine.summary import Summary
from ..first_order.kind_entry import classifier, first_order_kind

__all__ = ["KIND", "check_update"]


KIND = first_order_kind(
    "update",
    check="check_update",
    what="step_fn",
    call="step_fn(spec, params, X, Y, lr) -> Params (the updated weights)",
    reference="one step of torch.optim.SGD (plain) on the torch twin, compared through the gradient it implies",
    judge=classifier(update=True),
    nargs=5,
    options={"lr": (0.01, 0.1, 0.5, 1.0)},
)


def check_update(
    step_fn: Callable[[Spec, Params, Any, Any, float], Any],
    *,
    lr: float | Sequence[float] = (0.01, 0.1, 0.5, 1.0),
    **options: Unpack[CheckOptions],
) -> Summary:
    """Check an update rule ``step_fn(spec, params, X, Y, lr) -> Params`` against one step of
    ``torch.optim.SGD`` (plain: no momentum, no weight decay) at the learning rate(s) ``lr``; the
    other options as :func:`~torch_ref.check_derivation`. The rule gets private copies: one that
    updates its arrays in place and returns them is checked like any other. A rule with state
    (momentum) or weight decay is checked over several steps by :func:`~torch_ref.check_training`."""
    __tracebackhide__ = True
    return run(KIND, step_fn, {**options, "lr": lr})
