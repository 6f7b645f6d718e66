r"""A network's training steps against ``torch.optim`` on its torch twin, step by step.

The user's ``make_trainer(net, params, lr=lr)`` gives an object with ``.step(X, Y)`` (``masks=`` too
when the network has dropout: a fresh mask per step, drawn from the case's seed and the step's index)
and ``.params`` (a dict by name). The reference: the twin's modules (float64) stepped by the
optimizer ``optimizer(params, lr)`` makes (``torch.optim.SGD`` by default), on the same batch and masks.

The bound at step k+1 (the training kinds' trajectory model, :mod:`torch_ref.training`): torch's
update rule (:func:`~torch_ref.training.rules.rule_of`) run on :class:`~torch_ref.numerics.bound.Bound`
values, from torch's parameters :math:`V_k` with the measured distance :math:`|W_k - V_k|` of the
user's, and torch's gradients with the measured distance of the gradients at the user's point plus
the rounding model's bound there (:mod:`torch_ref.networks.judge`); every operation of the rule
rounding in the checked dtype. An entry whose bound is not finite is not judged, never a pass.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from manual.network import Network

from ..engine.outcome import Judged
from ..layers.judge import _crash, hand_out
from ..numerics.bound import Bound
from ..numerics.compare import Comparison, compare
from ..training.rules import Rule, rule_of, variants
from ..training.trajectory import make_optimizer
from .case import NetworkCase
from .judge import real_floating, reference_of, unjudgeable
from .twin import load, module, torch_names

__all__ = ["NetworkTrainingOutcome", "check_factory", "judge_training", "step_masks"]


@dataclass(frozen=True)
class NetworkTrainingOutcome(Judged):
    """The trainer's run on one case: the verdict, the first step where it parts, the comparison there."""

    kind: str
    case: NetworkCase
    what: str
    comparison: Comparison | None = None
    detail: str = ""
    findings: tuple[str, ...] = ()
    step: int = 0
    steps: int = 0
    lr: float = 0.0
    rule: Rule | None = None
    user: tuple[dict[str, np.ndarray], ...] = ()
    torch_path: tuple[dict[str, np.ndarray], ...] = ()
    allowed: tuple[dict[str, np.ndarray], ...] = ()
    dtype: str = "float64"


def step_masks(case: NetworkCase, step: int) -> dict[str, np.ndarray]:
    """The dropout masks of step ``step`` (from 1): the case's own at step 1, then drawn afresh from the
    case's seed and the step's index."""
    if not case.masks:
        return {}
    if step == 1:
        return dict(case.masks)
    rng = np.random.default_rng([case.seed, step])
    p = {path: node.constants["p"] for path, node in case.net.nodes() if node.masked}
    return {k: rng.random(m.shape) >= p[k] for k, m in case.masks.items()}


def _numpy64(v: Any) -> np.ndarray:
    """A float64 NumPy copy (never a view of a parameter a later step changes in place)."""
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    return np.array(v, dtype=np.float64, copy=True)


def _torch_path(
    case: NetworkCase, steps: int, lr: float, optimizer: Any
) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]], Rule]:
    """torch's parameters ``[V_0, ..., V_S]`` and gradients ``[g_0, ..., g_{S-1}]`` (float64), and the rule."""
    net = case.net
    mod = module(net, torch.float64)
    load(net, mod, case.params_as(np.float64))
    opt = make_optimizer(optimizer, list(mod.parameters()), lr)
    rule = rule_of(opt)
    state = dict(mod.named_parameters())
    names = torch_names(net)

    def read() -> dict[str, np.ndarray]:
        return {k: _numpy64(state[t].T if tr else state[t]) for k, (t, tr) in names.items()}

    path, grads = [read()], []
    from .twin import reference

    ref = reference(net)
    for k in range(1, steps + 1):
        masks = step_masks(case, k)
        opt.zero_grad(set_to_none=True)
        arrays = {f"{p}.mask": torch.from_numpy(m) for p, m in masks.items()}
        leaves = {kk: (state[t].T if tr else state[t]) for kk, (t, tr) in names.items()}
        X = torch.from_numpy(case.X if case.X.dtype.kind == "i" else case.X.astype(np.float64))
        Y = torch.from_numpy(case.Y if case.Y.dtype.kind == "i" else case.Y.astype(np.float64))
        ref(X, Y, **leaves, **arrays).backward()
        grads.append({kk: _grad(state[t], tr) for kk, (t, tr) in names.items()})
        opt.step()
        path.append(read())
    return path, grads, rule


