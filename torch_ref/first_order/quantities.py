r"""The oracle's other quantities: every layer's delta, the input gradient, per-example gradients.

Each is compared with its float64 autograd value under the derived tolerance of
:mod:`torch_ref.numerics.tolerance`:

- ``deltas``: :math:`\delta^{(l)} = \partial\,\text{objective} / \partial I^{(l)}`, one ``(N, sizes[l])``
  array per layer (with the spec's reduction: divided by N for ``"mean"``);
- ``input``: :math:`\partial\,\text{objective} / \partial X`, shape ``(N, D)``;
- ``per-example``: the gradient of each example's own loss :math:`L_n`, weights ``(N, in, out)`` and
  biases ``(N, out)``, against ``torch.func.vmap(torch.func.grad(...))``; example n's tolerance is
  that of the one-example batch ``X[n:n+1]``.

A failing result is explained only by patterns verified on the case: the failing arrays equal
autograd's times a factor (-1, N, 1/N, 2, 1/2), or (deltas) autograd's with the layer's
:math:`\mathcal{A}'(I)` left out or applied twice, or (per-example) the batch's gradient in every row,
each within the same derived bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from manual import Params, Spec

from ..engine.report import ordinal
from ..engine.result import normalise
from ..numerics.compare import Comparison, compare_either
from ..numerics.tolerance import EXACT_LABEL, TORCH_LABEL, Tolerance, references, tolerance
from ..strategies import Case
from ..twin.build import build
from ..twin.convert import as_numpy64
from ..twin.reference import Reference, reference
from .verdict import Verdict, _crash, hand_out, prepare

__all__ = ["KIND_WHAT", "classify_kind", "factor_patterns", "per_example_reference"]

_NOT_JUDGED = "some entries have no finite bound (the reference's own bound overflowed): compared with nothing there"

KIND_WHAT = {"deltas": "delta_fn", "input": "input_fn", "per-example": "per_example_fn"}
RETURNS = {
    "deltas": "a list of one (N, sizes[l]) array per layer",
    "input": "one (N, D) array",
    "per-example": "manual.Params (or a (weights, biases) pair) of (N, in, out) and (N, out) arrays",
}


def _summed(spec: Spec) -> Spec:
    return Spec(spec.sizes, spec.activations, spec.loss, bias=spec.bias, reduction="sum")


class _Objective(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        net: Any = self.net
        return net.objective(X, Y)


def per_example_reference(spec: Spec, params: Params, X: Any, Y: Any) -> Params:
    """The gradient of each example's own loss by ``torch.func.vmap(torch.func.grad(...))`` of the
    torch network (float64 NumPy; weights ``(N, in, out)``, biases ``(N, out)``)."""
    net = _Objective(build(_summed(spec), params.map(as_numpy64)))
    named = {k: v.detach() for k, v in net.named_parameters()}

    def loss(p: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(net, p, (x[None], y[None]))

    grads = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))(
        named, torch.from_numpy(as_numpy64(X)), torch.from_numpy(as_numpy64(Y))
    )
    weights = [grads[f"net.linears.{l}.weight"].transpose(1, 2).numpy() for l in range(spec.depth)]
    biases = [grads[f"net.linears.{l}.bias"].numpy() for l in range(spec.depth)] if spec.bias else None
    return Params(weights, biases)


def _per_example_tolerance(case: Case, dtype: Any) -> Params:
    spec = _summed(case.spec)
    rows = [
        tolerance(spec, case.params, case.X[n : n + 1], case.Y[n : n + 1], dtype=dtype).grads
        for n in range(case.X.shape[0])
    ]
    return Params(
        [np.stack([r.weights[l] for r in rows]) for l in range(spec.depth)],
        None if not spec.bias else [np.stack([r.biases[l] for r in rows]) for l in range(spec.depth)],  # type: ignore[index]
    )


def _expected(kind: str, case: Case, ref: Reference, tol: Tolerance) -> tuple[list[str], list[tuple[str, list, list]]]:
    """The arrays' names and the right references, ``(label, expected, allowed)``: torch's, and past
    torch's bce floor the exact one too (:func:`torch_ref.numerics.tolerance.references`)."""
    spec = case.spec
    if kind == "deltas":
        return [f"delta{l}" for l in range(1, spec.depth + 1)], references(ref, tol, "deltas")
    if kind == "input":
        return ["dX"], references(ref, tol, "input")
    expected = per_example_reference(spec, case.params, case.X, case.Y)
    allowed = _per_example_tolerance(case, case.X.dtype)
    names = [n for n, _ in expected.arrays()]
    out = [(TORCH_LABEL if ref.two_references else "torch's values", _flat(expected), _flat(allowed))]
    if ref.two_references:
        exact, exact_allowed = _per_example_exact(case)
        out.append((EXACT_LABEL, _flat(exact), _flat(exact_allowed)))
    return names, out


