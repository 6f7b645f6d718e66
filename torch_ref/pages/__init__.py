"""The HTML report: one standalone page per check, or one for many (:mod:`.html`), written from the
checks' records; :func:`to_html` and :func:`write_html` are what ``DerivationMismatch.to_html``,
``Summary.to_html``, the command line's ``--html``, the pytest plugin's ``--oracle-html`` and the
campaigns call."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .html import page, run_page

__all__ = ["to_html", "write_html"]


def to_html(record: dict[str, Any] | Sequence[dict[str, Any]], title: str | None = None) -> str:
    """One record's page, or many records' page (failures first), as one standalone HTML string."""
    if isinstance(record, dict):
        return page(record, title)
    return run_page(list(record), title or "Derivation checks")


def write_html(records: dict[str, Any] | Sequence[dict[str, Any]], path: str | Path, title: str | None = None) -> Path:
    """Write :func:`to_html` of ``records`` to ``path`` (UTF-8); return the path."""
    out = Path(path)
    out.write_text(to_html(records, title), encoding="utf-8")
    return out
