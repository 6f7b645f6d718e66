"""A network check's report: the head, the comparison table, where the gradients part (block and
layer), the diagnosis, and the Reproduce lines; the failure record's case; a passing run's coverage
(families, layers, regimes)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..engine.naming import label
from ..engine.report import fn_import
from .diagnose import explain, parting
from .judge import NetworkOutcome

__all__ = ["add", "describe", "diagnose", "report", "reproduce"]


def diagnose(v: NetworkOutcome, fn: Any, opt: Any, extra: Any) -> NetworkOutcome:
    """The failing outcome with its diagnosis (run once, on the minimal case)."""
    if v.kind != "mismatch":
        return v
    return replace(v, findings=(*v.findings, *explain(v)))


def report(
    v: NetworkOutcome, fn: Any, names: tuple[str, ...], opt: Any, extra: Any, before: Any = None
) -> tuple[list[str], list[str]]:
    who = f"{v.what} {label(fn, names)}"
    case = f"{v.case.net} on X{tuple(v.case.X.shape)} ({opt.dtype})"
    head = {
        "mismatch": f"{who} parts from autograd of torch's modules on {case}",
        "crash": f"{who} crashed on {case}",
        "type": f"{who} returned something that cannot be compared, on {case}",
    }.get(v.kind, f"{who}: {v.kind} on {case}")
    lines = [head]
    if v.detail:
        lines.append(v.detail)
    if v.comparison is not None:
        lines.append(str(v.comparison))
        lines += parting(v)
    lines += list(v.findings)
    repro = reproduce(v, fn, names, opt, "per-example" if v.what == "per_example_fn" else "grads")
    return [*lines, *repro], repro


def reproduce(v: Any, fn: Any, names: tuple[str, ...], opt: Any, call: str) -> list[str]:
    """Lines that rebuild the case (the architecture, its input shape and the seed of every value) and
    run the check on it alone."""
    imports, name = fn_import(fn)
    name = (names[0] if names else getattr(fn, "__name__", "grad_fn")) if not imports else name
    c = v.case
    masks = ", masks=case.masks" if c.masks else ""
    check = {"grads": "check_derivation", "per-example": "check_per_example"}.get(call, "check_training")
    run = f"    grads = {name}(net, case.params, case.X, case.Y{masks})"
    return [
        "Reproduce:",
        "    import torch_ref",
        "    from manual.network import *",
        *(f"    {line}" for line in imports),
        *(
            ["    # activation('NAME') stands for your own manual.Activation entry: put it in its place"]
            if any(node.call.startswith("activation(") for _, node in c.net.nodes())
            else []
        ),
        f"    net = {c.net!r}",
        f"    case = torch_ref.network_case(net, {tuple(c.shape)!r}, seed={c.seed}, dtype={opt.dtype!r})",
        *([run] if call != "training" else []),
        f"    torch_ref.{check}({name}, networks=case, dtype={opt.dtype!r})",
    ]


def describe(case: Any, opt: Any) -> dict[str, Any]:
    """The failure record's case."""
    case = getattr(case, "case", case)
    return {
        "spec": repr(case.net),
        "N": case.N,
        "shape": list(case.shape),
        "seed": case.seed,
        "family": case.family,
        "regimes": list(case.regimes),
        "dtype": opt.dtype,
        "device": opt.device,
    }


def add(summary: Any, v: Any) -> None:
    """An agreeing case counted: its architecture, family, layers and regimes, the share of the bound."""
    case = getattr(v.case, "case", v.case)
    summary.examples += 1
    summary.batch_sizes.add(case.N)
    summary.specs.add(repr(case.net))
    extra = summary.extra
    if case.family:
        extra.setdefault("families", set()).add(case.family)
    extra.setdefault("layers", set()).update(node.name for _, node in case.net.nodes())
    if case.regimes:
        extra.setdefault("regimes", set()).update(case.regimes)
    if v.comparison is not None:
        summary.worst_share = max(summary.worst_share, v.comparison.worst_share)
