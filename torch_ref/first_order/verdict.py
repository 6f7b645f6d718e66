r"""One derivation on one case, and what can truly be said of it.

:func:`check_case` hands the derivation private copies of the case (so one that writes into its
arguments cannot move the reference), runs the float64 reference before the call, and classifies:

- ``agree``: every entry within the derived bound (:mod:`torch_ref.numerics.tolerance`).
- ``precision``: beyond the derived bound but within the rounding-level band
  (:func:`torch_ref.numerics.tolerance.rounding_band`), and central finite differences (in the coarser of
  the check's and the result's dtype) cannot tell the derivation from autograd at the worst entry of
  each such array: no sign of wrong math; the evaluation loses more digits than the bound allows.
- ``unstable``: non-finite values, or differences beyond the band, only at examples whose sigmoid or
  softmax outputs saturate (y*(1 - y*) <= sqrt of the dtype's epsilon, where 1 - y* has lost half its
  digits), while the same derivation agrees
  with autograd at unsaturated points of the same network (the case's other examples, or fresh
  inputs scaled down when every example saturates), and every failing example shows verified
  evidence of overflow or lost digits (:func:`_precision_driven`: non-finite values where autograd
  is finite, or a re-run in the other float dtype whose error is precision's, issue 21). The
  formula holds; its evaluation overflows or loses its digits.
- ``mismatch``: anything else beyond the band (wrong math), including non-finite values that the
  saturation does not explain, and finite wrong values at saturated examples that the other dtype
  reproduces (a wrong "stable branch").
- ``not judged``: some entries have no finite bound (the reference's own bound overflowed) and every
  other entry is within its bound: compared with nothing there, so never a pass; the oracle counts
  such cases and fails a run where most are not judged (:class:`torch_ref.engine.oracle.NotJudged`).
- ``crash``, ``type``, ``shape``: the derivation raised, returned something that is not gradients,
  or arrays of the wrong shape.

``agree`` and ``precision`` pass. For an update rule the comparison is on the updated weights
against one ``torch.optim.SGD`` step, and the band and the finite differences are taken on the
gradient it implies, ``(W - W_new) / lr``.
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from manual import Params

from ..engine.result import normalise, result_dtypes
from ..numerics.blame import Estimate, finite_difference
from ..numerics.compare import Comparison, compare_either
from ..numerics.tolerance import RTOL, Tolerance, references, rounding_band, tolerance
from ..strategies import Case, data_for
from ..twin.reference import Reference, reference
from ..twins import loss_twin

__all__ = ["KINDS", "Verdict", "classify", "hand_out", "hand_out_params", "prepare"]

KINDS = ("agree", "precision", "unstable", "mismatch", "not judged", "crash", "type", "shape")


class Outcome:
    """What every verdict (one case of a check) offers: its comparison and its dtype."""

    kind: str
    case: Case
    comparison: Comparison | None

    @property
    def checked(self) -> Comparison:
        """The comparison; ``ValueError`` for a verdict without one (crash, type)."""
        if self.comparison is None:
            raise ValueError(f"a {self.kind!r} verdict has no comparison")
        return self.comparison

    @property
    def dtype(self) -> str:
        return np.dtype(self.case.X.dtype).name


@dataclass(frozen=True)
class Verdict(Outcome):
    """What one derivation does on one case.

    Attributes:
        kind: one of :data:`KINDS`.
        what: ``"grad_fn"`` or ``"step_fn"``.
        case: the case (its arrays were never handed to the derivation).
        reference: the float64 reference pass of the case.
        comparison: the derivation's result against autograd (``None`` for crash/type).
        actual, allowed, band: in gradient terms (for an update, the implied gradient), float64.
        findings: sentences verified on this case that explain the kind.
        detail: the crash or type problem.
        result_dtype: the dtype of the derivation's arrays (e.g. ``"float32"``).
    """

    kind: str
    what: str
    case: Case
    reference: Reference
    comparison: Comparison | None = None
    actual: Params | None = None
    allowed: Params | None = None
    band: Params | None = None
    findings: tuple[str, ...] = ()
    detail: str = ""
    result_dtype: str | None = None
    explained: tuple[str, ...] = ()  # the report's explanation (torch_ref.first_order.report.explain), where given

    @property
    def arrays(self) -> tuple[Params, Params, Params]:
        """``(actual, allowed, band)`` in gradient terms; ``ValueError`` for crash and type."""
        if self.actual is None or self.allowed is None or self.band is None:
            raise ValueError(f"a {self.kind!r} verdict has no result arrays")
        return self.actual, self.allowed, self.band

    @property
    def passed(self) -> bool:
        return self.kind in ("agree", "precision")

    def __str__(self) -> str:
        head = {
            "agree": "agrees with autograd within the derived bound",
            "precision": "agrees with autograd to rounding level (precision), beyond the derived bound",
            "unstable": "is unstable: it overflows or loses its digits where the outputs saturate",
            "mismatch": "disagrees with autograd",
            "not judged": "was not judged: some entries have no finite bound, and every other entry is within its own",
            "crash": "raised an exception",
            "type": "returned something that is not " + ("updated weights" if self.what == "step_fn" else "gradients"),
            "shape": "returned arrays of the wrong shape",
        }
        lines = [f"{self.what} {head[self.kind]} on {self.case!r}"]
        if self.detail:
            lines.append(f"  {self.detail}")
        if self.comparison is not None:
            lines.append(str(self.comparison))
        lines += self.findings
        lines += self.explained
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------ handing out


def hand_out(case: Case, arrays: str, device: str) -> tuple[Params, Any, Any]:
    """Fresh copies of the case's arrays for the derivation: NumPy, or torch tensors on ``device``."""
    return hand_out_params(case.params, arrays, device), _copy(case.X, arrays, device), _copy(case.Y, arrays, device)


