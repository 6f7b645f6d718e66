r"""Unstable or wrong: a first-order result beyond the rounding-level band where outputs saturate.

:func:`unstable` decides between the verdicts ``unstable`` and ``mismatch`` of
:mod:`torch_ref.first_order.verdict` (its module docstring states both). A result is *unstable* when
every example that fails saturates (:func:`_saturated_examples`: y*(1 - y*) <= sqrt of the dtype's
epsilon), the same derivation agrees with autograd at unsaturated points of the same network
(:func:`_unsaturated_check`), and every failing example shows verified evidence of overflow or lost
digits (:func:`_precision_driven`). Anything else stays a mismatch, with a sentence saying which of
these failed.

The module sees the derivation only through ``run``: its verdict on a case made here (one example,
the other dtype, unsaturated points). :func:`torch_ref.first_order.verdict.classify` passes the
same first pass it runs on the whole case, so this module never imports the verdict module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, Protocol

import numpy as np

from ..numerics.compare import Comparison
from ..strategies import Case, data_for
from ..twin.reference import Reference, reference
from ..twins import loss_twin

__all__ = ["Judged", "Run", "unstable"]


class Judged(Protocol):
    """What this module reads of a verdict (:class:`torch_ref.first_order.verdict.Verdict`)."""

    @property
    def kind(self) -> str: ...

    @property
    def case(self) -> Case: ...

    @property
    def reference(self) -> Reference: ...

    @property
    def comparison(self) -> Comparison | None: ...

    @property
    def checked(self) -> Comparison: ...

    @property
    def passed(self) -> bool: ...


# the derivation's verdict on a case (agree, precision candidate, mismatch, crash, type or shape)
Run = Callable[[Case], Judged]


# ------------------------------------------------------------------------------------------ saturation


def _saturation_level(dtype: Any) -> float:
    """sqrt(eps): an output y* with y*(1 - y*) below it has lost half of the dtype's digits in 1 - y*
    (or in y*(1 - y*)), so a formula that divides by them keeps at most the other half."""
    return float(np.sqrt(np.finfo(dtype).eps))


def _saturated_examples(case: Case, ref: Reference) -> np.ndarray:
    """Per example: whether a probability output saturates (y*(1 - y*) <= sqrt(eps)); the outputs are
    probabilities where the loss's targets are ([0, 1], the simplex, one-hot)."""
    if case.spec.loss.targets == "real":
        return np.zeros(case.X.shape[0], dtype=bool)
    O = ref.O[-1]
    return np.any(O * (1 - O) <= _saturation_level(case.X.dtype), axis=-1)


def _subcase(case: Case, rows: Any, X: np.ndarray | None = None, Y: np.ndarray | None = None) -> Case:
    X = case.X if X is None else X
    Y = case.Y if Y is None else Y
    return replace(case, X=X[rows], Y=Y[rows])


def _scaled(a: np.ndarray, scale: float, dtype: Any) -> np.ndarray:
    return (a * scale).astype(dtype)


def _unsaturated_candidates(case: Case) -> Iterator[tuple[Case, str]]:
    """Points of the same network where the outputs may not saturate: fresh inputs scaled down, then
    the case's inputs with every weight and bias scaled down."""
    dtype = case.X.dtype
    X, Y = data_for(case.spec, 8, np.random.default_rng([case.seed, 1]), grid=False, dtype=dtype, targets=case.targets)
    for scale in (0.25, 1 / 16):
        yield (
            replace(case, X=(X * scale).astype(dtype), Y=Y, grid=False, kink=False),
            f"network (fresh inputs scaled by {scale:g})",
        )
    for scale in (0.25, 1 / 16, 1 / 64, 1 / 256, 1 / 1024):  # I -> 0 as the scale does: no saturation left
        yield (
            replace(case, params=case.params.map(partial(_scaled, scale=scale, dtype=dtype)), grid=False, kink=False),
            f"architecture (the case's inputs, every weight and bias scaled by {scale:g})",
        )


# ------------------------------------------------------------------------------------------ the examples


