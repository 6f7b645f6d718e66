"""What every kind's outcome of one case offers the engine beside its fields: its comparison, or a
clear error where it has none, and whether it passes (:class:`~torch_ref.engine.kind.Kind`)."""

from __future__ import annotations

from typing import Any

__all__ = ["Judged"]


class Judged:
    """A base for an outcome with ``kind`` (the verdict) and ``comparison``; ``passed`` is the verdict
    "agree" (a kind with another passing verdict, first order's "precision", overrides it)."""

    kind: str
    comparison: Any

    @property
    def passed(self) -> bool:
        return self.kind == "agree"

    @property
    def checked(self) -> Any:
        """The comparison; ``ValueError`` for a verdict without one (crash, type)."""
        if self.comparison is None:
            raise ValueError(f"a {self.kind!r} verdict has no comparison")
        return self.comparison