def _flat(p: Params) -> list:
    return [a for _, a in p.arrays()]


def _per_example_exact(case: Case) -> tuple[Params, Params]:
    """Every example's exact gradient (no floor) and its own bound, stacked as per-example arrays."""
    spec, dtype = case.spec, case.X.dtype
    refs = [reference(spec, case.params, case.X[n : n + 1], case.Y[n : n + 1]) for n in range(case.X.shape[0])]
    tols = [
        tolerance(spec, case.params, case.X[n : n + 1], case.Y[n : n + 1], dtype=dtype, reference_pass=r).for_exact
        for n, r in enumerate(refs)
    ]

    def stack(parts: list[Params]) -> Params:
        return Params(
            [np.stack([p.weights[l] for p in parts]) for l in range(spec.depth)],
            None if not spec.bias else [np.stack([p.biases[l] for p in parts]) for l in range(spec.depth)],  # type: ignore[index]
        )

    return stack([r.exact_grads for r in refs]), stack([t.grads for t in tols])


def _actual(kind: str, spec: Spec, result: Any, what: str) -> tuple[list | None, str]:
    def is_array(a: Any) -> bool:
        return hasattr(a, "shape") and hasattr(a, "dtype")

    if kind == "per-example":
        p, problem, _ = normalise(spec, result, what)
        return (None, problem) if p is None else ([a for _, a in p.arrays()], "")
    if kind == "input":
        if not is_array(result):
            return None, f"{what} returned {type(result).__name__}; expected {RETURNS[kind]}"
        return _floats([result], what)
    if not isinstance(result, (list, tuple)) or not all(is_array(a) for a in result):
        return None, f"{what} returned {type(result).__name__}; expected {RETURNS[kind]}"
    if len(result) != spec.depth:
        return (
            None,
            f"{what} returned {len(result)} array(s) for a network of {spec.depth} layer(s); expected {RETURNS[kind]}",
        )
    return _floats(list(result), what)


def _floats(arrays: list, what: str) -> tuple[list | None, str]:
    """The arrays as float64 NumPy, or the problem: an array-like's conversion may raise anything."""
    try:
        return [as_numpy64(a) for a in arrays], ""
    except Exception as exc:
        return None, f"{what} returned something that is not a float array: {type(exc).__name__}: {exc}"