def hand_out_params(p: Params, arrays: str, device: str) -> Params:
    """Fresh copies of ``p``'s arrays (a direction V, the parameters): NumPy, or torch tensors on ``device``."""
    return p.map(lambda a: _copy(a, arrays, device))


def _copy(a: np.ndarray, arrays: str, device: str) -> Any:
    if arrays == "numpy":
        return np.array(a, copy=True)
    import torch

    return torch.from_numpy(np.array(a, copy=True)).to(device)


def _crash(exc: BaseException, what: str, arrays: str, device: str) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno} ({frames[-1].name})" if frames else ""
    text = f"{what} raised {type(exc).__name__}: {exc}{where}"
    if arrays == "torch":
        text += (
            f"\n  ({what} was given torch tensors on device {device!r}; a NumPy derivation needs "
            f"arrays='numpy' on the CPU)"
        )
    return text


# ------------------------------------------------------------------------------------------ classifying


def _names(p: Params) -> list[str]:
    return [n for n, _ in p.arrays()]


def _flat(p: Params) -> list[np.ndarray]:
    return [a for _, a in p.arrays()]


def _implied(ref: Reference, updated: Params, lr: float) -> Params:
    """(W - W_new) / lr: the gradient an update rule used."""
    p = ref.params
    return Params(
        [(w - u) / lr for w, u in zip(p.weights, updated.weights)],
        None
        if p.biases is None or updated.biases is None
        else [(w - u) / lr for w, u in zip(p.biases, updated.biases)],
    )


def _call(fn: Callable, case: Case, update: bool, arrays: str, device: str, what: str):
    params, X, Y = hand_out(case, arrays, device)
    try:
        result = fn(case.spec, params, X, Y, case.lr) if update else fn(case.spec, params, X, Y)
    except (Exception, SystemExit) as exc:  # sys.exit in the callable is its crash, not the check's end
        return None, _crash(exc, what, arrays, device)
    return result, ""


