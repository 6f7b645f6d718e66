"""The one-screen report of a failing first-order check (gradients, update, training, deltas, input,
per-example), built from a :class:`~torch_ref.first_order.verdict.Verdict`: every sentence in it is true
of the minimal case it shows."""

from __future__ import annotations

from typing import Any

import manual

from ..engine.naming import label, naming
from ..engine.options import Options
from ..engine.report import ordinal, spec_code
from ..numerics.blame import blame, finite_difference
from .diagnose import diagnose
from .verdict import Verdict

__all__ = ["explain", "failure_lines", "render_failure", "render_precision"]

_TABLES = {manual.Activation: manual.ACTIVATIONS, manual.Loss: manual.LOSSES}

# per callable: how a mismatch is said, and what it should have returned
_PHRASES = {
    "grad_fn": ("disagrees with autograd", "gradients"),
    "step_fn": ("disagrees with autograd (torch.optim.SGD)", "updated weights"),
    "make_trainer": ("parts from the optimizer", "a trainer's weights"),
    "delta_fn": ("gives deltas that disagree with autograd", "a list of deltas"),
    "input_fn": ("gives an input gradient that disagrees with autograd", "an input gradient"),
    "per_example_fn": ("gives per-example gradients that disagree with autograd", "per-example gradients"),
}


def _shape_notes(v: Verdict) -> list[str]:
    notes = []
    for row in v.checked.rows:
        if not row.note.startswith("shape"):
            continue
        expected = dict(v.reference.grads.arrays())[row.name].shape
        got = row.note.split("shape ", 1)[1].split(", expected")[0]
        transposed = got == str(expected[::-1]) and expected[::-1] != expected
        notes.append(
            f"{row.name} has {'the transpose of the slides layout (in, out)' if transposed else 'shape ' + got}; "
            f"expected shape {expected}"
        )
    return notes


def _reproduce(v: Any, fn: Any, names: tuple[str, ...], opt: Options, extra: Any = None) -> list[str]:
    """The lines that rebuild the case and check ``fn`` on it alone. ``extra`` (a training check):
    ``(steps, optimizer_expression, optimizer_setup_lines)``."""
    case, spec = v.case, v.case.spec
    how = naming(fn, v.what, names)
    kind = {"step_fn": ", update=True", "delta_fn": ", kind='deltas'", "input_fn": ", kind='input'"}.get(v.what, "")
    kind = ", kind='per-example'" if v.what == "per_example_fn" else kind
    options = kind + (f", arrays='torch', device={opt.device!r}" if opt.arrays == "torch" else "")
    variables = dict(opt.entry_vars)
    own = [e for e in dict.fromkeys((*spec.activations, spec.loss)) if _TABLES[type(e)].get(e.name) is not e]
    defined = ([how.expression] if how.where == "defined" else []) + [
        variables[id(e)] for e in own if id(e) in variables
    ]
    setup = list(how.setup)
    if extra is not None and extra[1] is not None:
        optimizer_how = extra[1]
        setup += list(optimizer_how.setup)
        if optimizer_how.where == "defined":
            defined.append(optimizer_how.expression)
    unbound = [e for e in own if id(e) not in variables]
    heading = {
        "anywhere": "Reproduce:",
        "defined": "Reproduce:",
        "bind": "Reproduce (bind the first line to the callable you checked):",
    }[how.where]
    if defined:
        heading = (
            f"Reproduce (run these where {', '.join(dict.fromkeys(defined))} "
            f"{'is' if len(set(defined)) == 1 else 'are'} defined, e.g. in place of the check that failed):"
        )
    if extra is not None and extra[1] is not None and extra[1].where == "bind":
        heading = "Reproduce (bind optimizer, in the first lines, to the optimizer factory you checked):"
    if unbound:
        entries = ", ".join(f"{e.name} to your manual.{type(e).__name__} {e.name!r}" for e in unbound)
        heading = (
            heading[:-2] + f"; and first bind {entries}):"
            if heading.endswith("):")
            else f"Reproduce (first bind {entries}):"
        )
    lines = [heading, "    import numpy as np", "    import manual, torch_ref"]
    lines += [f"    {line}" for line in dict.fromkeys(setup)]
    lines += [
        f"    spec = {spec_code(spec, variables)}",
        f"    case = {case.rebuild(opt.dtype)}",
    ]
    if extra is None:
        lines.append(f"    print(torch_ref.check_case({how.expression}, case{options}))")
    else:
        optimizer_code = "" if extra[1] is None else f", optimizer={extra[1].expression}"
        device = f", arrays='torch', device={opt.device!r}" if opt.arrays == "torch" else ""
        lines.append(
            f"    print(torch_ref.check_training_case({how.expression}, case{optimizer_code}, steps={extra[0]}{device}))"
        )
    return lines


