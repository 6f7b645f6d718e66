"""How a report's Reproduce lines can name the derivation that was checked, so that they run as
printed, in this order: an importable function by its import; a lambda without closure variables by
its own source; a callable object by a ``repr`` that rebuilds it; a name the caller bound it to;
else a line that asks the reader to bind it."""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from types import FrameType
from typing import Any

__all__ = ["caller_names", "reference_lines"]


def caller_names(fn: Any) -> tuple[str, ...]:
    """The names bound to ``fn`` in the first frame outside torch_ref (locals first, then globals)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith("torch_ref"):
        frame = frame.f_back
    if frame is None:
        return ()
    found = [k for k, v in frame.f_locals.items() if v is fn and k.isidentifier()]
    found += [k for k, v in frame.f_globals.items() if v is fn and k.isidentifier() and k not in found]
    return tuple(found)


def _importable(fn: Any) -> tuple[list[str], str] | None:
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        return None
    target: Any = sys.modules.get(module)
    for part in qualname.split("."):
        target = getattr(target, part, None)
    if target is not fn:
        return None
    if module == "__main__":
        return [], qualname
    return [f"from {module} import {qualname.split('.')[0]}"], qualname


def _lambda_source(fn: Any) -> str | None:
    """The source of a lambda, cut from its file by the lambda's own position."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    try:
        lines, start = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return None
    source = textwrap.dedent("".join(lines))
    try:
        tree = ast.parse(source)
    except SyntaxError:
        try:
            tree = ast.parse("(" + source.strip().rstrip(",") + ")")
            source = "(" + source.strip().rstrip(",") + ")"
        except SyntaxError:
            return None
    lambdas = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda)]
    positions = [p for p in getattr(code, "co_positions", lambda: [])() if p[0] is not None]
    for node in lambdas:
        if node.lineno + start - 1 != code.co_firstlineno:
            continue
        if len(lambdas) > 1 and positions and not any(node.col_offset <= p[2] and p[3] <= node.end_col_offset
                                                      for p in positions if p[0] == code.co_firstlineno):
            continue
        segment = ast.get_source_segment(source, node)
        if segment:
            return " ".join(segment.split())
    return None


def _rebuilt_by_repr(fn: Any) -> tuple[list[str], str] | None:
    cls = type(fn)
    module = sys.modules.get(cls.__module__)
    if module is None or getattr(module, cls.__qualname__.split(".")[0], None) is None:
        return None
    text = repr(fn)
    try:
        rebuilt = eval(text, dict(vars(module)))  # noqa: S307 - the object's own repr, evaluated in its module
    except Exception:  # noqa: BLE001 - any failure means the repr does not rebuild it
        return None
    if type(rebuilt) is not cls or (cls.__eq__ is not object.__eq__ and rebuilt != fn):
        return None
    setup = [] if cls.__module__ == "__main__" else [f"from {cls.__module__} import {cls.__qualname__.split('.')[0]}"]
    return setup, text


def reference_lines(fn: Any, what: str, names: tuple[str, ...]) -> tuple[list[str], str, bool]:
    """``(setup lines, expression, runs)``: how the Reproduce lines name ``fn``; ``runs`` is False when
    no way was found and the lines ask the reader to bind the name."""
    found = _importable(fn)
    if found is not None:
        return found[0], found[1], True
    if getattr(fn, "__name__", None) == "<lambda>" and not fn.__code__.co_freevars:
        source = _lambda_source(fn)
        if source is not None:
            return [f"{what} = {source}"], what, True
    if not inspect.isfunction(fn) and not inspect.ismethod(fn):
        rebuilt = _rebuilt_by_repr(fn)
        if rebuilt is not None:
            return rebuilt[0] + [f"{what} = {rebuilt[1]}"], what, True
    if names:
        return [], names[0], True
    return [f"{what} = ...  # the callable that was checked, {fn!r}: bind it here"], what, False
