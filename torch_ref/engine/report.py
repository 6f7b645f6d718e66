"""The parts of a failing check's report that every kind shares: the callable's import and name,
a spec as code, the not-judged report. Each kind's entry writes the rest (:mod:`torch_ref.kinds`)."""

from __future__ import annotations

from typing import Any

import manual
from manual import Spec

from .record import before_shrinking

__all__ = ["before_lines", "entry_code", "fn_import", "not_judged_lines", "ordinal", "spec_code"]


def entry_code(entry: Any, table: Any, variables: dict[int, str] | None = None) -> str:
    """A built-in by its name; a user's own entry by the caller's variable for it, else by its name
    used as a variable (the object to pass)."""
    if table.get(entry.name) is entry:
        return repr(entry.name)
    return (variables or {}).get(id(entry), entry.name)


_TABLES = {manual.Activation: manual.ACTIVATIONS, manual.Loss: manual.LOSSES}


def spec_code(spec: Spec, variables: dict[int, str] | None = None) -> str:
    acts = ", ".join(entry_code(a, manual.ACTIVATIONS, variables) for a in spec.activations)
    return (
        f"manual.Spec({spec.sizes}, ({acts}{',' if spec.depth == 1 else ''}), "
        f"{entry_code(spec.loss, manual.LOSSES, variables)}, bias={spec.bias}, reduction={spec.reduction!r})"
    )


def ordinal(k: int) -> str:
    return f"{k}{'st' if k == 1 else 'nd' if k == 2 else 'rd' if k == 3 else 'th'}"


def not_judged_lines(who: str, summary: Any, advice: str) -> str:
    """The not-judged report of any check: ``who`` (the callable, named), the counts and reasons of
    ``summary`` (``examples``, ``not_judged``, ``not_judged_reasons``) and what to do."""
    total = summary.examples + summary.not_judged
    head = (
        f"{who} was not judged: none of the {total} drawn cases could be judged"
        if summary.examples == 0
        else f"{who} was not judged on most cases: {summary.not_judged} of {total} drawn cases were not "
        f"judged, and the {summary.examples} judged case{'s all agree' if summary.examples != 1 else ' agrees'}"
    )
    lines = [head + "; a check passes only when most of its cases are judged and every judged case agrees."]
    lines += [f"  {count} of {total}: {reason}" for reason, count in summary.not_judged_reasons.items()]
    lines.append(advice)
    return "\n".join(lines)


def fn_import(fn: Any) -> tuple[list[str], str]:
    """The import line that brings ``fn`` into a Reproduce script (none for a function of the
    running script, a lambda or a local function) and the name it goes by there."""
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", repr(fn))
    if module and module != "__main__" and "<" not in name:
        return [f"from {module} import {name.split('.')[0]}"], name
    return [], name


def before_lines(v: Any, before: Any, variables: dict[int, str]) -> list[str]:
    """The first failing case found, beside the minimal one ``v``: shrinking keeps a case that fails,
    not the one where the mistake is largest, and a minimal case in a near-linear regime may part by
    1e-4 where the first case found parted by order 1. Nothing where the two are the same case or
    the first has no comparison (a crash)."""
    seen = before_shrinking(before)
    if seen is None or repr(before.case) == repr(v.case):
        return []
    name, rel = seen
    here = before_shrinking(v)
    minimal = f"; on the minimal case above it is {here[1]:.3g}" if here is not None else ""
    spec = getattr(before.case, "spec", None)
    if spec is None:  # a layer's case: its shapes and constants (its values can be hundreds of numbers)
        return [
            f"Before shrinking: the first failing case found parted by a largest relative difference of {rel:.3g} "
            f"(at {name}){minimal}; it is {before.case!r}",
        ]
    return [
        f"Before shrinking: the first failing case found parted by a largest relative difference of {rel:.3g} "
        f"(at {name}){minimal}; it is",
        f"  spec = {spec_code(spec, variables)}",
        f"  case = {before.case.rebuild()}",
    ]