def _failing(per_example: Sequence[Judged], saturated: np.ndarray) -> tuple[list[int], bool]:
    """The examples the excess is blamed on, and whether the evidence must be taken on the whole case:
    those that fail alone; or, when none does (the excess is the sum of several rows' errors), the
    saturated ones, judged together."""
    N = len(per_example)
    failing = [n for n in range(N) if not per_example[n].passed]
    whole = not failing
    if whole:
        failing = [n for n in range(N) if saturated[n]]
    return failing, whole


def _unsaturated_check(
    case: Case, per_example: Sequence[Judged], saturated: np.ndarray, run: Run
) -> tuple[Judged | None, str]:
    """The derivation's verdict at unsaturated points of the same network, and those points in words:
    the case's examples that pass and do not saturate; else the first candidate
    (:func:`_unsaturated_candidates`) with unsaturated points; ``(None, "")`` when none has any."""
    holding = [n for n in range(len(per_example)) if per_example[n].passed and not saturated[n]]
    if holding:
        where = f"at the unsaturated example(s) {', '.join(map(str, holding))} of this case"
        return run(_subcase(case, holding)), where
    for candidate, text in _unsaturated_candidates(case):
        keep = ~_saturated_examples(candidate, reference(case.spec, candidate.params, candidate.X, candidate.Y))
        if keep.any():
            return run(_subcase(candidate, keep)), f"at {int(keep.sum())} unsaturated point(s) of this {text}"
    return None, ""


# ------------------------------------------------------------------------------------------ the evidence


def _error(v: Judged) -> float:
    """The largest absolute difference from autograd over the verdict's arrays (inf where non-finite)."""
    return max((row.max_abs for row in v.checked.rows), default=0.0)


# a float64 evaluation whose error is precision-driven grows by about eps32 / eps64 = 5e8 in float32;
# a wrong branch gives an error of the size of the value in both. 100x tells them apart with room
_GROWTH = 100.0


def _in_other_dtype(one: Case) -> Case:
    """The case with its parameters and data cast to the other float dtype (float32 <-> float64)."""
    other = np.float64 if np.dtype(one.X.dtype) == np.float32 else np.float32
    with np.errstate(all="ignore"):
        return replace(
            one,
            params=one.params.map(lambda a: np.asarray(a).astype(other)),
            X=one.X.astype(other),
            Y=one.Y.astype(other),
        )


def _precision_driven(run: Run, one: Case, verdict: Judged) -> bool:
    """Whether a failing one-example result shows verified signs of overflow or lost digits (issue 21):
    non-finite values where autograd is finite; or, re-run on the same example in the other float
    dtype (the example's values are exact in float64), a float32 result whose float64 re-run agrees
    with autograd, or a float64 result whose error grows by orders of magnitude (or turns non-finite)
    in float32. A wrong branch gives the same error in both dtypes."""
    if verdict.comparison is not None and any(row.nonfinite for row in verdict.comparison.rows):
        return True
    cast = _in_other_dtype(one)
    rerun = run(cast)
    if rerun.comparison is None:
        return False
    if cast.X.dtype == np.float64:
        return rerun.passed
    return bool(_error(rerun) >= _GROWTH * _error(verdict))


def _unexplained(v: Judged, run: Run, per_example: Sequence[Judged], failing: list[int], whole: bool) -> list[int]:
    """The failing examples without evidence of overflow or lost digits (:func:`_precision_driven`):
    each taken alone, or, for ``whole``, every one of them unless the whole case shows it."""
    case = v.case
    if whole:
        return [] if _precision_driven(run, case, v) else failing
    return [n for n in failing if not _precision_driven(run, _subcase(case, [n]), per_example[n])]


# ------------------------------------------------------------------------------------------ the findings


def _sentence(where: str) -> str:
    """``where`` as the start of a sentence."""
    return f"{where[0].upper()}{where[1:]}"


_NO_UNSATURATED_POINT = (
    "It gives values beyond rounding where outputs saturate, and no unsaturated point of this "
    "architecture was found to tell overflow from wrong math."
)


def _wrong_elsewhere(where: str) -> str:
    return f"{_sentence(where)} it disagrees with autograd too, so this is not only overflow."


