"""How a report's Reproduce lines name the derivation that was checked, and where they run.

In this order: a function importable from a module is imported (the lines run anywhere); a lambda
whose only global names are the Reproduce lines' own imports is written out, and a callable object
whose ``repr`` rebuilds it is rebuilt (anywhere); a function of the user's script (``__main__``) or
a name the caller bound it to is called by that name, and the heading says to run the lines where
that name is defined; else the first line asks the reader to bind it.
"""

from __future__ import annotations

import ast
import builtins
import dis
import inspect
import sys
import textwrap
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

__all__ = ["Naming", "caller_names", "label", "naming"]

# what the Reproduce lines import, so a lambda that uses only these runs there
_IMPORTED = {"np", "manual", "torch_ref", "torch"}


@dataclass(frozen=True)
class Naming:
    """``setup`` lines, the ``expression`` that names the callable, and ``where`` the lines run:
    ``"anywhere"``, ``"defined"`` (where ``expression`` is defined) or ``"bind"`` (unknown)."""

    setup: tuple[str, ...]
    expression: str
    where: str


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


def label(fn: Any, names: tuple[str, ...]) -> str:
    """How a report names the callable: its own name, else the caller's name for it, else its kind."""
    name = getattr(fn, "__name__", None)
    if isinstance(name, str) and name.isidentifier():
        return repr(name)
    if names:
        return repr(names[0])
    return "(a lambda)" if name == "<lambda>" else f"(a {type(fn).__name__} object)"


def _importable(fn: Any) -> tuple[str, str] | None:
    """``(module, qualname)`` when ``fn`` is reachable as ``module.qualname``."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        return None
    target: Any = sys.modules.get(module)
    for part in qualname.split("."):
        target = getattr(target, part, None)
    return (module, qualname) if target is fn else None


def _global_names(code: CodeType) -> set[str]:
    """The global names a code object (and the lambdas inside it) reads."""
    names = {ins.argval for ins in dis.get_instructions(code) if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _global_names(const)
    return names


def _lambda_source(fn: Any) -> str | None:
    """The source of a lambda, cut from its file by the lambda's own position."""
    code = fn.__code__
    try:
        lines, start = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return None
    raw = "".join(lines)
    source = textwrap.dedent(raw)
    indent = len(raw) - len(raw.lstrip())
    # the lines as they stand, as one parenthesised expression, or as a call's arguments (a lambda
    # inside pytest.param(..., id=...)); shift maps the parsed text's columns back to the file's
    shift = 0
    for prefix, text in (
        ("", source),
        ("(", "(" + source.strip().rstrip(",") + ")"),
        ("f(", "f(" + source.strip().rstrip(",") + ")"),
    ):
        try:
            tree = ast.parse(text)
            source, shift = text, len(prefix) - indent
            break
        except SyntaxError:
            tree = None
    if tree is None:
        return None
    lambdas = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda) and n.lineno + start - 1 == code.co_firstlineno]
    positions = [p for p in code.co_positions() if p[0] == code.co_firstlineno and p[2] is not None]
    for node in lambdas:
        if (
            len(lambdas) > 1
            and positions
            and not any(
                node.col_offset - shift <= (p[2] or 0) and (p[3] or 0) <= (node.end_col_offset or 0) - shift
                for p in positions
            )
        ):
            continue
        segment = ast.get_source_segment(source, node)
        if segment:
            return " ".join(segment.split())
    return None


def _rebuilt_by_repr(fn: Any) -> tuple[tuple[str, ...], str] | None:
    cls = type(fn)
    module = sys.modules.get(cls.__module__)
    top = cls.__qualname__.split(".")[0]
    if module is None or getattr(module, top, None) is None or cls.__module__ == "__main__":
        return None
    text = repr(fn)
    try:
        rebuilt = eval(text, dict(vars(module)))
    except Exception:
        return None
    if type(rebuilt) is not cls or (cls.__eq__ is not object.__eq__ and rebuilt != fn):
        return None
    return (f"from {cls.__module__} import {top}",), text


