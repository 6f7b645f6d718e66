"""Naming the pattern of a wrong gradient, and finite-difference blame.

:func:`diagnose` compares a failing derivation with autograd's gradient and with gradients computed
by deliberately altered versions of the delta recursion (a constant factor, a sign, a transpose, an
activation derivative missing, doubled, or evaluated on I instead of O, ``W`` where ``W^T`` belongs,
the softmax Jacobian taken as diagonal, the ``y* - y`` shortcut applied where it does not hold).
A pattern is reported when the derivation matches it to 1e-6 relative to the gradient's size: a
heuristic for the reader, never the pass/fail criterion.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

import manual
from manual import Params, Spec
from manual.activations import derivative
from manual.forward import _forward
from manual.losses import loss_gradient

__all__ = ["blame", "diagnose"]

_MATCH = 1e-6


def _flat(p: Params) -> list[np.ndarray]:
    return [a for _, a in p.arrays()]


def _close(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    if any(x.shape != y.shape for x, y in zip(a, b)):
        return False
    scale = max(max((float(np.abs(y).max(initial=0)) for y in b), default=0), 1e-300)
    return all(np.all(np.abs(x - y) <= _MATCH * scale) for x, y in zip(a, b))


def _variant(spec: Spec, p: Params, X: np.ndarray, Y: np.ndarray, *,
             dA: Callable[[int, str, np.ndarray, np.ndarray], np.ndarray] | None = None,
             back: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
             out: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> Params:
    """Gradients by the delta recursion with one piece replaced."""
    fwd = _forward(spec, p, X)
    dA = dA or (lambda l, name, I, O: derivative(name, I, O))
    back = back or (lambda d, W: d @ W.T)
    if out is not None:
        delta = out(fwd.I[-1], fwd.O[-1])
    else:
        delta = manual.output_delta(spec, fwd.I[-1], fwd.O[-1], Y)
    if spec.reduction == "mean" and out is not None:
        delta = delta / X.shape[0]
    deltas = [delta]
    for l in range(spec.depth - 2, -1, -1):
        deltas.insert(0, back(deltas[0], p.weights[l + 1]) * dA(l, spec.activations[l], fwd.I[l], fwd.O[l]))
    grads_W = [u.T @ d for u, d in zip(fwd.u, deltas)]
    grads_b = None if p.biases is None else [d.sum(axis=0) for d in deltas]
    return Params(grads_W, grads_b)


def _variants(spec: Spec, p: Params, X: np.ndarray, Y: np.ndarray) -> list[tuple[str, Params]]:
    found: list[tuple[str, Params]] = []
    for l in range(spec.depth - 1):
        name = spec.activations[l]
        if name == "identity":
            continue
        found.append((f"the activation derivative A' of layer {l + 1} ({name}) is missing",
                      _variant(spec, p, X, Y, dA=lambda k, n, I, O, l=l: np.ones_like(I) if k == l else derivative(n, I, O))))
        found.append((f"the activation derivative A' of layer {l + 1} ({name}) is applied twice",
                      _variant(spec, p, X, Y, dA=lambda k, n, I, O, l=l: derivative(n, I, O) ** (2 if k == l else 1))))
        if name == "relu":
            found.append((f"ReLU' of layer {l + 1} is taken as 1 at I = 0 (the contract and torch take 0)",
                          _variant(spec, p, X, Y, dA=lambda k, n, I, O, l=l: (I >= 0).astype(I.dtype) if k == l
                                   else derivative(n, I, O))))
        if name in ("sigmoid", "tanh"):
            found.append((f"A' of layer {l + 1} ({name}) is evaluated on I where the formula needs O = A(I)",
                          _variant(spec, p, X, Y, dA=lambda k, n, I, O, l=l: derivative(n, I, I if k == l else O))))
    if len(set(spec.sizes[1:])) == 1 and spec.depth > 1:
        found.append(("the recursion multiplies by W where the slides have W^T (delta W^T)",
                      _variant(spec, p, X, Y, back=lambda d, W: d @ W)))
    act, loss = spec.activations[-1], spec.loss
    shortcut = lambda I, O: O - Y  # noqa: E731
    if not spec.canonical:
        found.append((f"the output delta uses the shortcut y* - y, which holds for sigmoid+bce, softmax+ce "
                      f"and identity+squared but not for {act}+{loss}", _variant(spec, p, X, Y, out=shortcut)))
    if act not in ("softmax",) and act != "identity":
        found.append(("the output layer's activation derivative A' is missing (dL/dy* used as delta)",
                      _variant(spec, p, X, Y, out=lambda I, O: loss_gradient(loss, O, Y))))
        if spec.canonical:
            found.append((f"the output delta multiplies y* - y by A' again ({act}+{loss} already cancels it)",
                          _variant(spec, p, X, Y, out=lambda I, O: (O - Y) * derivative(act, I, O))))
    if act == "relu":
        g = loss_gradient(loss, _forward(spec, p, X).O[-1], Y)
        found.append(("ReLU' of the output layer is taken as 1 at I = 0 (the contract and torch take 0)",
                      _variant(spec, p, X, Y, out=lambda I, O: g * (I >= 0))))
    if p.biases is not None and X.shape[0] > 1:
        base = _variant(spec, p, X, Y)
        found.append(("grad b is taken from the first example instead of summed over the batch",
                      Params(base.weights, [d[0] for d in manual.deltas(spec, p, X, Y)])))
    if act == "softmax" and not spec.canonical:
        found.append(("the softmax Jacobian is taken as diagonal, O (1 - O), dropping its off-diagonal terms",
                      _variant(spec, p, X, Y, out=lambda I, O: loss_gradient(loss, O, Y) * O * (1 - O))))
    return found


def _factor_name(r: float, N: int, J: int) -> str | None:
    """Every simple factor r equals, e.g. 'a factor N = 2 (the mean's 1/N missing) or a factor 2 ...'."""
    named = [(-1.0, "a sign flip (-1 x autograd)"), (float(N), f"a factor N = {N} (the mean's 1/N missing)"),
             (1.0 / N, f"a factor 1/N = 1/{N}"), (2.0, "a factor 2 (a 1/2 missing?)"), (0.5, "a factor 1/2"),
             (float(J), f"a factor J = {J}"), (1.0 / J, f"a factor 1/J = 1/{J} (divided by the outputs too)"),
             (1.0 / (N * J), f"a factor 1/(N J) = 1/{N * J} (a torch-style mean over N x J)")]
    hits = [text for value, text in named if value != 1.0 and abs(r - value) <= 1e-9 * max(1.0, abs(value))]
    return " or ".join(dict.fromkeys(hits)) or None


