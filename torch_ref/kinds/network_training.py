"""A network's training: ``make_trainer(net, params, lr=lr)`` stepped against ``torch.optim`` on the
network's torch twin, step by step, on random architectures."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ..engine.kind import Kind
from ..engine.naming import label
from ..engine.run import run
from ..engine.summary import Summary
from ..networks.report import add, describe, reproduce
from ..networks.select import strategy
from ..networks.training import check_factory, explain_training, judge_training
from ..training.rules import rule_of
from ..training.trajectory import make_optimizer

__all__ = ["KIND", "check_network_training"]

OPTIONS: Mapping[str, Any] = {"networks": ("mlp", "cnn", "transformer"), "steps": 3, "lr": 0.05, "optimizer": None}
COMMON = ("max_examples", "seed", "dtype", "device", "arrays", "strict")


def _prepare(fn: Callable[..., Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    check_factory(fn)
    steps, lr, optimizer = extra["steps"], extra["lr"], extra["optimizer"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < float("inf"):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if optimizer is not None and not callable(optimizer):
        raise ValueError(f"optimizer must be None or a callable optimizer(params, lr), got {optimizer!r}")
    # the optimizer it makes must have a trajectory model (SGD, Adam, AdamW): said now, before any draw
    rule_of(make_optimizer(optimizer, [torch.zeros(1, requires_grad=True)], float(lr)))
    strategy(extra["networks"], np.dtype("float64"))
    return dict(extra)


def _judge(fn: Callable[..., Any], case: Any, opt: Any, extra: Mapping[str, Any]) -> Any:
    return judge_training(
        fn, case, steps=extra["steps"], lr=float(extra["lr"]), optimizer=extra["optimizer"],
        arrays=opt.arrays, device=opt.device, dtype=opt.dtype,
    )  # fmt: skip


def _finish(v: Any, fn: Callable[..., Any], opt: Any, extra: Mapping[str, Any]) -> Any:
    if v.kind != "mismatch":
        return v
    return replace(v, findings=(*v.findings, *explain_training(v)))


def _report(
    v: Any, fn: Any, names: tuple[str, ...], opt: Any, extra: Any, before: Any = None
) -> tuple[list[str], list[str]]:
    who = f"make_trainer {label(fn, names)}"
    case = f"{v.case.net} on X{tuple(v.case.X.shape)} ({opt.dtype}), lr={v.lr:g}"
    rule = v.rule.describe() if v.rule is not None else "torch.optim"
    head = {
        "mismatch": f"{who} parts from {rule} at step {v.step} of {v.steps} on {case}",
        "crash": f"{who} crashed on {case}",
    }.get(v.kind, f"{who}: {v.kind} on {case}")
    lines = [head]
    if v.detail:
        lines.append(v.detail)
    if v.comparison is not None:
        lines.append(str(v.comparison))
        rows = {r.name: r for r in v.comparison.rows}
        order = list(reversed(list(v.case.net.parameters())))
        first = next((k for k in order if not rows[k].ok), None)
        if first is not None:
            lines.append(f"Step {v.step} parts first (from the loss down) at {v.case.net.where(first)}, {first!r}.")
    lines += list(v.findings)
    repro = reproduce(v, fn, names, opt, "training")
    optimizer = _optimizer_code(v.rule) if extra["optimizer"] is not None and v.rule is not None else ""
    if optimizer:
        repro.insert(1, "    import torch")
    repro[-1] = repro[-1].replace(
        "networks=case,",
        f"networks=case, steps={v.steps}, lr={v.lr!r},{f' optimizer={optimizer},' if optimizer else ''}",
    )
    return [*lines, *repro], repro


def _optimizer_code(rule: Any) -> str:
    """The optimizer factory as Python, from the rule read off the optimizer the check ran
    (``torch.optim.AdamW(lr=0.05, betas=...)`` -> ``lambda params, lr: torch.optim.AdamW(params, lr=lr, betas=...)``)."""
    head, _, rest = rule.describe().partition("(")
    options = rest.split(", ", 1)[1] if ", " in rest else ""
    return f"lambda params, lr: {head}(params, lr=lr{', ' + options if options else ')'}"


KIND = Kind(
    name="network-training",
    check="check_network_training",
    what="make_trainer",
    call="make_trainer(net, params, lr=lr) -> an object with .step(X, Y[, masks=]) and .params (a dict by name)",
    reference="the same steps of torch.optim (SGD, Adam or AdamW) on the network's torch twin, step by step",
    tolerance="the update rule run on bounds: each step's gradient bound (the rounding model) carried through the optimizer",
    judge=_judge,
    report=_report,
    options=OPTIONS,
    defaults={"max_examples": 20},
    prepare=_prepare,
    finish=_finish,
    coverage_cases=False,
    draw=lambda opt, extra: strategy(extra["networks"], np.dtype(opt.dtype)),
    common=COMMON,
    add=add,
    describe=describe,
)


def check_network_training(make_trainer: Callable[..., Any], **options: Any) -> Summary:
    """Check a network trainer's steps against ``torch.optim`` on the network's torch twin.

    Args:
        make_trainer: ``make_trainer(net, params, lr=lr)`` -> an object with ``.step(X, Y)`` (called with
            ``masks={path: mask}`` too when the network has dropout: a fresh mask every step) and
            ``.params``, the current parameters by name (``manual.network.NetworkTrainer`` is one).

    Keyword-only:
        networks: as :func:`~torch_ref.check_network`.
        steps: steps per case (default 3), each on the case's batch.
        lr: the learning rate (default 0.05).
        optimizer: ``optimizer(params, lr)`` -> a ``torch.optim`` optimizer (SGD, Adam or AdamW; default
            ``torch.optim.SGD``), e.g. ``lambda params, lr: torch.optim.AdamW(params, lr)``.
        dtype, arrays, device, max_examples, seed, strict: as :func:`~torch_ref.check_derivation`.
    """
    __tracebackhide__ = True
    return run(KIND, make_trainer, options)