def _partial(fn: Any) -> Naming | None:
    """A ``functools.partial`` of an importable callable with literal arguments, as that call."""
    import functools

    if not isinstance(fn, functools.partial):
        return None
    found = _importable(fn.func)
    literal = (bool, int, float, str, tuple, type(None))
    if (
        found is None
        or found[0] == "__main__"
        or not all(isinstance(v, literal) for v in (*fn.args, *fn.keywords.values()))
    ):
        return None
    args = [repr(a) for a in fn.args] + [f"{k}={v!r}" for k, v in fn.keywords.items()]
    code = f"functools.partial({found[1]}{''.join(', ' + a for a in args)})"
    return Naming(("import functools", *_import_lines(found[0], found[1].split(".")[0])), code, "anywhere")


# modules the command line loaded from a file outside the current folder: name -> that file's folder
FILE_MODULES: dict[str, str] = {}


def _import_lines(module: str, name: str) -> tuple[str, ...]:
    folder = FILE_MODULES.get(module.split(".")[0])
    path = ("import sys", f"sys.path.insert(0, {folder!r})") if folder is not None else ()
    return (*path, f"from {module} import {name}")


def naming(fn: Any, what: str, names: tuple[str, ...]) -> Naming:
    """How the Reproduce lines name ``fn`` (see the module docstring)."""
    partial = _partial(fn)
    if partial is not None:
        return partial
    found = _importable(fn)
    if found is not None and found[0] != "__main__":
        return Naming(_import_lines(found[0], found[1].split(".")[0]), found[1], "anywhere")
    if getattr(fn, "__name__", None) == "<lambda>" and not fn.__code__.co_freevars:
        used = _global_names(fn.__code__) - set(dir(builtins))
        source = _lambda_source(fn) if used <= _IMPORTED else None
        if source is not None:
            setup = ("import torch",) if "torch" in used else ()
            return Naming((*setup, f"{what} = {source}"), what, "anywhere")
    if not inspect.isfunction(fn) and not inspect.ismethod(fn):
        rebuilt = _rebuilt_by_repr(fn)
        if rebuilt is not None:
            return Naming(rebuilt[0] + (f"{what} = {rebuilt[1]}",), what, "anywhere")
    if found is not None:  # a function of the user's script
        return Naming((), found[1], "defined")
    if names:
        return Naming((), names[0], "defined")
    return Naming((f"{what} = ...  # the callable that was checked, {fn!r}: bind it here",), what, "bind")


def optimizer_naming(optimizer: Any, names: tuple[str, ...]) -> Naming:
    """How the Reproduce lines name an optimizer factory: a ``torch.optim`` class by its path, a
    ``functools.partial`` of one with literal arguments as that call, else as :func:`naming` does."""
    import functools
    import importlib

    def path(cls: Any) -> str | None:
        if not isinstance(cls, type) or not cls.__module__.startswith("torch.optim"):
            return None
        public = f"torch.optim.{cls.__name__}"
        return public if getattr(importlib.import_module("torch.optim"), cls.__name__, None) is cls else None

    direct = path(optimizer)
    if direct is not None:
        return Naming(("import torch",), direct, "anywhere")
    if isinstance(optimizer, functools.partial) and path(optimizer.func) is not None:
        literal = (bool, int, float, str, tuple, type(None))
        values = [*optimizer.args, *optimizer.keywords.values()]
        if all(isinstance(v, literal) for v in values):
            args = [repr(a) for a in optimizer.args] + [f"{k}={v!r}" for k, v in optimizer.keywords.items()]
            code = f"functools.partial({path(optimizer.func)}{''.join(', ' + a for a in args)})"
            return Naming(("import functools", "import torch"), code, "anywhere")
    return naming(optimizer, "optimizer", names)
