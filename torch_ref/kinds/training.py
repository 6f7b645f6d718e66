"""Training: ``make_trainer(spec, params, lr=lr)`` stepped against a ``torch.optim`` optimizer."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from typing_extensions import Unpack

from ..engine.options import CheckOptions, Options
from ..engine.run import run
from ..engine.summary import Summary
from ..first_order.kind_entry import first_order_kind
from ..strategies import Case
from ..training.trajectory import check_trainer_factory, check_training_case

__all__ = ["KIND", "check_training"]


def _judge(fn: Callable, case: Case, opt: Options, extra: Mapping[str, Any]) -> Any:
    return check_training_case(
        fn,
        case,
        optimizer=extra["optimizer"],
        steps=extra["steps"],
        arrays=opt.arrays,
        device=opt.device,
        diagnose=False,
    )


def _finish(v: Any, fn: Callable, opt: Options, extra: Mapping[str, Any]) -> Any:
    """The reported case re-run with the optimizer mistakes that fit where the trajectories part."""
    if v.kind != "mismatch":
        return v
    return check_training_case(
        fn, v.case, optimizer=extra["optimizer"], steps=extra["steps"], arrays=opt.arrays, device=opt.device
    )


def _prepare(fn: Callable, extra: Mapping[str, Any]) -> dict[str, Any]:
    check_trainer_factory(fn)
    steps, optimizer = extra["steps"], extra["optimizer"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if optimizer is not None and not callable(optimizer):
        raise ValueError(f"optimizer must be None or a callable optimizer(params, lr), got {optimizer!r}")
    return dict(extra)


KIND = first_order_kind(
    "training",
    check="check_training",
    what="make_trainer",
    call="make_trainer(spec, params, lr=lr) -> an object with .step(X, Y) and .params",
    reference="the same steps of torch.optim (SGD, Adam or AdamW) on the torch twin, step by step",
    tolerance="the trajectory bound of torch_ref.training (each step's gradient tolerance carried through the optimizer)",
    judge=_judge,
    prepare=_prepare,
    finish=_finish,
    options={"optimizer": None, "steps": 3, "lr": (0.01, 0.1, 0.5)},
)


def check_training(
    make_trainer: Callable[..., Any],
    *,
    optimizer: Callable[..., Any] | None = None,
    steps: int = 3,
    lr: float | Sequence[float] | None = None,
    **options: Unpack[CheckOptions],
) -> Summary:
    """Check a training loop: ``make_trainer(spec, params, lr=lr)`` gives an object with
    ``.step(X, Y)`` and ``.params`` (:class:`manual.Trainer` and :class:`manual.AdamTrainer` fit);
    per case it takes ``steps`` steps on batches drawn per step and is compared after every step with
    the same steps of ``optimizer(torch_parameters, lr)`` (default ``torch.optim.SGD``; SGD, Adam and
    AdamW are modelled) on the torch network. A failure names the first step and parameter where the
    trajectories part and the optimizer mistakes that fit (:mod:`torch_ref.training.trajectory`).

    With ``networks=`` the draw is networks of layers and ``make_trainer(net, params, lr=lr)``:
    :func:`~torch_ref.check_network_training` (``lr`` one number there).

    Args:
        lr: the learning rate(s) drawn (default 0.01, 0.1, 0.5).
        options: as :func:`~torch_ref.check_derivation`.
    """
    __tracebackhide__ = True
    given = {"optimizer": optimizer, "steps": steps, **({} if lr is None else {"lr": lr})}
    if "networks" in options:  # networks of layers: make_trainer(net, params, lr=lr), check_network_training
        from .network_training import check_network_training

        return check_network_training(make_trainer, **{**options, **{k: v for k, v in given.items() if v is not None}})
    return run(KIND, make_trainer, {**options, **given})
