r"""Naming the pattern of a wrong gradient, only where the case in front of us shows it.

A *variant* is the delta recursion with one piece replaced the way people get it wrong (an
activation derivative missing, doubled, or evaluated on the wrong argument; ``W`` where ``W^T``
belongs; the ``y* - y`` shortcut where it does not hold; the bias gradient taken before A' or from
one example; the softmax Jacobian taken as diagonal; an update that backpropagates through the
already-updated weights of the layer above; ...). A variant is named only when, on this case,

1. it differs from autograd beyond the tolerance plus the rounding band somewhere (so it is a
   different answer here, not the right one in disguise: a transpose of a 1x1 matrix, ``W`` for
   ``W^T`` with widths of 1), and
2. it matches the derivation within the tolerance plus the band on every entry.

First of all, a user's own activation or loss (not a built-in) is checked on its own at the case's
points (:mod:`torch_ref.first_order.entry_check`): a derivative that disagrees with autograd of its own forward
is named with its layer, and nothing is fitted on top of it.

When no whole-network variant fits, each failing array is explained on its own where it can be: a
constant factor (fitted per array, named per array: "W2 x2, b1 x1/4"), zero where autograd is not,
or the transpose of autograd's. A factor is named only when it means something (-1, N, 1/N, J,
1/J, a ratio p/q of integers up to 4) and the array scaled by it fits within the tolerance plus
the band: an array that is autograd's times 1.00001 is proportional, but that names a symptom
(the trial's tanh' evaluated at the layer's output). Otherwise the report gives the array's
largest difference relative to autograd's and says that no known pattern fits: that is better
than a confident wrong sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from functools import partial
from typing import Any

import numpy as np

import manual
from manual import Activation, Loss, Params, Spec
from manual.forward import _forward
from manual.registry import LOSSES

from .entry_check import entry_findings
from .verdict import Verdict

__all__ = ["diagnose"]

# a candidate mistake: the sentence that names it, and the gradients it gives on the case
_Variant = tuple[str, Params]


def _flat(p: Params) -> list[np.ndarray]:
    return [np.asarray(a, dtype=np.float64) for _, a in p.arrays()]


def _dA(entry: Activation, I: np.ndarray, O: np.ndarray) -> np.ndarray:
    return entry.prime(I, O, np)


def _at_kink(entry: Activation, k: float) -> tuple[float, float]:
    """(A' the entry takes at the kink k, the limit from the other side)."""
    point = np.array([[k]])
    here = float(_dA(entry, point, entry.forward(point, np))[0, 0])
    step = max(abs(k), 1.0) * 1e-7
    sides = [float(_dA(entry, point + s, entry.forward(point + s, np))[0, 0]) for s in (-step, step)]
    return here, max(sides, key=lambda v: abs(v - here))


def _twice(entry: Activation, I: np.ndarray, O: np.ndarray) -> np.ndarray:
    return _dA(entry, I, O) ** 2


def _on_I(entry: Activation, I: np.ndarray, O: np.ndarray) -> np.ndarray:
    return _dA(entry, I, I)  # A' handed I where it reads O


def _on_O(entry: Activation, I: np.ndarray, O: np.ndarray) -> np.ndarray:
    return _dA(entry, O, entry.forward(O, np))  # A'(A(I))


def _output_other_side(
    loss: Loss, act: Activation, Y: np.ndarray, k: float, I: np.ndarray, O: np.ndarray
) -> np.ndarray:
    return loss.gradient(O, Y, np) * _other_side(act, I, O, k=k)


def _other_side(entry: Activation, I: np.ndarray, O: np.ndarray, k: float) -> np.ndarray:
    """A' with the value at an input exactly on the kink k replaced by the limit from the side the
    entry does not take there (ReLU at 0: 1 instead of 0)."""
    return np.where(I == k, _at_kink(entry, k)[1], _dA(entry, I, O))


def _kink_text(entry: Activation, k: float) -> str:
    here, other = _at_kink(entry, k)
    return f"at its kink I = {k:g} is taken as {other:g}, the other side's value (the contract and torch take {here:g})"


def _variant(
    spec: Spec,
    p: Params,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    dA: Callable[[int, Activation, np.ndarray, np.ndarray], np.ndarray] | None = None,
    back: Callable[[int, np.ndarray, np.ndarray], np.ndarray] | None = None,
    out: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    bias: Callable[[int, np.ndarray, np.ndarray | None], np.ndarray] | None = None,
    lr: float | None = None,
) -> Params:
    """Gradients by the delta recursion with one piece replaced. ``bias(l, delta, pre)`` gets the
    layer's delta and the signal before A' was applied; with ``lr``, each layer's delta is carried
    down through the weights of the layer above *after* their update. The pieces not replaced are
    the entries' own (a built-in's derivative is torch's to rounding; a user entry's is what is
    under test, and a variant built from it is only named where it matches the derivation)."""
    fwd = _forward(spec, p, X)
    dA = dA or (lambda l, entry, I, O: _dA(entry, I, O))
    back = back or (lambda l, d, W: d @ W.T)
    output = spec.activations[-1]
    if out is not None:
        delta = out(fwd.I[-1], fwd.O[-1])
        if spec.reduction == "mean":
            delta = delta / X.shape[0]
        pre: np.ndarray | None = delta
    else:
        delta = manual.output_delta(spec, fwd.I[-1], fwd.O[-1], Y)
        pre = None
        if output.elementwise and not spec.canonical:
            pre = spec.loss.gradient(fwd.O[-1], Y, np) / (X.shape[0] if spec.reduction == "mean" else 1)
    weights = list(p.weights)
    grads_W: list[Any] = [None] * spec.depth
    grads_b: list[Any] = [None] * spec.depth
    for l in range(spec.depth - 1, -1, -1):
        grads_W[l] = fwd.u[l].T @ delta
        grads_b[l] = bias(l, delta, pre) if bias is not None else delta.sum(axis=0)
        if lr is not None:
            weights[l] = weights[l] - lr * grads_W[l]
        if l:
            pre = back(l, delta, weights[l])
            delta = pre * dA(l - 1, spec.activations[l - 1], fwd.I[l - 1], fwd.O[l - 1])
    return Params(grads_W, None if p.biases is None else grads_b)


def _variants(spec: Spec, p: Params, X: np.ndarray, Y: np.ndarray, lr: float | None) -> list[_Variant]:
    """Every candidate mistake on this case as ``(sentence, gradients)``, in the order they are named
    (:func:`diagnose` names every one that fits, first to last): the hidden layers' A', A' on the
    layer's output, the recursion's W^T, the output delta, the bias gradient, the update."""
    return [
        *_hidden_derivative_variants(spec, p, X, Y),
        *_at_output_variants(spec, p, X, Y),
        *_transpose_variants(spec, p, X, Y),
        *_shortcut_variants(spec, p, X, Y),
        *_output_derivative_variants(spec, p, X, Y),
        *_diagonal_jacobian_variants(spec, p, X, Y),
        *_bias_variants(spec, p, X, Y),
        *_update_variants(spec, p, X, Y, lr),
    ]


def _hidden_derivative_variants(spec: Spec, p: Params, X: np.ndarray, Y: np.ndarray) -> list[_Variant]:
    r"""A' of one hidden layer l replaced by a wrong f, layer by layer (:func:`_layer_derivative_variants`):

    .. math::
        \delta^{(l)} = (\delta^{(l+1)} W^{(l+1)T}) \odot f(I^{(l)}, O^{(l)})

    Every variant is tried on every entry: one that changes nothing here (A' = 1, a derivative that
    does not read O) equals autograd and is never named."""
    return [v for l in range(spec.depth - 1) for v in _layer_derivative_variants(spec, p, X, Y, l)]


def _layer_derivative_variants(spec: Spec, p: Params, X: np.ndarray, Y: np.ndarray, l: int) -> list[_Variant]:
    r"""Layer l's A' missing (f = 1), applied twice (f = A'^2), taken at a kink k from the side the
    entry does not take there, handed I where it reads O (f = A'(I, I)), or evaluated on the layer's
    output (f = A'(A(I)))."""
    entry = spec.activations[l]
    layer = f"layer {l + 1} ({entry.name})"

    def variant(text: str, f: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> _Variant:
        return text, _variant(spec, p, X, Y, dA=lambda k, e, I, O: f(I, O) if k == l else _dA(e, I, O))

    found = [
        variant(f"the activation derivative A' of {layer} is missing", lambda I, O: np.ones_like(I)),
        variant(f"the activation derivative A' of {layer} is applied twice", partial(_twice, entry)),
    ]
    found += [variant(f"A' of {layer} {_kink_text(entry, k)}", partial(_other_side, entry, k=k)) for k in entry.kinks]
    with np.errstate(all="ignore"):
        found.append(
            variant(f"A' of {layer} is evaluated on I where the formula needs O = A(I)", partial(_on_I, entry))
        )
        found.append(
            variant(
                f"A' of {layer} is evaluated on the layer's output O where it needs I (A'(A(I)))",
                partial(_on_O, entry),
            )
        )
    return found


def _at_output_variants(spec: Spec, p: Params, X: np.ndarray, Y: np.ndarray) -> list[_Variant]:
    """A' evaluated at the layer's output O, A'(A(I)), where the formula needs I (the trial's tanh'
    written 1 - tanh(O)^2): in the output layer (where the output delta multiplies by A', a pair
    that does not cancel it), and in every layer of one entry at once (the hidden layers one by one
    are in :func:`_hidden_derivative_variants`)."""
    act, loss, last = spec.activations[-1], spec.loss, spec.depth - 1
    output = act.elementwise and not spec.canonical
    found = []

    def out(I: np.ndarray, O: np.ndarray) -> np.ndarray:
        return loss.gradient(O, Y, np) * _on_O(act, I, O)

    with np.errstate(all="ignore"):
        if output:
            found.append(
                (
                    f"A' of the output layer ({act.name}) is evaluated on the layer's output O where it needs I "
                    f"(A'(A(I)))",
                    _variant(spec, p, X, Y, out=out),
                )
            )
        for entry in {id(a): a for a in spec.activations}.values():
            layers = [l for l, a in enumerate(spec.activations) if a is entry and (l < last or output)]
            if len(layers) < 2:
                continue

            def dA(k: int, e: Activation, I: np.ndarray, O: np.ndarray, layers: list[int] = layers) -> np.ndarray:
                return _on_O(e, I, O) if k in layers else _dA(e, I, O)

            found.append(
                (
                    f"A' of every {entry.name} layer (layers {', '.join(str(l + 1) for l in layers)}) is evaluated "
                    f"on the layer's output O where it needs I (A'(A(I)))",
                    _variant(
                        spec,
                        p,
                        X,
                        Y,
                        dA=dA,
                        out=out if last in layers else None,
                    ),
                )
            )
    return found


def _transpose_variants(spec: Spec, p: Params, X: np.ndarray, Y: np.ndarray) -> list[_Variant]:
    r"""The recursion through W where the slides have :math:`W^T` (square layers only, where it computes):

    .. math::
        \delta^{(l)} = (\delta^{(l+1)} W^{(l+1)}) \odot \mathcal{A}'(I^{(l)})"""
    if spec.depth == 1 or not all(W.shape[0] == W.shape[1] for W in p.weights[1:]):
        return []
    return [
        (
            "the recursion multiplies by W where the slides have W^T (delta W^T)",
            _variant(spec, p, X, Y, back=lambda l, d, W: d @ W),
        )
    ]


def _canonical_pairs() -> str:
    return ", ".join(f"{a}+{loss.name}" for loss in LOSSES.values() for a in loss.canonical)


def _shortcut_variants(spec: Spec, p: Params, X: np.ndarray, Y: np.ndarray) -> list[_Variant]:
    r"""The canonical pairs' output delta used for a pair that is not one: :math:`\delta^{(L)} = y^* - y`."""
    if spec.canonical:
        return []
    act, loss = spec.activations[-1], spec.loss
    return [
        (
            f"the output delta uses the shortcut y* - y, which holds for {_canonical_pairs()} "
            f"but not for {act.name}+{loss.name}",
            _variant(spec, p, X, Y, out=lambda I, O: O - Y),
        )
    ]


def _output_derivative_variants(spec: Spec, p: Params, X: np.ndarray, Y: np.ndarray) -> list[_Variant]:
    r"""An elementwise output layer's A' in the output delta missing (:math:`\delta^{(L)} = \partial L/\partial y^*`),
    applied again after a canonical pair cancelled it (:math:`\delta^{(L)} = (y^* - y) \odot \mathcal{A}'`),
    or taken at a kink k from the side the entry does not take there."""
    act, loss = spec.activations[-1], spec.loss
    if not act.elementwise:
        return []
    found = [
        (
            "the output layer's activation derivative A' is missing (dL/dy* used as delta)",
            _variant(spec, p, X, Y, out=lambda I, O: loss.gradient(O, Y, np)),
        )
    ]
    if spec.canonical:
        found.append(
            (
                f"the output delta multiplies y* - y by A' again ({act.name}+{loss.name} already cancels it)",
                _variant(spec, p, X, Y, out=lambda I, O: (O - Y) * _dA(act, I, O)),
            )
        )
    found += [
        (
            f"A' of the output layer ({act.name}) {_kink_text(act, k)}",
            _variant(spec, p, X, Y, out=partial(_output_other_side, loss, act, Y, k)),
        )
        for k in act.kinks
    ]
    return found


def _diagonal_jacobian_variants(spec: Spec, p: Params, X: np.ndarray, Y: np.ndarray) -> list[_Variant]:
    r"""A vector-valued output (softmax) under a loss it does not cancel, its Jacobian taken as diagonal:

    .. math::
        \delta^{(L)} = \partial L/\partial y^* \odot y^* (1 - y^*)"""
    act, loss = spec.activations[-1], spec.loss
    if act.elementwise or spec.canonical:
        return []
    return [
        (
            f"the {act.name} Jacobian is taken as diagonal, O (1 - O), dropping its off-diagonal terms",
            _variant(spec, p, X, Y, out=lambda I, O: loss.gradient(O, Y, np) * O * (1 - O)),
        )
    ]


def _bias_variants(spec: Spec, p: Params, X: np.ndarray, Y: np.ndarray) -> list[_Variant]:
    r"""The bias gradient from the first example (:math:`\partial E/\partial b^{(l)} = \delta^{(l)}_1`),
    or summed over the signal before A' is applied
    (:math:`\partial E/\partial b^{(l)} = \sum_n (\delta^{(l+1)} W^{(l+1)T})_n`)."""
    if p.biases is None:
        return []
    return [
        (
            "grad b is taken from the first example instead of summed over the batch",
            _variant(spec, p, X, Y, bias=lambda l, d, pre: d[0]),
        ),
        (
            "grad b is summed before the activation derivative A' is applied (the signal coming down, not delta)",
            _variant(spec, p, X, Y, bias=lambda l, d, pre: (d if pre is None else pre).sum(axis=0)),
        ),
    ]


def _update_variants(spec: Spec, p: Params, X: np.ndarray, Y: np.ndarray, lr: float | None) -> list[_Variant]:
    r"""One SGD step (``lr`` given) whose deltas come down through the weights already updated:

    .. math::
        \delta^{(l)} = (\delta^{(l+1)} W^{(l+1)T}_{new}) \odot \mathcal{A}'(I^{(l)}),\quad
        W^{(l+1)}_{new} = W^{(l+1)} - \xi\, \partial E/\partial W^{(l+1)}"""
    if lr is None or spec.depth == 1:
        return []
    return [
        (
            "each layer's delta is carried down through the already-updated weights of the layer above "
            "(every delta must come from the old weights)",
            _variant(spec, p, X, Y, lr=lr),
        )
    ]


def _within(x: list[np.ndarray], y: list[np.ndarray], room: list[np.ndarray]) -> list[bool]:
    """Per array: every entry of x within ``room`` of y."""
    return [x_k.shape == y_k.shape and bool(np.all(np.abs(x_k - y_k) <= r_k)) for x_k, y_k, r_k in zip(x, y, room)]


# the largest numerator and denominator of a "small ratio" named as a factor (x3/2, x-1/4): a
# ratio such as 37/41, or 1.00001, fits a proportional array as well, but names a symptom, not a
# mistake (issue 21: "W2 x1.00001" for tanh' evaluated at the layer's output)
_SMALL = 4


def _simple_values(N: int, J: int) -> list[tuple[float, str | None]]:
    """The meaningful factors, the named ones first: (value, its name or None). -1, N, 1/N, J,
    1/J, 1/(N J), and the small ratios +-p/q with p, q <= 4 (+-2, +-1/2, 3/2, ...); never 1."""
    named = [
        (-1.0, "a sign flip (-1 x autograd)"),
        (float(N), f"a factor N = {N} (the mean's 1/N missing)"),
        (1.0 / N, f"a factor 1/N = 1/{N}"),
        (2.0, "a factor 2 (a 1/2 missing?)"),
        (0.5, "a factor 1/2"),
        (float(J), f"a factor J = {J}"),
        (1.0 / J, f"a factor 1/J = 1/{J} (divided by the outputs too)"),
        (1.0 / (N * J), f"a factor 1/(N J) = 1/{N * J} (a torch-style mean over N x J)"),
    ]
    ratios = sorted({Fraction(p, q) for p in range(1, _SMALL + 1) for q in range(1, _SMALL + 1)})
    plain = [(sign * float(r), None) for r in ratios for sign in (1, -1)]
    return [(v, t) for v, t in named if v != 1.0] + [(v, t) for v, t in plain if v != 1.0]


def _factor_text(r: float) -> str:
    """``x3/2``, ``x-1/4``, ``x5``: every candidate is a ratio of small integers."""
    f = Fraction(r).limit_denominator(10**6)
    return f"x{f.numerator}" if f.denominator == 1 else f"x{f.numerator}/{f.denominator}"


def _fit(a: np.ndarray, e: np.ndarray, room: np.ndarray, r: float) -> bool:
    return bool(np.all(np.abs(a - r * e) <= room * max(1.0, abs(r))))


def _relative(a: np.ndarray, e: np.ndarray) -> str:
    """The largest difference from autograd, relative to autograd's largest entry."""
    top = float(np.max(np.abs(e))) if e.size else 0.0
    diff = float(np.max(np.abs(a - e))) if a.size else 0.0
    return f"{diff / top:.2g}" if top > 0 else f"autograd's is 0, yours reaches {diff:.3g}"


def _per_array(
    v: Verdict, names: list[str], a: list[np.ndarray], e: list[np.ndarray], room: list[np.ndarray], bad: list[int]
) -> list[str]:
    """Each failing array explained on its own: zero, a meaningful factor, or the transpose; else
    its relative size, and that no known pattern fits it."""
    N, J = v.case.X.shape[0], v.case.spec.sizes[-1]
    candidates = _simple_values(N, J)
    zero, factors, transposed, unexplained = [], {}, [], []
    for k in bad:
        if np.all(np.abs(a[k]) <= room[k]):
            zero.append(names[k])
            continue
        if a[k].shape == e[k].shape:
            ee = float(np.sum(e[k] * e[k]))
            r = float(np.sum(a[k] * e[k])) / ee if ee > 0 else 0.0
            fitting = [(value, text) for value, text in candidates if _fit(a[k], e[k], room[k], value)]
            if fitting:
                factors[names[k]] = min(fitting, key=lambda x: abs(x[0] - r))
                continue
            if (
                a[k].ndim == 2
                and a[k].shape[0] == a[k].shape[1]
                and not np.all(np.abs(e[k] - e[k].T) <= room[k])
                and np.all(np.abs(a[k] - e[k].T) <= room[k])
            ):
                transposed.append(names[k])
                continue
        unexplained.append(names[k])
    out = []
    if zero:
        out.append(f"zero where autograd is not: {', '.join(zero)}")
    if factors:
        values = {value for value, _ in factors.values()}
        text = next(iter(factors.values()))[1]
        out.append(
            f"{text} in {', '.join(factors)}"
            if len(values) == 1 and text
            else "constant factors per array: " + ", ".join(f"{n} {_factor_text(r)}" for n, (r, _) in factors.items())
        )
    out += [f"{n} is the transpose of autograd's (square layer)" for n in transposed]
    if unexplained:
        sizes = ", ".join(f"{names[k]} {_relative(a[k], e[k])}" for k in bad if names[k] in unexplained)
        out.append(
            f"no known pattern fits {', '.join(unexplained)}; largest difference from autograd, relative to "
            f"autograd's largest entry: {sizes}"
        )
    return out


def diagnose(v: Verdict) -> list[str]:
    """Sentences naming the error's pattern, each verified on the verdict's case; empty when none fits."""
    ref = v.reference
    spec, p, X, Y = ref.spec, ref.params, ref.X, ref.Y
    names = [n for n, _ in ref.grads.arrays()]
    actual, allowed, band = v.arrays
    a, e = _flat(actual), _flat(ref.grads)
    room = [t + b for t, b in zip(_flat(allowed), _flat(band))]
    bad = [k for k, ok in enumerate(_within(a, e, room)) if not ok]
    if not bad:
        return []
    own = entry_findings(ref)
    if own:
        # a user entry that is itself wrong here: named first, and no pattern is fitted on top of it
        # (the variants are built from the entries' own formulas)
        return own
    lr = v.case.lr if v.what == "step_fn" else None
    structural = []
    for text, grads in _variants(spec, p, X, Y, lr):
        g = _flat(grads)
        if not all(_within(g, e, room)) and all(_within(a, g, room)):
            structural.append(text)
    per_array = _per_array(v, names, a, e, room, bad)
    if structural:
        # every pattern that fits is named: on a small case a structural variant and a plain factor
        # can both fit (e.g. the first example's bias gradient and 1/N when the examples agree)
        whole = per_array and not any(text.startswith("no known pattern") for text in per_array)
        return [" or ".join(structural) + (f"; it equally fits {'; '.join(per_array)}" if whole else "")]
    return per_array
