"""The table of every kind of check: one module of this package per kind, each defining ``KIND``, a
:class:`~torch_ref.engine.kind.Kind` entry, and the public ``check_*`` function that runs it through
the engine (:func:`torch_ref.engine.run.run`). The command line's ``--kind``, the pytest fixture and
:func:`check` read this table; a new kind is a new module here (and its tests).

The kinds' names are read from the package's files without importing them (the command line's help
does not import torch); :func:`entry` imports one.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from ..engine import run as _run
from ..figures.fields import page_fields as _page_fields

__all__ = ["check", "entry", "names"]

_run.PAGE_FIELDS = _page_fields  # the failure record's page fields (torch_ref.engine.run.PAGE_FIELDS)

# the order kinds are listed in (a kind missing here is listed after these, by name)
_ORDER = (
    "gradients", "update", "training", "deltas", "input", "per-example", "hvp", "gnvp", "data-parallel", "layer", "function",
    "network", "network-training", "network-per-example", "network-data-parallel",
)  # fmt: skip


def names() -> tuple[str, ...]:
    """Every kind's name (a module ``per_example`` is the kind ``"per-example"``), in listing order."""
    found = [m.name.replace("_", "-") for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    return tuple(sorted(found, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n)))


def entry(name: str) -> Any:
    """The :class:`~torch_ref.engine.kind.Kind` of ``name``; ``ValueError`` naming the kinds there are."""
    if name not in names():
        raise ValueError(f"kind must be one of {names()}, got {name!r}")
    return importlib.import_module(f".{name.replace('-', '_')}", __name__).KIND


def check(kind: str, fn: Callable[..., Any], **options: Any) -> Any:
    """Run the check of ``kind`` (one of :func:`names`) on ``fn`` with ``options``: the same as the
    kind's own ``check_*`` function, e.g. ``check("hvp", manual.hvp)`` is ``check_hvp(manual.hvp)``."""
    __tracebackhide__ = True
    from ..engine.run import run

    return run(entry(kind), fn, options)