def _grad(p: torch.Tensor, transposed: bool) -> np.ndarray:
    g = p.grad if p.grad is not None else torch.zeros_like(p)
    return _numpy64(g.T if transposed else g)


def _at(case: NetworkCase, params: Mapping[str, np.ndarray], step: int) -> NetworkCase:
    return NetworkCase(
        case.net, dict(params), case.X, case.Y, step_masks(case, step), case.shape, case.seed, case.family, case.regimes
    )


def _user_path(
    make_trainer: Callable[..., Any], case: NetworkCase, steps: int, lr: float, arrays: str, device: str
) -> tuple[list[dict[str, np.ndarray]] | None, str, str]:
    params = {k: hand_out(v, arrays, device) for k, v in case.params.items()}
    try:
        trainer = make_trainer(case.net, params, lr=lr)
    except Exception as exc:
        return None, "crash", _crash(exc, "make_trainer")
    out = [case.params_as(np.float64)]
    want = case.net.parameters()
    for k in range(1, steps + 1):
        X, Y = hand_out(case.X, arrays, device), hand_out(case.Y, arrays, device)
        masks = {p: hand_out(m, arrays, device) for p, m in step_masks(case, k).items()}
        try:
            trainer.step(X, Y, masks=masks) if masks else trainer.step(X, Y)
            current = trainer.params
        except Exception as exc:
            return None, "crash", _crash(exc, f"make_trainer(...).step (step {k})")
        if not isinstance(current, Mapping) or set(current) != set(want):
            return None, "type", f"make_trainer(...).params after step {k} must be a dict with the names {list(want)}"
        bad = [n for n, s in want.items() if not real_floating(current[n]) or tuple(current[n].shape) != s]
        if bad:
            return None, "shape", f"make_trainer(...).params after step {k}: wrong shapes or not real floats for {bad}"
        out.append({n: _numpy64(current[n]) for n in want})
    return out, "", ""


def _bounds(
    case: NetworkCase, rule: Rule, V: list, gV: list, W: list, dtype: str
) -> tuple[list[dict[str, np.ndarray]], list[str]]:
    """Per step k >= 1, the allowed |W_k - V_k| (the module docstring), and why the gradient it starts
    from cannot be judged in ``dtype`` (a kink or a tie within reach, a bound wider than 2⁻¹⁰ of the
    gradients: :func:`~torch_ref.networks.judge.unjudgeable`), or ""."""
    unit = float(np.finfo(np.dtype(dtype)).eps) + float(np.finfo(np.float64).eps)
    names = list(case.net.parameters())
    state: dict[Any, Any] = {}
    out, reasons = [], []
    for k in range(len(gV)):
        at = _at(case, W[k], k + 1)
        traced = reference_of(at)
        reasons.append(unjudgeable(at, traced, dtype))
        gW = {n: traced.grads[n].numpy() for n in names}
        T = {n: traced.bound(n, np.dtype(dtype)).numpy() for n in names}
        P = [Bound(V[k][n], np.abs(W[k][n] - V[k][n]), unit) for n in names]
        G = [Bound(gV[k][n], np.abs(gW[n] - gV[k][n]) + T[n], unit) for n in names]
        B = rule.step(P, G, state)
        out.append({n: b.err + np.abs(b.val - V[k + 1][n]) for n, b in zip(names, B)})
    return out, reasons


