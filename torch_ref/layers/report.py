"""A layer check's report: the head, the comparison table, the conventions, the diagnosis and the
blame, and the Reproduce lines; the case's fields in the failure record; what a passing run
covered (the layers, the regimes, the shapes)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..engine.naming import label
from ..engine.report import fn_import
from .diagnose import explain
from .judge import LayerOutcome

__all__ = ["add", "describe", "diagnose", "report"]


def diagnose(v: LayerOutcome, fn: Any, opt: Any, extra: Any) -> LayerOutcome:
    """The failing outcome with its diagnosis (run once, on the minimal case)."""
    if v.kind != "mismatch":
        return v
    return replace(v, findings=(*v.findings, *explain(v, extra["setup"])))


def _layer_name(setup: Any) -> str:
    if setup.builtin is not None:
        return setup.builtin.name
    return getattr(setup.user_forward, "__name__", "the layer")


def report(
    v: LayerOutcome, fn: Any, names: tuple[str, ...], opt: Any, extra: Any, before: Any = None
) -> tuple[list[str], list[str]]:
    setup = extra["setup"]
    who = f"backward {label(fn, names)}"
    layer = _layer_name(setup)
    head = {
        "mismatch": f"{who} parts from {setup.reference_label} on {layer}, {v.case!r} ({opt.dtype})",
        "crash": f"{v.what} crashed on {layer}, {v.case!r} ({opt.dtype})",
        "type": f"{who} returned something that cannot be compared, on {layer}, {v.case!r} ({opt.dtype})",
    }.get(v.kind, f"{who}: {v.kind} on {layer}, {v.case!r}")
    lines = [head]
    if v.detail:
        lines.append(v.detail)
    if v.comparison is not None:
        lines.append(str(v.comparison))
        first = v.comparison.first_mismatch()
        if first is not None:
            where = "the forward's output" if first.name == "out" else f"the gradient of {first.name}"
            lines.append(
                f"Parts from {where} first (worst entry {list(first.worst)}, {first.share:.3g} times its bound)"
            )
    lines += list(v.findings)
    reproduce = _reproduce(v, fn, names, setup, opt)
    return [*lines, *reproduce], reproduce


def _reproduce(v: LayerOutcome, fn: Any, names: tuple[str, ...], setup: Any, opt: Any) -> list[str]:
    imports, bwd = fn_import(fn)
    bwd = (names[0] if names else getattr(fn, "__name__", "backward")) if not imports else bwd
    fwd_imports, fwd = (
        ([], repr(setup.builtin.name)) if isinstance(setup.user_forward, str) else fn_import(setup.user_forward)
    )
    fwd = fwd.rsplit(".", 1)[-1] if "<locals>" in fwd else fwd  # a local function: by its own name
    given = setup.user_reference
    ref_imports = fn_import(given)[0] if callable(given) else []
    ref = (
        ""
        if given is None
        else f", reference={given!r}"
        if isinstance(given, str)
        else f", reference={getattr(given, '__name__', 'reference').replace('<lambda>', 'reference')}"
    )
    if setup.kind == "function":
        call = f"    torch_ref.check_function({bwd}{ref}, inputs=lambda rng: (x, params), dout_seed={v.case.seed}, dtype={opt.dtype!r}, max_examples=1)"
        run = f"    out = {bwd}.apply(torch.from_numpy(x), *[torch.from_numpy(v) if isinstance(v, np.ndarray) else v for v in params.values()])"
    else:
        more = (f", names={dict(setup.names)!r}" if setup.names else "") + (
            ", convention='cache'" if setup.convention == "cache" else ""
        )
        call = (
            f"    torch_ref.check_layer({bwd}, {fwd}{ref}{more}, inputs=lambda rng: (x, params), "
            f"dout_seed={v.case.seed}, dtype={opt.dtype!r}, max_examples=1)"
        )
        if setup.convention == "grads":
            run = f"    grads = {bwd}(dout, x, **params)"
        else:
            case = v.case.case
            arrays = ", ".join(f"params[{k!r}]" for k in case.params)
            consts = ", ".join(f"{k}=params[{k!r}]" for k in case.constants)
            args = ", ".join(a for a in ("x", arrays, consts) if a)
            run = f"    out, cache = {fwd}({args}); grads = {bwd}(dout, cache)"
    lines = [
        "Reproduce:",
        "    import numpy as np",
        *(["    import torch"] if setup.kind == "function" else []),
        "    import torch_ref",
        *(f"    {line}" for line in dict.fromkeys((*imports, *fwd_imports, *ref_imports))),
        f"    {v.case.rebuild()}",
        f"    dout = np.random.default_rng({v.case.seed}).standard_normal({_shape(v)}).astype({opt.dtype!r})",
        run,
        call,
    ]
    return lines


def _shape(v: LayerOutcome) -> tuple[int, ...]:
    return tuple(v.traced.out.shape) if v.traced is not None else ()


def describe(draw: Any, opt: Any) -> dict[str, Any]:
    """The failure record's case: the arrays' shapes, the constants, the regimes, the δ_out seed."""
    case = draw.case
    return {
        "spec": repr(case),
        "N": int(case.x.shape[0]) if case.x.ndim else 1,
        "shapes": {k: list(a.shape) for k, a in case.arrays.items()},
        "constants": {k: repr(c) for k, c in case.constants.items()},
        "regimes": list(case.regimes),
        "seed": draw.seed,
        "dtype": opt.dtype,
        "device": opt.device,
    }


def add(summary: Any, v: LayerOutcome) -> None:
    """An agreeing layer case counted: its shapes, its regimes, the share of the bound it used."""
    case = v.case.case
    summary.examples += 1
    summary.batch_sizes.add(int(case.x.shape[0]) if case.x.ndim else 1)
    if case.regimes:
        summary.extra.setdefault("regimes", set()).update(case.regimes)
    summary.specs.add(tuple((k, tuple(a.shape)) for k, a in case.arrays.items()))  # distinct shapes
    if v.comparison is not None:
        summary.worst_share = max(summary.worst_share, v.comparison.worst_share)