def diagnose(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, actual: Params, expected: Params) -> list[str]:
    """Sentences naming the error's pattern; empty when none fits. All arrays float64 NumPy."""
    a, e = _flat(actual), _flat(expected)
    names = [n for n, _ in expected.arrays()]
    bad = [k for k in range(len(e)) if a[k].shape != e[k].shape or not np.allclose(a[k], e[k], rtol=1e-9, atol=0)]
    notes = []
    for k in bad:
        if a[k].shape != e[k].shape:
            t = "the transpose of the slides' layout (in, out)" if a[k].shape == e[k].T.shape else f"shape {a[k].shape}"
            notes.append(f"{names[k]} has {t}; expected shape {e[k].shape}")
    if notes:
        return notes
    structural = [text for text, grads in _variants(spec, params, X, Y) if _close(a, _flat(grads))]
    if structural:
        return structural
    ea = sum(float(np.sum(a[k] * e[k])) for k in bad)
    ee = sum(float(np.sum(e[k] * e[k])) for k in bad)
    entries = sum(e[k].size for k in bad)
    if ee > 0:
        r = ea / ee
        if all(np.allclose(a[k], r * e[k], rtol=1e-6, atol=1e-12 * np.abs(e[k]).max(initial=0)) for k in bad):
            named = _factor_name(r, X.shape[0], spec.sizes[-1])
            if named or entries > 1:  # any two single numbers are proportional: no pattern in that
                return [f"{named or f'a constant factor {r:.6g}'} in {', '.join(names[k] for k in bad)}"]
    if all(not np.any(a[k]) for k in bad):
        return [f"zero where autograd is not: {', '.join(names[k] for k in bad)}"]
    for k in bad:
        if a[k].ndim == 2 and a[k].shape[0] == a[k].shape[1] and np.allclose(a[k], e[k].T, rtol=1e-9):
            notes.append(f"{names[k]} is the transpose of autograd's (square layer)")
    return notes


def blame(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, name: str, index: tuple[int, ...],
          derived: float, reference: float) -> str:
    """Central finite differences of the objective (float64) at one entry: which value is right."""
    arrays = dict(params.arrays())
    theta = arrays[name]
    h = float(np.finfo(np.float64).eps) ** (1 / 3) * max(1.0, abs(float(theta[index])))

    def f(shift: float) -> float:
        moved = {k: v.copy() for k, v in arrays.items()}
        moved[name][index] += shift
        W = [moved[f"W{l}"] for l in range(1, spec.depth + 1)]
        b = [moved[f"b{l}"] for l in range(1, spec.depth + 1)] if spec.bias else None
        return float(manual.objective(spec, Params(W, b), X, Y))

    fd = (f(h) - f(-h)) / (2 * h)
    fd2 = (f(2 * h) - f(-2 * h)) / (4 * h)
    # the two step sizes estimate the truncation error; rounding adds eps |f| / h
    err = 2 * abs(fd - fd2) + 10 * float(np.finfo(np.float64).eps) * max(abs(f(0.0)), 1.0) / h
    where = f"{name}[{', '.join(map(str, index))}]"
    d_ok, r_ok = abs(derived - fd) <= err, abs(reference - fd) <= err
    if r_ok and not d_ok:
        verdict = "autograd is right"
    elif d_ok and not r_ok:
        verdict = "the derivation is right (autograd disagrees: check the reference's conventions)"
    else:
        verdict = "inconclusive (finite differences cannot separate them here, e.g. at a ReLU kink)"
    return (f"finite differences at {where}: {fd:.6g} (+- {err:.1g}); derivation {derived:.6g}, "
            f"autograd {reference:.6g}: {verdict}")
