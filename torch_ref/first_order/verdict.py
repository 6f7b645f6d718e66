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
  evidence of overflow or lost digits (:func:`torch_ref.first_order.unstable._precision_driven`:
  non-finite values where autograd is finite, or a re-run in the other float dtype whose error is
  precision's, issue 21). The formula holds; its evaluation overflows or loses its digits
  (:mod:`torch_ref.first_order.unstable` decides between this and a mismatch).
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
from typing import Any

import numpy as np

from manual import Params

from ..engine.outcome import Judged
from ..engine.result import normalise, result_dtypes
from ..numerics.blame import Estimate, finite_difference
from ..numerics.compare import Comparison, compare_either
from ..numerics.tolerance import RTOL, Tolerance, references, rounding_band, tolerance
from ..strategies import Case
from ..twin.reference import Reference, reference
from .unstable import unstable

__all__ = ["KINDS", "Verdict", "classify", "hand_out", "hand_out_params", "prepare"]

KINDS = ("agree", "precision", "unstable", "mismatch", "not judged", "crash", "type", "shape")


class Outcome(Judged):
    """What every first-order verdict (one case of a check) offers: its comparison and its dtype."""

    kind: str
    case: Case
    comparison: Comparison | None

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


def _unstable(v: Verdict, fn: Callable, update: bool, arrays: str, device: str) -> Verdict:
    """Unstable or still a mismatch, with the findings that say why
    (:func:`torch_ref.first_order.unstable.unstable`, which judges ``fn`` on further cases as :func:`_basic` does)."""

    def run(other: Case) -> Verdict:
        return _basic(fn, other, update, arrays, device)

    kind, findings = unstable(v, run)
    return replace(v, kind=kind, findings=v.findings + findings)


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