def judge_training(
    make_trainer: Callable[..., Any],
    case: NetworkCase,
    *,
    steps: int,
    lr: float,
    optimizer: Any,
    arrays: str,
    device: str,
    dtype: str,
) -> NetworkTrainingOutcome:
    """The trainer's trajectory against torch.optim's on ``case``, step by step."""
    V, gV, rule = _torch_path(case, steps, lr, optimizer)
    W, kind, detail = _user_path(make_trainer, case, steps, lr, arrays, device)
    base = dict(case=case, what="make_trainer", steps=steps, lr=lr, rule=rule, dtype=dtype)
    if W is None:
        return NetworkTrainingOutcome(kind, detail=detail, **base)  # type: ignore[arg-type]
    allowed, reasons = _bounds(case, rule, V, gV, W, dtype)
    names = list(case.net.parameters())
    comparison = None
    for k in range(1, steps + 1):
        if reasons[k - 1]:  # the steps before agreed; from here the dtype cannot tell right from wrong
            return NetworkTrainingOutcome(
                "not judged", comparison=comparison, step=k, user=tuple(W), torch_path=tuple(V),
                allowed=tuple(allowed), detail=f"step {k}: {reasons[k - 1]}", **base,  # type: ignore[arg-type]
            )  # fmt: skip
        comparison = compare(
            names,
            [W[k][n] for n in names],
            [V[k][n] for n in names],
            [allowed[k - 1][n] for n in names],
            title=f"parameters after step {k} of {steps} against {rule.describe()} on torch's modules ({dtype})",
        )
        if not comparison.ok:
            infinite = any(not np.isfinite(allowed[k - 1][n]).all() for n in names)
            verdict = "not judged" if infinite and _only_infinite(comparison, allowed[k - 1], names) else "mismatch"
            return NetworkTrainingOutcome(
                verdict,
                comparison=comparison,
                step=k,
                user=tuple(W),
                torch_path=tuple(V),
                allowed=tuple(allowed),
                detail="some entries have no finite trajectory bound" if verdict == "not judged" else "",
                **base,  # type: ignore[arg-type]
            )
    return NetworkTrainingOutcome(
        "agree",
        comparison=comparison,
        step=steps,
        user=tuple(W),
        torch_path=tuple(V),
        allowed=tuple(allowed),
        **base,  # type: ignore[arg-type]
    )


def _only_infinite(comparison: Comparison, allowed: Mapping[str, np.ndarray], names: list[str]) -> bool:
    """Whether every failing row fails only where its bound is not finite."""
    return all(row.ok or not np.isfinite(allowed[row.name]).all() for row in comparison.rows)


def check_factory(make_trainer: Any) -> None:
    """``TypeError`` unless ``make_trainer`` can be called as ``make_trainer(net, params, lr=lr)``."""
    if not callable(make_trainer):
        raise TypeError(f"make_trainer must be callable as make_trainer(net, params, lr=lr), got {make_trainer!r}")
    try:
        inspect.signature(make_trainer).bind(0, 0, lr=0.1)
    except TypeError as exc:
        raise TypeError(f"make_trainer must accept (net, params, lr=lr): {exc}") from None
    except ValueError:
        return


def candidates(
    case: NetworkCase, rule: Rule
) -> list[tuple[str, Callable[[int, dict[str, np.ndarray], dict[str, Any]], dict[str, np.ndarray]]]]:
    """Wrong trainers as step functions (float64): dropout's mask reused across steps, and the optimizer
    mistakes of :func:`torch_ref.training.rules.variants`."""
    net: Network = case.net
    names = list(net.parameters())
    X = case.X if case.X.dtype.kind == "i" else case.X.astype(np.float64)
    Y = case.Y if case.Y.dtype.kind == "i" else case.Y.astype(np.float64)

    def stepper(r: Rule, reuse: bool) -> Callable[..., dict[str, np.ndarray]]:
        def step(k: int, P: dict[str, np.ndarray], state: dict[str, Any]) -> dict[str, np.ndarray]:
            masks = step_masks(case, 1 if reuse else k) or None
            g = net.gradients(P, X, Y, masks=masks)
            new = r.step([P[n] for n in names], [np.asarray(g[n]) for n in names], state)
            return dict(zip(names, new))

        return step

    out = []
    if case.masks:
        out.append(
            ("dropout's mask reused across steps: every step after the first uses step 1's mask", stepper(rule, True))
        )
    out += [(f"the optimizer: {why}", stepper(r, False)) for r, why in variants(rule)]
    return out


def explain_training(v: NetworkTrainingOutcome) -> list[str]:
    """The wrong trainers that reproduce the user's trajectory up to the step where it parts."""
    if v.kind != "mismatch" or v.rule is None:
        return []
    names = list(v.case.net.parameters())
    named = []
    for name, step in candidates(v.case, v.rule):
        P, ok, differs = v.case.params_as(np.float64), True, False
        state: dict[Any, Any] = {}
        try:
            for k in range(1, v.step + 1):
                P = step(k, P, state)
                allowed = v.allowed[k - 1]
                if any(not (np.abs(P[n] - v.user[k][n]) <= allowed[n]).all() for n in names):
                    ok = False
                    break
                differs = differs or any(not (np.abs(P[n] - v.torch_path[k][n]) <= allowed[n]).all() for n in names)
        except Exception:
            continue
        if ok and differs:
            named.append(
                f"Diagnosis: {name}. Verified: that trainer, run in float64 on this case, reproduces every step's parameters within the bound up to step {v.step}."
            )
    return named or [
        "Diagnosis: no known training mistake reproduces this trajectory (dropout's mask reuse, the optimizer's published variants)."
    ]
