"""The one comparison routine: named arrays against a reference, per-entry tolerances, a report
with one line per array (max absolute and relative error, worst index, and the difference divided
by the tolerance, ``diff/tol``).

A non-finite value on either side is never agreement: NaN against a number, NaN against NaN and
inf against inf are all reported, with the first such entry. With a ``band`` (the oracle's
rounding-level band, :func:`torch_ref.numerics.tolerance.rounding_band`), an array beyond its tolerance but
within tolerance + band has status ``precision`` instead of ``MISMATCH``; ``Comparison.ok`` still
demands the tolerance alone.

Where two references are right (torch's bce floor: torch's floored values and the exact ones),
:func:`compare_either` compares the whole result with each, every one under its own tolerance, and
keeps the comparison of the one it follows; nothing between or around them is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..twin.convert import as_numpy64

__all__ = ["Comparison", "Row", "assert_agree", "compare", "compare_either"]


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
        band_share: max over entries of ``|actual - expected| / (allowed + band)`` when a band was
            given, else ``None``.
        nonfinite: the indices where ``actual`` is NaN or infinite and ``expected`` is finite.
        unjudged: how many entries have no finite allowance (an infinite or NaN bound): they are
            compared with nothing, so the row is never ``ok`` (status ``NOT JUDGED`` where every
            other entry is within its bound).
        shares: every entry's ``|actual - expected| / allowed`` (the array's shape; NaN where the
            bound is not finite, inf where a value is not finite), for the HTML report's heat map;
            ``None`` where the shapes differ.
        at_worst: ``(actual, expected, allowed)`` at ``worst``, or ``None``.
        values: ``(actual, expected, allowed)`` as float64 arrays of the array's shape (the HTML
            report reads its heat map, worst entry and tooltips from them), or ``None`` where the
            shapes differ.
    """

    name: str
    max_abs: float
    max_rel: float
    worst: tuple[int, ...]
    share: float
    note: str = ""
    band_share: float | None = None
    nonfinite: tuple[tuple[int, ...], ...] = ()
    unjudged: int = 0
    shares: Any = field(default=None, compare=False, repr=False)
    at_worst: tuple[float, float, float] | None = field(default=None, compare=False, repr=False)
    values: tuple[Any, Any, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.share <= 1.0 and not self.note and not self.unjudged

    @property
    def not_judged(self) -> bool:
        """Every entry with a finite bound within it, and some entries without one."""
        return bool(self.unjudged) and self.share <= 1.0 and not self.note

    @property
    def within_band(self) -> bool:
        """Within the tolerance, or beyond it but within tolerance + band (never with entries unjudged)."""
        return self.ok or (
            not self.note and not self.unjudged and self.band_share is not None and self.band_share <= 1.0
        )

    @property
    def status(self) -> str:
        if self.not_judged:
            return "NOT JUDGED"
        return "ok" if self.ok else "precision" if self.within_band else "MISMATCH"

    def line(self, width: int = 8) -> str:
        """One line of the table; ``width``: the name column's (the table's longest name)."""
        status = self.status
        if self.note:
            return f"{self.name:>{width}}  {status:<8}  {self.note}"
        if self.unjudged:
            return (
                f"{self.name:>{width}}  {status:<9}  {self.max_abs:10.3e}  {self.max_rel:10.3e}  "
                f"{self.worst!s:>10}  {self.share:9.3g}  ({self.unjudged} entries without a finite bound: not judged)"
            )
        return (
            f"{self.name:>{width}}  {status:<9}  {self.max_abs:10.3e}  {self.max_rel:10.3e}  "
            f"{self.worst!s:>10}  {self.share:9.3g}"
        )


@dataclass(frozen=True)
class Comparison:
    """Rows in the order given (layer by layer, input side first)."""

    rows: tuple[Row, ...]
    title: str = ""
    conventions: tuple[str, ...] = ()  # numerical conventions in effect, named in the report
    followed: str = ""  # the label of the right reference the rows are against, of several (compare_either)
    others: tuple[str, ...] = ()  # the labels of the other right references

    @property
    def ok(self) -> bool:
        """Every row within its bound; a comparison of nothing (no rows) is never ok."""
        return bool(self.rows) and all(row.ok for row in self.rows)

    @property
    def not_judged(self) -> bool:
        """Nothing beyond a bound, but something compared with no finite bound, or nothing compared."""
        if not self.rows:
            return True
        return any(row.not_judged for row in self.rows) and all(row.ok or row.not_judged for row in self.rows)

    @property
    def within_band(self) -> bool:
        return all(row.within_band for row in self.rows)

    @property
    def worst_share(self) -> float:
        return max((row.share for row in self.rows), default=0.0)

    def reference_sentence(self) -> str:
        """Which right reference the rows are against, and whether the result follows it."""
        others = ", ".join(self.others)
        if self.ok:
            return f"the result follows {self.followed}, within its own rounding bound (not {others})"
        if self.within_band:
            return f"the result follows {self.followed} only to rounding level, beyond its derived bound"
        return f"the result follows neither: shown against {self.followed}, the closer; it parts from {others} too"

    def first_mismatch(self) -> Row | None:
        """The first failing row in the given order (input side first)."""
        return next((row for row in self.rows if not row.ok), None)

    def __str__(self) -> str:
        width = max([8, *(len(row.name) for row in self.rows)])
        head = f"{'array':>{width}}  {'status':<9}  {'max abs':>10}  {'max rel':>10}  {'worst at':>10}  {'diff/tol':>9}"
        lines = [self.title] if self.title else []
        lines += [head] + [row.line(width) for row in self.rows]
        lines += [f"  convention: {text}" for text in self.conventions]
        if self.followed:
            lines.append(f"  reference: {self.reference_sentence()}")
        return "\n".join(lines)


def _shares(diff: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """Every entry's ``|actual - expected| / allowed``: 0 where they are equal (a bound of 0 included),
    inf where they differ and the bound is 0, NaN where the bound is not finite (compared with nothing)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(diff == 0, 0.0, diff / np.where(np.isfinite(tol), tol, 1.0))
    return np.where(np.isfinite(tol), out, np.nan)


def _row(name: str, actual: Any, expected: Any, allowed: Any, band: Any = None) -> Row:
    a, e = as_numpy64(actual), as_numpy64(expected)
    if a.shape != e.shape:
        return Row(name, np.inf, np.inf, (), np.inf, f"shape {a.shape}, expected {e.shape}")
    if a.size == 0:
        return Row(name, 0.0, 0.0, (), 0.0, band_share=None if band is None else 0.0)
    bad = ~np.isfinite(a) | ~np.isfinite(e)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        where = tuple(tuple(int(i) for i in k) for k in np.argwhere(~np.isfinite(a) & np.isfinite(e)))
        x, y = float(a[idx]), float(e[idx])
        if not np.isfinite(y):
            note = (
                f"non-finite on both sides: {x!r} at {idx}, the reference {y!r}"
                if not np.isfinite(x)
                else f"the reference is {y!r} at {idx} (got {x!r})"
            )
        else:
            note = f"non-finite value {x!r} at {idx} where {y!r} was expected"
        tol = np.broadcast_to(as_numpy64(allowed), e.shape)
        shares = _shares(np.abs(np.where(bad, 0.0, a - e)), tol)
        shares[bad] = np.inf
        return Row(
            name,
            np.inf,
            np.inf,
            idx,
            np.inf,
            note,
            nonfinite=where,
            shares=shares,
            at_worst=(x, y, float(tol[idx])),
            values=(a, e, tol),
        )
    tol = np.broadcast_to(as_numpy64(allowed), e.shape)
    diff = np.abs(a - e)
    # an entry whose bound is not finite is compared with nothing: counted, never a pass
    unbounded = ~np.isfinite(tol)
    shares = _shares(diff, tol)
    share = np.where(unbounded, 0.0, shares)  # what the verdict reads: an unbounded entry uses none of a bound
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a relative error past the float range is inf
        rel = np.where(diff == 0, 0.0, diff / np.abs(e))
        band_share = None
        if band is not None:
            band_share = float(np.max(np.where(diff == 0, 0.0, diff / (tol + np.broadcast_to(band, e.shape)))))
    flat = int(np.argmax(share))
    worst = tuple(int(i) for i in np.unravel_index(flat, e.shape))
    return Row(
        name,
        float(diff.max()),
        float(rel.max()),
        worst,
        float(share.flat[flat]),
        band_share=band_share,
        unjudged=int(unbounded.sum()),
        shares=shares,
        at_worst=(float(a[worst]), float(e[worst]), float(tol[worst])),
        values=(a, e, tol),
    )


def compare(
    names: Sequence[str],
    actual: Iterable[Any],
    expected: Iterable[Any],
    allowed: Iterable[Any],
    *,
    title: str = "",
    conventions: Sequence[str] = (),
    band: Iterable[Any] | None = None,
) -> Comparison:
    """Compare ``actual[k]`` with ``expected[k]`` entrywise: entry i passes when
    ``|actual_i - expected_i| <= allowed_i`` (``allowed`` broadcasts; 0 demands equality), and is
    never satisfied by a non-finite value on either side.

    Arrays may be NumPy or torch; the arithmetic is done in float64 NumPy. ``band``, one array per
    name, marks rows beyond ``allowed`` but within ``allowed + band`` as ``precision``.
    """
    expected = list(expected)
    bands = [None] * len(expected) if band is None else list(band)
    rows = tuple(_row(n, a, e, t, b) for n, a, e, t, b in zip(names, actual, expected, allowed, bands, strict=True))
    return Comparison(rows, title, tuple(conventions))


def compare_either(
    names: Sequence[str],
    actual: Iterable[Any],
    references: Sequence[tuple[str, Sequence[Any], Sequence[Any], Sequence[Any] | None]],
    *,
    title: str = "",
    conventions: Sequence[str] = (),
) -> Comparison:
    """Compare ``actual`` with each of ``references``, ``(label, expected, allowed, band)`` (band may
    be ``None``), as :func:`compare` does, and return the comparison with the first reference the
    whole result agrees with (else the first it is within the band of, else the one it comes closest
    to, by the largest share of the tolerance used). With more than one reference the report names
    the one its rows are against (``followed``); one reference is exactly :func:`compare`.
    """
    actual = list(actual)
    if not references:
        raise ValueError("references must hold at least one (label, expected, allowed, band)")
    found = [
        (label, compare(names, actual, e, a, title=title, conventions=conventions, band=b))
        for label, e, a, b in references
    ]
    if len(found) == 1:
        return found[0][1]
    label, best = next(
        (x for x in found if x[1].ok),
        next((x for x in found if x[1].within_band), min(found, key=lambda x: x[1].worst_share)),
    )
    return replace(best, followed=label, others=tuple(other for other, _ in found if other != label))


def assert_agree(comparison: Comparison) -> None:
    """Raise ``AssertionError`` with the whole report when any row fails."""
    __tracebackhide__ = True
    if not comparison.ok:
        first = comparison.first_mismatch()
        raise AssertionError(f"first mismatch: {first.name if first else '(none)'}\n{comparison}")