def explain(v: Verdict) -> list[str]:
    """For a mismatch: the layer where it parts, the diagnosis and the finite-difference blame; for
    a shape error, which arrays and how. Every sentence is checked on the verdict's case."""
    if v.what not in ("grad_fn", "step_fn"):
        return []  # the other quantities carry their layer and diagnosis in their findings
    if v.kind == "shape":
        return _shape_notes(v)
    if v.kind != "mismatch" or v.comparison is None:
        return []
    spec, ref = v.case.spec, v.reference
    lines = []
    # the rows beyond the band; where every row is within it (finite differences separated them),
    # the rows beyond the derived bound
    failing = [row for row in v.checked.rows if not row.within_band] or [row for row in v.checked.rows if not row.ok]
    layers = sorted({int(row.name[1:]) for row in failing}, reverse=True)
    if layers:
        l = layers[0]
        k = spec.depth - l + 1
        lines.append(
            f"Parts from autograd at layer {l} of {spec.depth} "
            f"({'the output layer' if k == 1 else f'the {ordinal(k)} counting from the output'})"
        )
    patterns = diagnose(v)
    lines.append("Diagnosis: " + ("; ".join(patterns) if patterns else "no known pattern fits"))
    row = failing[0] if failing else None
    if row is not None and row.worst:
        derived = float(dict(v.arrays[0].arrays())[row.name][row.worst])
        reference = float(dict(ref.grads.arrays())[row.name][row.worst])
        estimate = finite_difference(spec, ref.params, ref.X, ref.Y, row.name, row.worst, "float64")
        lines.append(
            "Blame: " + blame(estimate, derived, reference, kink_possible=any(a.kinks for a in spec.activations))
        )
    return lines


def render_failure(v: Any, fn: Any, names: tuple[str, ...], opt: Options, extra: Any = None) -> str:
    """The report of a failing verdict (mismatch, unstable, crash, type, shape, or precision when strict)."""
    return "\n".join(failure_lines(v, fn, names, opt, extra)[0])


def failure_lines(
    v: Any, fn: Any, names: tuple[str, ...], opt: Options, extra: Any = None
) -> tuple[list[str], list[str]]:
    """The report's lines, and of them the Reproduce lines (the engine adds the first failing case
    found before shrinking, :func:`torch_ref.engine.report.before_lines`)."""
    case, spec = v.case, v.case.spec
    mismatch, returned = _PHRASES[v.what]
    if v.what == "make_trainer":
        mismatch = f"parts from {v.rule.describe()} on the torch network"
    head = {
        "mismatch": mismatch,
        "unstable": "is unstable: it gives values autograd does not where the outputs saturate",
        "precision": "agrees with autograd only to rounding level, and strict=True asks for the derived bound",
        "crash": "raised an exception",
        "type": f"returned something that is not {returned}",
        "shape": "returned arrays of the wrong shape",
    }[v.kind]
    lines = [
        f"{v.what} {label(fn, names)} {head}.",
        f"Minimal case: {spec}, N={case.X.shape[0]}, dtype={opt.dtype}, device={opt.device}"
        + (f", lr={case.lr}" if v.what in ("step_fn", "make_trainer") else "")
        + (f", {v.steps} steps" if v.what == "make_trainer" else "")
        + (f", targets={case.targets}" if case.targets != "soft" else ""),
    ]
    if v.kind in ("crash", "type") or v.comparison is None:
        lines.append(f"  {v.detail}")
    else:
        lines.append(str(v.comparison))
        if v.what == "make_trainer" and v.kind == "mismatch":
            lines.append(v.parting())
        lines += list(v.findings)
        lines += explain(v) if isinstance(v, Verdict) else []
    reproduce = _reproduce(v, fn, names, opt, extra)
    return lines + reproduce, reproduce


def render_precision(v: Verdict, fn: Any, names: tuple[str, ...], opt: Options, count: int, total: int) -> str:
    """The warning of a passing check that met precision cases."""
    lines = [
        f"{v.what} {label(fn, names)} passes, but on {count} of {total} cases it agrees with autograd only to "
        f"rounding level, beyond the derived bound (strict=True makes that a failure). The worst:",
        f"Case: {v.case.spec}, N={v.case.X.shape[0]}, dtype={opt.dtype}, device={opt.device}",
        str(v.comparison),
    ]
    return "\n".join(lines + list(v.findings) + _reproduce(v, fn, names, opt))
