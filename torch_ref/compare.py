"""The one comparison routine: named arrays against a reference, per-entry tolerances, a report
with one line per array (max absolute and relative error, worst index, share of the tolerance used).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from ._convert import as_numpy64

__all__ = ["Comparison", "Row", "assert_agree", "compare"]


@dataclass(frozen=True)
class Row:
    """One array's comparison.

    Attributes:
        name: e.g. ``"W2"``, ``"b1"``, ``"delta3"``.
        max_abs: the largest ``|actual - expected|``.
        max_rel: the largest ``|actual - expected| / |expected|`` (inf where expected is 0 and the
            difference is not).
        worst: the index where the tolerance is most used (or the first non-finite entry).
        share: max over entries of ``|actual - expected| / allowed``; <= 1 passes.
        note: a shape mismatch or non-finite values, else empty.
    """

    name: str
    max_abs: float
    max_rel: float
    worst: tuple[int, ...]
    share: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.share <= 1.0 and not self.note

    def line(self) -> str:
        status = "ok" if self.ok else "MISMATCH"
        if self.note:
            return f"{self.name:>8}  {status:<8}  {self.note}"
        return (f"{self.name:>8}  {status:<8}  {self.max_abs:10.3e}  {self.max_rel:10.3e}  "
                f"{str(self.worst):>10}  {self.share:9.3g}")


@dataclass(frozen=True)
class Comparison:
    """Rows in the order given (layer by layer, input side first)."""

    rows: tuple[Row, ...]
    title: str = ""
    conventions: tuple[str, ...] = ()  # numerical conventions in effect, named in the report

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    @property
    def worst_share(self) -> float:
        return max((row.share for row in self.rows), default=0.0)

    def first_mismatch(self) -> Row | None:
        """The first failing row in the given order (input side first)."""
        return next((row for row in self.rows if not row.ok), None)

    def __str__(self) -> str:
        head = (f"{'array':>8}  {'status':<8}  {'max abs':>10}  {'max rel':>10}  "
                f"{'worst at':>10}  {'tol used':>9}")
        lines = [self.title] if self.title else []
        lines += [head] + [row.line() for row in self.rows]
        lines += [f"  convention: {text}" for text in self.conventions]
        return "\n".join(lines)


def _row(name: str, actual: Any, expected: Any, allowed: Any) -> Row:
    a, e = as_numpy64(actual), as_numpy64(expected)
    if a.shape != e.shape:
        return Row(name, np.inf, np.inf, (), np.inf, f"shape {a.shape}, expected {e.shape}")
    if a.size == 0:
        return Row(name, 0.0, 0.0, (), 0.0)
    tol = np.broadcast_to(as_numpy64(allowed), e.shape)
    diff = np.abs(a - e)
    bad = ~np.isfinite(diff) & ~(np.isnan(a) & np.isnan(e))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        return Row(name, np.inf, np.inf, idx, np.inf, f"non-finite value {a[idx]!r} at {idx}, expected {e[idx]!r}")
    diff = np.where(np.isnan(diff), 0.0, diff)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(diff == 0, 0.0, diff / tol)
        rel = np.where(diff == 0, 0.0, diff / np.abs(e))
    flat = int(np.argmax(share))
    return Row(name, float(diff.max()), float(rel.max()),
               tuple(int(i) for i in np.unravel_index(flat, e.shape)), float(share.flat[flat]))


def compare(
    names: Sequence[str],
    actual: Iterable[Any],
    expected: Iterable[Any],
    allowed: Iterable[Any],
    *,
    title: str = "",
    conventions: Sequence[str] = (),
) -> Comparison:
    """Compare ``actual[k]`` with ``expected[k]`` entrywise: entry i passes when
    ``|actual_i - expected_i| <= allowed_i`` (``allowed`` broadcasts; 0 demands equality).

    Arrays may be NumPy or torch; the arithmetic is done in float64 NumPy.
    """
    rows = tuple(_row(n, a, e, t) for n, a, e, t in zip(names, actual, expected, allowed, strict=True))
    return Comparison(rows, title, tuple(conventions))


def assert_agree(comparison: Comparison) -> None:
    """Raise ``AssertionError`` with the whole report when any row fails."""
    __tracebackhide__ = True
    if not comparison.ok:
        raise AssertionError(f"first mismatch: {comparison.first_mismatch().name}\n{comparison}")