def _band(case: Case, g: Params, t: Params) -> Params:
    """The rounding-level band around the gradients ``g`` with allowance ``t`` (see
    :func:`torch_ref.numerics.tolerance.rounding_band`)."""

    def band(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return rounding_band(a, case.X.dtype, b)

    return Params(
        [band(a, b) for a, b in zip(g.weights, t.weights)],
        None if g.biases is None or t.biases is None else [band(a, b) for a, b in zip(g.biases, t.biases)],
    )


def _compare(
    case: Case, ref: Reference, tol: Tolerance, actual: Params, update: bool, what: str
) -> tuple[Comparison, Params, Params]:
    """The result against every right reference (:func:`torch_ref.numerics.tolerance.references`: torch's, and
    the exact one where torch's bce floor is in effect), each with its own bound and band; the
    comparison with the one it follows, and that reference's gradients and their allowance."""
    quantity = "update" if update else "gradients"
    names = _names(ref.params)
    grads = {"torch's": (ref.grads, tol.grads), "exact": (ref.exact_grads, tol.for_exact.grads)}
    candidates, chosen = [], {}
    for (label, expected, allowed), (g, t) in zip(references(ref, tol, quantity), grads.values()):
        band = _flat(_band(case, g, t))
        if update:
            band = [case.lr * b for b in band]  # W - lr g: the band of g, times lr
        candidates.append((label, expected, allowed, band))
        chosen[label] = (g, t)
    title = (
        f"updated weights of {what} against autograd (torch.optim.SGD)"
        if update
        else f"gradients of {what} against autograd"
    )
    comparison = compare_either(names, _flat(actual), candidates, title=title, conventions=tol.conventions)
    g, t = chosen[comparison.followed or candidates[0][0]]
    return comparison, g, t


def prepare(case: Case, update: bool = False) -> tuple[Reference, Tolerance]:
    """The reference pass and the tolerance of a case (shared by every derivation checked on it)."""
    ref = reference(case.spec, case.params, case.X, case.Y, lr=case.lr if update else None)
    tol = tolerance(
        case.spec, case.params, case.X, case.Y, dtype=case.X.dtype, lr=case.lr if update else None, reference_pass=ref
    )
    return ref, tol


def _basic(
    fn: Callable,
    case: Case,
    update: bool,
    arrays: str,
    device: str,
    prepared: tuple[Reference, Tolerance] | None = None,
) -> Verdict:
    """Agree, precision candidate (left as "mismatch" here when beyond band), crash, type or shape."""
    what = "step_fn" if update else "grad_fn"
    ref, tol = prepared if prepared is not None else prepare(case, update)
    base = Verdict("agree", what, case, ref)
    result, crashed = _call(fn, case, update, arrays, device, what)
    if crashed:
        return replace(base, kind="crash", detail=crashed)
    actual, problem, raw = normalise(case.spec, result, what)
    if actual is None or raw is None:
        return replace(base, kind="type", detail=problem)
    dtypes = result_dtypes(raw)
    result_dtype = next(iter(dtypes)) if len(dtypes) == 1 else "mixed (" + ", ".join(sorted(dtypes)) + ")"
    comparison, expected, allowed = _compare(case, ref, tol, actual, update, what)
    band = _band(case, expected, allowed)
    if update:  # in gradient terms, for the finite differences and the diagnosis
        assert tol.update is not None  # prepared with the case's lr
        grads = _implied(ref, actual, case.lr)
        update_tol = tol.update if expected is ref.grads else tol.for_exact.update
        assert update_tol is not None
        allowed = update_tol.map(lambda a: a / case.lr)
    else:
        grads = actual
    kind = (
        "agree"
        if comparison.ok
        else "shape"
        if any(r.note.startswith("shape") for r in comparison.rows)
        else "not judged"
        if comparison.not_judged
        else "precision"
        if comparison.within_band
        else "mismatch"
    )
    check_dtype = np.dtype(case.X.dtype).name
    findings = (
        ()
        if kind == "agree" or result_dtype == check_dtype
        else (f"{what} returned {result_dtype} arrays in a {check_dtype} check.",)
    )
    detail = (
        "some entries have no finite bound (the reference's own bound overflowed): compared with nothing there"
        if kind == "not judged"
        else ""
    )
    return replace(
        base,
        kind=kind,
        detail=detail,
        comparison=comparison,
        actual=grads,
        allowed=allowed,
        band=band,
        result_dtype=result_dtype,
        findings=findings,
    )


def _fd_dtype(v: Verdict) -> str:
    """The coarser of the check's dtype and the result's: the resolution the derivation works at."""
    names = {v.dtype, v.result_dtype if v.result_dtype in ("float32", "float64") else v.dtype}
    return "float32" if "float32" in names else "float64"


def _precision(v: Verdict) -> Verdict:
    """Confirm a within-band result with finite differences at the worst entry of every array beyond
    the derived bound: precision unless they separate the derivation from autograd."""
    ref, dtype = v.reference, _fd_dtype(v)
    actual, expected = dict(v.arrays[0].arrays()), dict(ref.grads.arrays())
    estimates: list[tuple[Estimate, float, float]] = []
    for row in v.checked.rows:
        if row.ok:
            continue
        est = finite_difference(ref.spec, ref.params, ref.X, ref.Y, row.name, row.worst, dtype)
        estimates.append((est, float(actual[row.name][row.worst]), float(expected[row.name][row.worst])))
    separated = [(e, d, r) for e, d, r in estimates if e.supports(r) and not e.supports(d)]
    if separated:
        e, d, r = separated[0]
        return replace(
            v,
            kind="mismatch",
            findings=(
                *v.findings,
                f"Within the rounding-level band, but finite differences in {e.dtype} separate them at {e.where}: "
                f"{e.value:.10g} (+- {e.error:.1g}) supports autograd {r:.10g}, not the derivation {d:.10g}.",
            ),
        )
    worst = max((r for r in v.checked.rows if not r.ok), key=lambda r: r.share)
    e, d, r = next(x for x in estimates if x[0].where.startswith(worst.name + "["))
    return replace(
        v,
        kind="precision",
        findings=(
            *v.findings,
            f"Beyond the derived bound (up to {worst.share:.3g}x, at {worst.name}{list(worst.worst)}) but within the "
            f"rounding-level band (rtol {RTOL[v.dtype]:.2g} of each array's scale).",
            f"Finite differences in {e.dtype} at {e.where}: {e.value:.10g} (+- {e.error:.1g}) cannot tell the "
            f"derivation ({d:.10g}) from autograd ({r:.10g}).",
            "They differ in sign there, by less than the band: finite differences cannot decide it, so it is not "
            "called wrong math; strict=True fails it."
            if d * r < 0
            else "So nothing here tells a less accurate evaluation from wrong math smaller than finite differences "
            "can see: it passes as precision, with this warning; strict=True fails it.",
        ),
    )


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


def _unsaturated_candidates(case: Case):
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


def _error(v: Verdict) -> float:
    """The largest absolute difference from autograd over the verdict's arrays (inf where non-finite)."""
    return max((row.max_abs for row in v.checked.rows), default=0.0)


# a float64 evaluation whose error is precision-driven grows by about eps32 / eps64 = 5e8 in float32;
# a wrong branch gives an error of the size of the value in both. 100x tells them apart with room
_GROWTH = 100.0


def _precision_driven(fn: Callable, one: Case, verdict: Verdict, update: bool, arrays: str, device: str) -> bool:
    """Whether a failing one-example result shows verified signs of overflow or lost digits (issue 21):
    non-finite values where autograd is finite; or, re-run on the same example in the other float
    dtype (the example's values are exact in float64), a float32 result whose float64 re-run agrees
    with autograd, or a float64 result whose error grows by orders of magnitude (or turns non-finite)
    in float32. A wrong branch gives the same error in both dtypes."""
    if verdict.comparison is not None and any(row.nonfinite for row in verdict.comparison.rows):
        return True
    other = np.float64 if np.dtype(one.X.dtype) == np.float32 else np.float32
    with np.errstate(all="ignore"):
        cast = replace(
            one,
            params=one.params.map(lambda a: np.asarray(a).astype(other)),
            X=one.X.astype(other),
            Y=one.Y.astype(other),
        )
    rerun = _basic(fn, cast, update, arrays, device)
    if rerun.comparison is None:
        return False
    if other == np.float64:
        return rerun.passed
    return bool(_error(rerun) >= _GROWTH * _error(verdict))


def _unstable(v: Verdict, fn: Callable, update: bool, arrays: str, device: str) -> Verdict:
    """Decide between unstable and mismatch for a result beyond the band (see the module docstring)."""
    case, ref = v.case, v.reference
    saturated = _saturated_examples(case, ref)
    if not saturated.any():
        return v
    N = case.X.shape[0]
    per_example = [_basic(fn, _subcase(case, [n]), update, arrays, device) for n in range(N)]
    failing = [n for n in range(N) if not per_example[n].passed]
    whole = not failing
    if whole:
        # no example fails alone: the excess is the sum of several rows' errors; the saturated rows are
        # the candidates, and the evidence is taken on the whole case below
        failing = [n for n in range(N) if saturated[n]]
    if not all(saturated[n] for n in failing):
        return v
    holding = [n for n in range(N) if per_example[n].passed and not saturated[n]]
    if holding:
        check = _basic(fn, _subcase(case, holding), update, arrays, device)
        where = f"at the unsaturated example(s) {', '.join(map(str, holding))} of this case"
    else:
        check, where = None, ""
        for candidate, text in _unsaturated_candidates(case):
            keep = ~_saturated_examples(candidate, reference(case.spec, candidate.params, candidate.X, candidate.Y))
            if keep.any():
                check = _basic(fn, _subcase(candidate, keep), update, arrays, device)
                where = f"at {int(keep.sum())} unsaturated point(s) of this {text}"
                break
    if check is None:
        return replace(
            v,
            findings=(
                *v.findings,
                "It gives values beyond rounding where outputs saturate, and no unsaturated point of this "
                "architecture was found to tell overflow from wrong math.",
            ),
        )
    if not check.passed:
        return replace(
            v,
            findings=(
                *v.findings,
                f"{where[0].upper()}{where[1:]} it disagrees with autograd too, so this is not only overflow.",
            ),
        )
    if whole:
        unexplained = [] if _precision_driven(fn, case, v, update, arrays, device) else failing
    else:
        unexplained = [
            n for n in failing if not _precision_driven(fn, _subcase(case, [n]), per_example[n], update, arrays, device)
        ]
    if unexplained:
        return replace(
            v,
            findings=(
                *v.findings,
                f"Example(s) {', '.join(map(str, unexplained))} saturate, and there the result is finite and wrong "
                f"by the same amount when re-run in the other float dtype: no overflow and no loss of digits, "
                f"wrong math where the outputs saturate (it agrees elsewhere).",
            ),
        )
    nonfinite = [f"{row.name}{list(i)}" for row in v.checked.rows for i in row.nonfinite]
    O = ref.O[-1]
    n = failing[0]
    j = int(np.argmin(O[n] * (1 - O[n])))
    name = np.dtype(case.X.dtype).name
    findings = [
        (
            f"It gives NaN or inf at {', '.join(nonfinite[:4])}{' and more' if len(nonfinite) > 4 else ''} "
            f"({len(nonfinite)} entries) where autograd is finite"
            if nonfinite
            else "It loses its digits (beyond the rounding-level band) where autograd does not"
        )
        + f", from example(s) {', '.join(map(str, failing))}, whose outputs saturate: y*[{n}, {j}] = "
        f"{O[n, j]:.17g}, y*(1 - y*) = {O[n, j] * (1 - O[n, j]):.3g} <= sqrt({name} epsilon) = "
        f"{_saturation_level(case.X.dtype):.3g}, where 1 - y* keeps at most half of {name}'s digits.",
        f"{where[0].upper()}{where[1:]} it {'agrees' if check.kind == 'agree' else 'agrees to rounding level'} "
        f"with autograd: the formula holds there, and its evaluation "
        + ("overflows" if nonfinite else "loses its digits (the re-run in the other float dtype shows it)")
        + " where the outputs saturate.",
    ]
    output, loss = case.spec.activations[-1].name, case.spec.loss
    hint = loss_twin(loss).hints.get(output)
    if hint is not None:
        findings.append(f"A stable form for {output}+{loss.name}: {hint}.")
    return replace(v, kind="unstable", findings=v.findings + tuple(findings))


# ------------------------------------------------------------------------------------------ public


def classify(
    fn: Callable,
    case: Case,
    *,
    update: bool = False,
    arrays: str = "numpy",
    device: str = "cpu",
    prepared: tuple[Reference, Tolerance] | None = None,
) -> Verdict:
    """The verdict of ``fn`` on ``case`` (see the module docstring); ``fn`` is not validated here.
    ``prepared`` is :func:`prepare`'s result for this case, when several derivations share it."""
    v = _basic(fn, case, update, arrays, device, prepared)
    if v.kind == "precision":
        v = _precision(v)
    if v.kind == "mismatch":
        v = _unstable(v, fn, update, arrays, device)
    return v


def check_callable(fn: Any, what: str, nargs: int, args: str | None = None) -> None:
    """``TypeError`` unless ``fn`` is callable with ``nargs`` positional arguments (named ``args``)."""
    args = args or ("(spec, params, X, Y, lr)" if nargs == 5 else "(spec, params, X, Y)")
    if not callable(fn):
        raise TypeError(f"{what} must be a callable {what}{args}, got {type(fn).__name__}: {fn!r}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # a builtin without a signature: let the call decide
    try:
        signature.bind(*range(nargs))
    except TypeError as exc:
        name = getattr(fn, "__name__", type(fn).__name__)
        raise TypeError(
            f"{what} must accept {nargs} positional arguments {args}; {name}{signature} does not: {exc}"
        ) from None