def classify_kind(kind: str, fn: Callable, case: Case, *, arrays: str = "numpy", device: str = "cpu") -> Verdict:
    """The verdict of ``fn(spec, params, X, Y)`` on ``case`` for ``kind`` (``"deltas"``, ``"input"``,
    ``"per-example"``): agree, mismatch, crash, type or shape."""
    what = KIND_WHAT[kind]
    ref, tol = prepare(case)
    base = Verdict("agree", what, case, ref)
    params, X, Y = hand_out(case, arrays, device)
    try:
        result = fn(case.spec, params, X, Y)
    except (Exception, SystemExit) as exc:
        return replace(base, kind="crash", detail=_crash(exc, what, arrays, device))
    actual, problem = _actual(kind, case.spec, result, what)
    if actual is None:
        return replace(base, kind="type", detail=problem)
    names, candidates = _expected(kind, case, ref, tol)
    title = {"deltas": "deltas", "input": "input gradient", "per-example": "per-example gradients"}[kind]
    comparison = compare_either(
        names,
        actual,
        [(label, e, a, None) for label, e, a in candidates],
        title=f"{title} of {what} against autograd",
        conventions=tol.conventions,
    )
    if comparison.ok:
        return replace(base, comparison=comparison)
    if any(r.note.startswith("shape") for r in comparison.rows):
        return replace(base, kind="shape", comparison=comparison)
    if comparison.not_judged:
        return replace(base, kind="not judged", comparison=comparison, detail=_NOT_JUDGED)
    label = comparison.followed or candidates[0][0]
    expected, allowed = next((e, a) for lab, e, a in candidates if lab == label)
    findings = factor_patterns(kind, case, ref, names, actual, expected, allowed, comparison)
    layers = sorted({int(r.name.lstrip("deltaWb")) for r in comparison.rows if not r.ok and r.name != "dX"})
    if layers:
        l = layers[-1]
        k = case.spec.depth - l + 1
        where = "the output layer" if k == 1 else f"the {ordinal(k)} counting from the output"
        findings = (f"Parts from autograd at layer {l} of {case.spec.depth} ({where})", *findings)
    return replace(base, kind="mismatch", comparison=comparison, findings=findings)


def _fits(actual: np.ndarray, target: np.ndarray, allowed: np.ndarray) -> bool:
    with np.errstate(all="ignore"):
        return bool(np.all(np.isfinite(actual)) and np.all(np.abs(actual - target) <= allowed))


def factor_patterns(
    kind: str,
    case: Case,
    ref: Reference,
    names: list[str],
    actual: list,
    expected: list,
    allowed: list,
    comparison: Comparison,
) -> tuple[str, ...]:
    """The diagnosis: patterns that fit every failing array within the derived bound (scaled as the
    pattern scales it), verified here; an empty tuple when none does."""
    N = case.X.shape[0]
    failing = [k for k, row in enumerate(comparison.rows) if not row.ok]
    factors: list[tuple[float, str]] = [(float(N), f"N = {N}"), (1.0 / N, f"1/N = 1/{N}")] if N > 1 else []
    factors += [(c, w) for c, w in ((-1.0, "-1 (the sign flipped)"), (2.0, "2"), (0.5, "1/2")) if c not in (N, 1 / N)]
    found = []
    verb = "equals" if len(failing) == 1 else "equal"
    for c, words in factors:
        if all(_fits(actual[k], c * expected[k], abs(c) * allowed[k]) for k in failing):
            found.append(
                f"{', '.join(names[k] for k in failing)} {verb} autograd's times {words} within the derived bound"
            )
    if kind == "deltas":
        for k in failing:
            dA = ref.dA[k]
            if dA is None:
                continue
            with np.errstate(all="ignore"):
                if _fits(actual[k] * dA, expected[k], allowed[k]) and not np.allclose(dA, 1.0):
                    found.append(f"{names[k]} times A'(I^({k + 1})) equals autograd's: the layer's A' is left out")
                elif _fits(actual[k], expected[k] * dA, allowed[k] * np.abs(dA)) and not np.allclose(dA, 1.0):
                    found.append(f"{names[k]} equals autograd's times A'(I^({k + 1})) once more: A' is applied twice")
    if kind == "per-example" and N > 1:
        summed = [np.broadcast_to(e.sum(axis=0), e.shape) for e in expected]
        if all(_fits(actual[k], summed[k], allowed[k] * N) for k in failing):
            found.append("every row holds the gradient of the whole batch's sum, not of its own example")
    return ("Diagnosis: " + ("; ".join(found) if found else "no known pattern fits"),)
