"""What a check raises and warns: the failure, the run that judged too little, the precision warning."""

from __future__ import annotations

from typing import Any

__all__ = ["DerivationMismatch", "NotJudged", "PrecisionWarning"]


class DerivationMismatch(AssertionError):
    """A derivation disagrees with its reference (or is unstable, or crashed); the message is the
    report, :attr:`record` the same as JSON-ready values (:func:`torch_ref.engine.record.failure_record`),
    with the same fields for every kind of check."""

    def __init__(self, report: str, record: dict[str, Any] | None = None) -> None:
        super().__init__(report)
        self.record = record if record is not None else {"passed": False, "report": report}

    def to_html(self, path: Any = None, title: str | None = None) -> str:
        """The failure as one standalone HTML page (:mod:`torch_ref.pages`): the minimal case and its
        network with the parting layer marked, a heat map of ``|difference| / tolerance`` per array,
        the worst entry's values, the diagnosis with its formula, the Reproduce lines. Written to
        ``path`` too when given; returns the HTML."""
        from ..pages import to_html

        text = to_html(self.record, title)
        if path is not None:
            from pathlib import Path

            Path(path).write_text(text, encoding="utf-8")
        return text


class NotJudged(DerivationMismatch):
    """A run that judged too little to pass: no case judged, or most drawn cases not judged.
    Not a fault found in the callable; the message says how many and why."""


class PrecisionWarning(UserWarning):
    """A passing check met cases where the derivation agrees with its reference only to rounding level."""


# the names users see in tracebacks and reports: the package's, where they are re-exported
for _cls in (DerivationMismatch, NotJudged, PrecisionWarning):
    _cls.__module__ = "torch_ref"