def _wrong_branch(unexplained: list[int]) -> str:
    return (
        f"Example(s) {', '.join(map(str, unexplained))} saturate, and there the result is finite and wrong "
        f"by the same amount when re-run in the other float dtype: no overflow and no loss of digits, "
        f"wrong math where the outputs saturate (it agrees elsewhere)."
    )


def _nonfinite(v: Judged) -> list[str]:
    """The entries where the result is NaN or inf, as ``W1[0, 1]``."""
    return [f"{row.name}{list(i)}" for row in v.checked.rows for i in row.nonfinite]


def _overflow_or_digits(v: Judged, failing: list[int]) -> str:
    """What goes wrong (NaN or inf at the entries listed, else lost digits), at which examples, and how
    far the first of them saturates."""
    case, O, nonfinite = v.case, v.reference.O[-1], _nonfinite(v)
    n = failing[0]
    j = int(np.argmin(O[n] * (1 - O[n])))
    name = np.dtype(case.X.dtype).name
    return (
        (
            f"It gives NaN or inf at {', '.join(nonfinite[:4])}{' and more' if len(nonfinite) > 4 else ''} "
            f"({len(nonfinite)} entries) where autograd is finite"
            if nonfinite
            else "It loses its digits (beyond the rounding-level band) where autograd does not"
        )
        + f", from example(s) {', '.join(map(str, failing))}, whose outputs saturate: y*[{n}, {j}] = "
        f"{O[n, j]:.17g}, y*(1 - y*) = {O[n, j] * (1 - O[n, j]):.3g} <= sqrt({name} epsilon) = "
        f"{_saturation_level(case.X.dtype):.3g}, where 1 - y* keeps at most half of {name}'s digits."
    )


def _formula_holds(check: Judged, where: str, overflows: bool) -> str:
    """That the derivation agrees at the unsaturated points, so only its evaluation fails."""
    return (
        f"{_sentence(where)} it {'agrees' if check.kind == 'agree' else 'agrees to rounding level'} "
        f"with autograd: the formula holds there, and its evaluation "
        + ("overflows" if overflows else "loses its digits (the re-run in the other float dtype shows it)")
        + " where the outputs saturate."
    )


def _stable_form(case: Case) -> tuple[str, ...]:
    """The loss's stable form for the case's output activation, where the loss's twin gives one."""
    output, loss = case.spec.activations[-1].name, case.spec.loss
    hint = loss_twin(loss).hints.get(output)
    return () if hint is None else (f"A stable form for {output}+{loss.name}: {hint}.",)


def _unstable_findings(v: Judged, failing: list[int], check: Judged, where: str) -> tuple[str, ...]:
    """The sentences of an ``unstable`` verdict: the evidence, the agreement elsewhere, the stable form."""
    return (
        _overflow_or_digits(v, failing),
        _formula_holds(check, where, bool(_nonfinite(v))),
        *_stable_form(v.case),
    )


# ------------------------------------------------------------------------------------------ deciding


def unstable(v: Judged, run: Run) -> tuple[str, tuple[str, ...]]:
    """For a result beyond the band (``v``, a mismatch so far): ``"unstable"`` or ``"mismatch"``, and the
    findings to add to ``v``'s (see the module docstring). ``run`` gives the same derivation's
    verdict on another case (its examples, the other dtype, unsaturated points)."""
    case = v.case
    saturated = _saturated_examples(case, v.reference)
    if not saturated.any():
        return "mismatch", ()
    per_example = [run(_subcase(case, [n])) for n in range(case.X.shape[0])]
    failing, whole = _failing(per_example, saturated)
    if not all(saturated[n] for n in failing):
        return "mismatch", ()
    check, where = _unsaturated_check(case, per_example, saturated, run)
    if check is None:
        return "mismatch", (_NO_UNSATURATED_POINT,)
    if not check.passed:
        return "mismatch", (_wrong_elsewhere(where),)
    unexplained = _unexplained(v, run, per_example, failing, whole)
    if unexplained:
        return "mismatch", (_wrong_branch(unexplained),)
    return "unstable", _unstable_findings(v, failing, check, where)
