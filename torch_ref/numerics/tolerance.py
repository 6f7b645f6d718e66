r"""The tolerance model: how far two correct implementations may part, entry by entry.

Reasoning (first-order rounding analysis, Higham, *Accuracy and Stability of Numerical Algorithms*,
sec. 3.1): a sum of n products computed in floating point in any order is off by at most
:math:`\gamma_n \sum |a_i b_i|`, :math:`\gamma_n = n\varepsilon / (1 - n\varepsilon)`, and an
elementwise function (exp, log, tanh, a division) by a few units of :math:`\varepsilon` of its
result. So every quantity q of the forward and backward pass has an error of at most
:math:`\varepsilon \kappa \, M(q)`, where

- :math:`\kappa = \max(\text{widths}, N) + 1 + 4`: the longest sum (a row of I, a row of
  :math:`\delta W^T`, or the batch sum of :math:`u^T\delta`), one more for the bias, and 4 ulps for
  function evaluation; :math:`\varepsilon` is the dtype's machine epsilon;
- :math:`M(q)` is q's *error magnitude*, computed here by running the same recursion on absolute
  values (the :math:`\sum|a_i b_i|` of each sum) and adding how an error already present in an input
  is carried on (:math:`|\mathcal{A}'|` times the error of I, the error of y* times
  :math:`|\partial \delta / \partial y^*|`, and so on).

Two correct implementations each lie within that bound of the exact value, so they may differ by
``2 * eps * kappa * M`` per entry. This grows with depth (through the recursion), width and N
(through :math:`\kappa` and the sums), and the magnitude of the values (through M), and is 0 where
M is 0 (a ReLU whose input is below 0 gives an exact 0 both ways). Second-order terms
(:math:`\varepsilon^2`) are left out; the absolute floor ``kappa * tiny`` covers underflow.

Every quantity comes from the float64 autograd pass of :mod:`torch_ref.twin.reference` (u, I, O,
:math:`\mathcal{A}'` and :math:`\mathcal{A}''` by autograd of each activation's torch twin, the
deltas), never from :mod:`manual`'s code, so the code under test cannot loosen its own check. What an
entry declares about itself is read as a fact about its formula's rounding: whether it is exact, its
kinks, and the size of the terms its formulas add up (``forward_terms``, ``derivative_terms``, see
:func:`_forward_terms` and :func:`_derivative_error`: one evaluation model for every activation,
built-in or a user's). A loss's terms are hand-derived for squared, bce and ce and modelled by
autograd for any other (:mod:`torch_ref.twin.loss_terms`).

Exact sums (:mod:`torch_ref.numerics.exact`): where ``u @ W + b`` is computed without rounding (grid values,
inputs exact), I has error 0; ReLU and identity add no rounding of their own, so such exactness
is carried through every ReLU/identity layer, and a ReLU input of exactly 0 there is checked exactly
(subgradient 0), in the first layer and in every deeper one.

One convention is not rounding: torch's ``BCELoss`` divides by :math:`\max(y^*(1-y^*), 10^{-12})`.
Where y*(1 - y*) lies below that floor (:attr:`Reference.floored`), torch's delta shrinks towards 0
while the exact one does not. Both are right, and nothing else is (issue 21): there are two
references, torch's and the exact objective's (``Reference.exact_grads`` ...), each with its own
rounding bound and no allowance for the other (``Tolerance.exact``; :func:`references`), and a result
must follow one of them as a whole (:func:`torch_ref.numerics.compare.compare_either`). The band that once
accepted anything between them also accepted the exact value with its sign flipped.

Decision on "undetermined" outputs (issue 21, item 1): where the divisor max(y*(1 - y*), floor)
lies within the rounding of y* itself (``unit * |y*|``: float32 outputs within about kappa * 1e-7
of 1), a division by y*(1 - y*) has no correct digit, so a derivation that divides there is not
right there and must fail (the verdict says unstable where the other dtype's re-run verifies lost
digits). Every output bce accepts has a stable form (sigmoid: y* - y; softmax: the exact delta from
the logits, ``twins.LossTwin.exact``), so those rows are judged on that form's rounding bound
(``_loss_terms.bce_stable_*``), for both references, with no allowance: the old bound
(|y*| + |y|)/1e-12 reached every weight and accepted 1.5x gradients. A floored loss without a stable
form for its output (none exists now) would be judged on the rounding of the value itself: strict,
never a pass by allowance.

One place is not smooth: an input within its rounding error of a kink (ReLU, leaky ReLU at 0) may
come out on either side of it, so A' may be 0 in one implementation and 1 in the other (ReLU). Such entries (:func:`_kink`) get
an allowance of the whole term that A' multiplies, carried on through the recursion.

The objective gets a bound of its own (``objective``): each output's loss term evaluated on absolute
values plus the error of y* (or of I for the losses taken from logits) carried on, summed over
N x J terms.

Beyond the derived bound, :func:`rounding_band` is the rounding-level band the oracle calls
*precision*: ``rtol * (s + max s)`` per array, ``s = |expected| + allowed``, rtol being
``torch.testing.assert_close``'s default for the dtype (float64 1e-7, float32 1.3e-6); its absolute
part is taken from the array's own scale instead of assert_close's fixed atol, so the band means the
same for gradients of any size. The project's own tests use the derived bound only.

A wrong derivation (a factor, a sign, a missing :math:`\mathcal{A}'`) moves a gradient by an amount
of the order of the gradient itself, orders of magnitude above this bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from manual import Activation, Params, Spec

from ..twin.reference import Reference, reference
from ..twins import LossTwin, loss_twin
from .exact import exact_entries, significand_bits

__all__ = ["QUANTITIES", "RTOL", "Tolerance", "references", "rounding_band", "tolerance"]

# what references() can give: the gradients, every layer's delta, dObjective/dX, one SGD step
QUANTITIES = ("gradients", "deltas", "input", "update")
TORCH_LABEL = "torch's values (BCELoss's floor)"
EXACT_LABEL = "the exact values (no floor)"

# torch.testing.assert_close's default rtol per dtype (its documentation's table)
RTOL = {"float64": 1e-7, "float32": 1.3e-6}


@dataclass(frozen=True)
class Tolerance:
    """Allowed per-entry differences (absolute), each shaped like the quantity it bounds.

    Attributes:
        grads: for the gradients, in the layout of ``Params``.
        deltas: ``deltas[l-1]`` for :math:`\\delta^{(l)}`, shape ``(N, sizes[l])``.
        input: for dObjective/dX, shape ``(N, D)``.
        eps, kappa: the dtype's epsilon and the operation count used.
        update: for the weights after one SGD step (when ``lr`` was given).
        objective: for the objective's value.
        conventions: the numerical conventions in effect, in words.
        exact: where torch's bce floor is in effect, the allowances of the same quantities around
            the exact reference (no floor), each reference with its own rounding bound; else None.
    """

    grads: Params
    deltas: tuple[np.ndarray, ...]
    input: np.ndarray
    eps: float
    kappa: int
    update: Params | None = None
    conventions: tuple[str, ...] = ()
    objective: float = 0.0
    exact: Tolerance | None = None

    @property
    def for_exact(self) -> Tolerance:
        """The allowances for the exact reference (:attr:`torch_ref.twin.reference.Reference.exact_grads`
        and the rest): its own where torch's bce floor is in effect, else this one."""
        return self if self.exact is None else self.exact


def references(ref: Reference, tol: Tolerance, quantity: str) -> list[tuple[str, list, list]]:
    """The right references for ``quantity`` (one of :data:`QUANTITIES`) as ``(label, expected,
    allowed)``, arrays in the order of ``Params.arrays()`` (or of the layers): torch's alone, or where
    torch's bce floor is in effect, torch's and the exact one, each with its own rounding bound.
    Hand them to :func:`torch_ref.numerics.compare.compare_either` (with a band of None, or one per array)."""
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {QUANTITIES}, got {quantity!r}")
    exact = tol.for_exact

    def pick(r_values: Any, t: Tolerance) -> tuple[list, list]:
        if quantity == "gradients":
            return [a for _, a in r_values.arrays()], [a for _, a in t.grads.arrays()]
        if quantity == "deltas":
            return list(r_values), list(t.deltas)
        if quantity == "input":
            return [r_values], [t.input]
        if t.update is None:
            raise ValueError("the update's references need a reference pass and tolerance prepared with lr")
        return [a for _, a in r_values.arrays()], [a for _, a in t.update.arrays()]

    torch_name, exact_name = {
        "gradients": ("grads", "exact_grads"),
        "deltas": ("delta", "exact_deltas"),
        "input": ("input", "exact_input"),
        "update": ("updated", "exact_updated"),
    }[quantity]
    if not ref.two_references:
        return [("torch's values", *pick(getattr(ref, torch_name), tol))]
    return [(TORCH_LABEL, *pick(getattr(ref, torch_name), tol)), (EXACT_LABEL, *pick(getattr(ref, exact_name), exact))]


def rounding_band(expected: Any, dtype: Any, allowed: Any = 0.0) -> np.ndarray:
    """The rounding-level band around ``expected`` for ``dtype``: ``rtol (s + max s)`` with
    ``s = |e| + allowed``, the size of the values accepted (the allowance only matters where a
    convention widens it, e.g. below torch's bce floor); see the module docstring."""
    s = np.abs(np.asarray(expected, dtype=np.float64)) + np.asarray(allowed, dtype=np.float64)
    return RTOL[np.dtype(dtype).name] * (s + s.max(initial=0.0))


def _forward_terms(entry: Activation, I: np.ndarray, O: np.ndarray, dA: np.ndarray) -> np.ndarray:
    """The rounding scale of A(I): the entry's ``forward_terms`` where it declares them (every
    built-in does), else |O| + |I| max(|A'|, 1) (see the comment where it is used)."""
    default = np.abs(O) + np.abs(I) * np.maximum(dA, 1.0)
    if entry.forward_terms is None:
        return default
    with np.errstate(all="ignore"):
        declared = np.abs(np.asarray(entry.forward_terms(I, np), dtype=np.float64))
    return np.where(np.isfinite(declared), np.maximum(declared, np.abs(O)), default)


def _derivative_error(entry: Activation, ref: Reference, l: int, e_I: np.ndarray, underflow: float) -> np.ndarray:
    r"""The magnitude of A'(I)'s error in layer l (error <= unit * magnitude), for any elementwise entry:

    .. math::
        |A''| (e_I + |I|) + T(I) + (1 + |I|)\,\text{tiny} / \text{unit}

    I's error carried on (:math:`|A''| e_I`, A'' by double autograd of the twin); and a correct
    formula's own rounding, modelled as an exact evaluation on I perturbed relatively
    (:math:`|A''||I|`) whose result is accurate to the rounding unit of *the terms it adds up*,
    :math:`T(I)`, which can be far larger than A' itself: sigmoid's O(1 - O) at a saturated O, gelu's
    0.5 (1 + t) + 0.5 I (1 - t^2) ... where tanh is near -1 (terms of order I^3 that cancel), silu's
    s (1 + I (1 - s)). Two correct formulas (and two libraries' tanh) differ there by about a unit of
    T, not of A'. T is the entry's ``derivative_terms`` where it declares one (every built-in
    does), else :math:`\max(|A'|, 1)(1 + |I|)`: terms of the order of the derivative's scale, times
    the input, as in most formulas written from I. An ``exact`` entry (ReLU, identity) has only the
    first term. And, like an output, an intermediate that underflows is off by up to the dtype's
    smallest normal number whatever its size, which the formula may multiply by a factor of order
    1 + |I|: silu' = s (1 + I (1 - s)) at I = -88.9 in float32 is 0 both in NumPy (1 / (1 + exp(88.9))
    = 1/inf) and in torch, while it is -2.2e-37, a normal number. This is conservative by design; a
    wrong derivative is off by the order of A' itself.
    """
    d2A, dA, I = np.abs(ref.second(l)), np.abs(ref.first(l)), ref.I[l]
    if entry.exact:
        return d2A * e_I
    default = np.maximum(dA, 1.0) * (1 + np.abs(I))
    terms = default
    if entry.derivative_terms is not None:
        with np.errstate(all="ignore"):
            declared = np.abs(np.asarray(entry.derivative_terms(I, np), dtype=np.float64))
        terms = np.where(np.isfinite(declared), declared, default)
    return d2A * (e_I + np.abs(I)) + np.maximum(terms, dA) + (1 + np.abs(I)) * underflow


def _floor_undetermined(twin: LossTwin, O: np.ndarray, unit: float) -> np.ndarray:
    """1 where a floored loss's divisor max(y*(1 - y*), floor) (bce) lies within the rounding of y*
    itself (``unit * |y*|``: 1 - y* computed by subtraction is off by that much), else 0: there a
    division by y*(1 - y*) as torch writes it has no correct digit in the checked dtype. In float64
    the floor (1e-12) lies far above that rounding, so this does not happen at the drawn sizes; in
    float32 it is every y* within about kappa * 1e-7 of 1 (or 0 and 1 both, for y* itself 0)."""
    if twin.floor is None:
        return np.zeros_like(O)
    return (np.maximum(O * (1 - O), twin.floor) <= unit * np.abs(O)).astype(np.float64)


def _kink(entry: Activation, I: np.ndarray, e_I: np.ndarray, unit: float) -> np.ndarray:
    """1 where an input lies within its own rounding error of one of the activation's kinks, else 0.

    There the computed side of the kink, and so A'(I) (ReLU: 0 or 1), depends on the order of the
    sums: both answers are correct for the I each implementation computed, so such an entry is
    allowed to differ by the whole of what A' multiplies. Strict: an I computed without rounding
    (e_I = 0) is no ambiguity at all, and there the subgradient is checked exactly.
    """
    near = np.zeros(I.shape, dtype=bool)
    for k in entry.kinks:
        near |= np.abs(I - k) < unit * e_I
    return near.astype(np.float64)


def _output_magnitude(
    spec: Spec,
    twin: LossTwin,
    ref: Reference,
    e_I: np.ndarray,
    e_O: np.ndarray,
    M_dA: np.ndarray | None,
    general: bool,
) -> np.ndarray:
    """M(delta^(L)): the evaluation of the delta formula on absolute values plus y*'s error carried on."""
    O, Y = ref.O[-1], ref.Y
    if spec.canonical and not general:
        return e_O + np.abs(O) + np.abs(Y)  # delta = y* - y
    out = spec.activations[-1]
    if not out.elementwise:
        # delta = h - y* sum(h), h = y* ⊙ dL/dy*
        h, h_abs, ch = twin.terms.softmax(O, Y, e_O)
        s = np.sum(h, axis=-1, keepdims=True)
        s_abs = np.sum(h_abs, axis=-1, keepdims=True)
        # an error already in h goes through softmax's vector-Jacobian product, whose row j is
        # (1 - y*_j) at j and -y*_j elsewhere: at a y*_j near 1 its own error is multiplied by 1 - y*_j
        # (both terms of h - y* sum(h) hold it; first order), not by 2
        stable = twin.terms.stable.get(out.name)
        if stable is not None:
            # delta is a smooth function of I whatever formula evaluates it, so the error carried from
            # I is the stable form's (its J e_O and the q's relative error), while this formula's own
            # rounding is its terms plus y*'s own rounding (|y*|, as in 1 - y* by subtraction) carried
            # through h and the vector-Jacobian product: the same O in h and in y* sum(h) is one error
            # (issue 21: the independent model was 1e6 times too wide at y* = 1 - 1e-6)
            _, _, own = twin.terms.softmax(O, Y, np.abs(O))
            vjp_own = own * np.abs(1 - O) + O * (np.sum(own, axis=-1, keepdims=True) - own)
            return h_abs + O * s_abs + vjp_own + stable(ref.I[-1], O, Y, e_I, e_O)
        others = np.sum(ch, axis=-1, keepdims=True) - ch
        carried = ch * np.abs(1 - O) + O * others + e_O * np.abs(s)
        return h_abs + O * s_abs + carried
    cancelled = twin.terms.cancelled.get(out.name)
    if cancelled is not None and out.name in spec.loss.cancelled:
        return cancelled(O, Y, e_O)
    g, G, c = twin.terms.gradient(O, Y, e_O)
    dA = np.abs(ref.first(spec.depth - 1))
    return dA * (G + c) + np.abs(g) * M_dA


def tolerance(
    spec: Spec,
    params: Params,
    X: Any,
    Y: Any,
    *,
    dtype: Any = None,
    general: bool = False,
    lr: float | None = None,
    reference_pass: Reference | None = None,
) -> Tolerance:
    """The allowed differences between two correct computations of the gradients, deltas, input
    gradient and objective of ``spec`` at ``params`` on ``(X, Y)``, in ``dtype`` (default: that of ``X``).

    Args:
        general: take the output delta's magnitude from the general formula
            :math:`\\partial L/\\partial y^* \\odot \\mathcal{A}'` even for a canonical pair (for
            comparing the two formulas with each other).
        lr: when given, also bound the weights after one SGD step (``update``): the gradient's
            allowance times lr, plus the rounding of ``W - lr * grad``.
        reference_pass: the float64 :func:`torch_ref.twin.reference.reference` of this case, when the
            caller already has it (else it is computed).
    """
    dtype = np.dtype(str(dtype if dtype is not None else X.dtype).removeprefix("torch."))
    ref = reference_pass if reference_pass is not None else reference(spec, params, X, Y)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return _tolerance(spec, ref, dtype, general, lr)


@dataclass(frozen=True)
class _Rounding:
    r"""The rounding constants of one case in one dtype (see the module docstring): the dtype's
    epsilon and smallest normal number, :math:`\kappa = \max(\text{widths}, N) + 1 + 4`, and
    ``unit`` :math:`= 2 \varepsilon \kappa`, two implementations' errors together."""

    eps: float
    tiny: float
    kappa: int
    unit: float


def _rounding(spec: Spec, N: int, dtype: np.dtype) -> _Rounding:
    eps, tiny = float(np.finfo(dtype).eps), float(np.finfo(dtype).tiny)
    kappa = max(max(spec.sizes), N) + 1 + 4
    return _Rounding(eps, tiny, kappa, 2 * eps * kappa)


@dataclass(frozen=True)
class _Forward:
    """The forward pass's error magnitudes (error <= unit * magnitude), one array per layer: ``e_u``
    (u^(l); X first, exact, and the network's output last), ``e_I``, ``e_O``, and ``M_dA``, that of
    A'(I^(l)) (None for a vector-valued entry, whose Jacobian the output delta's magnitude covers)."""

    e_u: list[np.ndarray]
    e_I: list[np.ndarray]
    e_O: list[np.ndarray]
    M_dA: list[np.ndarray | None]


def _tolerance(spec: Spec, ref: Reference, dtype: np.dtype, general: bool, lr: float | None) -> Tolerance:
    """The tolerance assembled: the forward magnitudes, the output delta's term and the conventions
    that replace it (undetermined rows; the exact reference below bce's floor), the backward
    recursion from it for each right reference, and the objective's bound."""
    N = ref.X.shape[0]
    r = _rounding(spec, N, dtype)
    fwd = _forward_magnitudes(spec, ref, dtype, r)
    twin = loss_twin(spec.loss)
    scale = 1.0 / N if spec.reduction == "mean" else 1.0
    M_L = _output_term(spec, twin, ref, fwd, r, general)
    M_L, undetermined = _undetermined(spec, twin, ref, fwd, r, dtype, scale, M_L)
    M_exact, floored = _exact_term(spec, twin, ref, fwd, scale, M_L)
    conventions = tuple(text for text in (undetermined, floored) if text is not None)
    grads, deltas, grad_input, update = _bounds(spec, ref, ref.delta, scale * M_L, fwd, r, lr, ref.grads)
    exact = None
    if M_exact is not None:
        g_x, d_x, i_x, u_x = _bounds(spec, ref, ref.exact_deltas, scale * M_exact, fwd, r, lr, ref.exact_grads)
        exact = Tolerance(g_x, d_x, i_x, r.eps, r.kappa, u_x, conventions)
    objective = _objective_bound(spec, twin, ref, fwd, r, scale)
    return Tolerance(grads, deltas, grad_input, r.eps, r.kappa, update, conventions, objective, exact)


# ------------------------------------------------------------------------------------------ forward


def _forward_magnitudes(spec: Spec, ref: Reference, dtype: np.dtype, r: _Rounding) -> _Forward:
    """The error magnitudes of every u, I and O (:func:`_forward_errors`) and of every A'(I)
    (:func:`_derivative_error`)."""
    e_u, e_I, e_O = _forward_errors(spec, ref, dtype, r.unit, r.tiny)
    M_dA = [
        None if not entry.elementwise else _derivative_error(entry, ref, l, e_I[l], r.tiny / r.unit)
        for l, entry in enumerate(spec.activations)
    ]
    return _Forward(e_u, e_I, e_O, M_dA)


def _forward_errors(
    spec: Spec, ref: Reference, dtype: np.dtype, unit: float, tiny: float
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Error magnitudes of every u, I and O (error <= unit * magnitude)."""
    bits = significand_bits(dtype)
    e_u, e_I, e_O = [np.zeros_like(ref.X)], [], []
    for l, entry in enumerate(spec.activations):
        eI = _sum_error(ref, l, e_u[l], bits)
        eO = _activation_error(entry, ref, l, eI, unit, tiny / unit)
        e_I.append(eI)
        e_O.append(eO)
        e_u.append(eO)
    return e_u, e_I, e_O


def _sum_error(ref: Reference, l: int, e_u: np.ndarray, bits: int) -> np.ndarray:
    r"""The error magnitude of :math:`I = u W + b`: the sums on absolute values and u's error
    carried on, :math:`|u||W| + |b| + e_u |W|`; 0 where the sum is computed without rounding
    (:func:`torch_ref.numerics.exact.exact_entries`)."""
    p = ref.params
    u, W = ref.u[l], p.weights[l]
    b = None if p.biases is None else p.biases[l]
    absW = np.abs(W)
    eI = np.abs(u) @ absW + (0 if b is None else np.abs(b)) + e_u @ absW
    return np.where(exact_entries(u, W, b, e_u, bits), 0.0, eI)


def _activation_error(
    entry: Activation, ref: Reference, l: int, eI: np.ndarray, unit: float, underflow: float
) -> np.ndarray:
    r"""The error magnitude of :math:`O = \mathcal{A}(I)` in layer l, given I's (``eI``)."""
    O = ref.O[l]
    if not entry.elementwise:
        return O * (eI + np.max(eI, axis=-1, keepdims=True)) + O + underflow
    if entry.exact:
        # exact functions of I: no rounding and no underflow of their own
        return np.maximum(np.abs(ref.first(l)), _kink(entry, ref.I[l], eI, unit)) * eI
    # I's error carried on; the formula's own rounding, accurate to the rounding unit of the
    # terms it adds up (_forward_terms: |O| for most, |I| for gelu's I/2 (1 + tanh(.)), which
    # is off by about a unit of |I| near tanh = -1 while O is tiny); and an output
    # that underflows is off by up to the smallest normal number, whatever its size, times a
    # factor of order 1 + |I| where the formula multiplies the underflowed part (silu's I s)
    # (1 / (1 + exp(-z)) gives 0 once exp(-z) overflows, where sigmoid(z) is still about 3e-39
    # in float32; the bce and ce divisions by y* can magnify that, so it is an error of its own)
    dA = np.abs(ref.first(l))
    return dA * eI + _forward_terms(entry, ref.I[l], O, dA) + (1 + np.abs(ref.I[l])) * underflow


# ------------------------------------------------------------------------------------------ output and loss


def _output_term(spec: Spec, twin: LossTwin, ref: Reference, fwd: _Forward, r: _Rounding, general: bool) -> np.ndarray:
    r"""M(delta^(L)) before any convention: the delta formula's magnitude (:func:`_output_magnitude`)
    and, at an output within its rounding of a kink, the whole of what A' multiplies there,
    :math:`|\partial L/\partial y^*| / \text{unit} + G`."""
    M_L = _output_magnitude(spec, twin, ref, fwd.e_I[-1], fwd.e_O[-1], fwd.M_dA[-1], general)
    out = spec.activations[-1]
    if out.kinks:
        g, G, _ = twin.terms.gradient(ref.O[-1], ref.Y, fwd.e_O[-1])
        M_L = M_L + _kink(out, ref.I[-1], fwd.e_I[-1], r.unit) * (np.abs(g) / r.unit + G)
    return M_L


def _objective_bound(spec: Spec, twin: LossTwin, ref: Reference, fwd: _Forward, r: _Rounding, scale: float) -> float:
    r"""The objective's allowance: N x J terms summed, each with its own evaluation error,
    :math:`2 \varepsilon \max(\kappa, NJ + 5) \sum_{n,j} T_{nj} + \text{tiny}` (times 1/N for the mean)."""
    terms = twin.terms.objective(spec.activations[-1].name, ref.I[-1], ref.O[-1], ref.Y, fwd.e_I[-1], fwd.e_O[-1])
    return scale * 2 * r.eps * max(r.kappa, ref.Y.size + 5) * float(np.sum(terms)) + r.tiny


# ------------------------------------------------------------------------------------------ conventions


def _stable_term(spec: Spec, twin: LossTwin, ref: Reference, fwd: _Forward, scale: float) -> np.ndarray:
    """M(delta^(L)) of a floored loss's stable form for this output (its own terms); without one,
    the rounding of the exact delta's value itself (strict, never a pass by allowance)."""
    O_L, Y = ref.O[-1], ref.Y
    stable = twin.terms.stable.get(spec.activations[-1].name)
    if stable is not None:
        return stable(ref.I[-1], O_L, Y, fwd.e_I[-1], fwd.e_O[-1])
    return np.abs(ref.exact_delta) / scale + np.abs(O_L) + np.abs(Y) + fwd.e_O[-1]


def _undetermined(
    spec: Spec,
    twin: LossTwin,
    ref: Reference,
    fwd: _Forward,
    r: _Rounding,
    dtype: np.dtype,
    scale: float,
    M_L: np.ndarray,
) -> tuple[np.ndarray, str | None]:
    """``M_L`` with the rows where a floored loss is undetermined (:func:`_floor_undetermined`)
    judged on the stable form's bound, and the convention in words (None where there are none)."""
    undetermined = _floor_undetermined(twin, ref.O[-1], r.unit)
    rows = undetermined.any(axis=-1, keepdims=True)
    if not rows.any():
        return M_L, None
    # no allowance: the division by max(y*(1 - y*), floor) has no correct digit in this dtype in
    # these rows, so torch's formula (and any other that divides) cannot be evaluated there; a
    # right result there is the stable form's, judged on that form's own rounding bound (both
    # references). Without a stable form, on the rounding of the value itself (strict)
    out = spec.activations[-1].name
    text = (
        f"{spec.loss.name} undetermined in {dtype.name}: {int(undetermined.sum())} output(s) with max(y*(1 - y*), "
        f"{twin.floor:.3g}) within the rounding error of y*; a division by y*(1 - y*) has no correct digit there, "
        f"so those rows are judged on the rounding bound of the stable form"
        + (f" ({twin.hints[out]})" if out in twin.hints else "")
        + " and nothing more is allowed"
    )
    return np.where(rows, _stable_term(spec, twin, ref, fwd, scale), M_L), text


def _exact_term(
    spec: Spec, twin: LossTwin, ref: Reference, fwd: _Forward, scale: float, M_L: np.ndarray
) -> tuple[np.ndarray | None, str | None]:
    """Where torch's bce floor is in effect, the exact reference's M(delta^(L)) and the convention
    in words; else ``(None, None)``."""
    if not ref.two_references:
        return None, None
    # torch's BCELoss backward divides by max(y*(1 - y*), 1e-12): below the floor its delta shrinks
    # towards 0 while the exact one does not. Two references, each with its own rounding bound and
    # no allowance for the other: torch's (its formula's terms, as above) and the exact one (the
    # stable form's terms in the floored rows); a result must follow one of them as a whole
    floored_rows = ref.floored.any(axis=-1, keepdims=True)
    text = (
        f"{spec.loss.name} floor: {int(ref.floored.sum())} output(s) with y*(1 - y*) below torch's floor "
        f"{twin.floor:.9g}; torch's BCELoss divides by max(y*(1 - y*), 1e-12) there, so its gradient "
        f"shrinks towards 0, while the exact derivative does not; a result must follow one of the two "
        f"as a whole, each within its own rounding bound"
    )
    return np.where(floored_rows, _stable_term(spec, twin, ref, fwd, scale), M_L), text


# ------------------------------------------------------------------------------------------ backward


def _bounds(
    spec: Spec,
    ref: Reference,
    delta: tuple[np.ndarray, ...],
    M_L: np.ndarray,
    fwd: _Forward,
    r: _Rounding,
    lr: float | None,
    g_ref: Params,
) -> tuple[Params, tuple[np.ndarray, ...], np.ndarray, Params | None]:
    """The allowances of the gradients, the deltas, the input gradient and the update around one
    reference (its deltas ``delta`` and gradients ``g_ref``), from its output delta's magnitude M_L down."""
    M = _backward_magnitudes(spec, ref, delta, M_L, fwd, r.unit)
    grads = _gradient_allowances(ref, delta, M, fwd.e_u, r)
    grad_input = (M[0] + np.abs(delta[0])) @ np.abs(ref.params.weights[0]).T
    update = None if lr is None else _update_allowance(ref.params, grads, g_ref, lr, r)
    return grads, tuple(_allow(m, r) for m in M), _allow(grad_input, r), update


def _allow(m: np.ndarray, r: _Rounding) -> np.ndarray:
    """A magnitude's allowance: unit * m, and the absolute floor kappa * tiny (underflow)."""
    return r.unit * m + r.kappa * r.tiny


def _backward_magnitudes(
    spec: Spec, ref: Reference, delta: tuple[np.ndarray, ...], M_L: np.ndarray, fwd: _Forward, unit: float
) -> list[np.ndarray]:
    """M(delta^(l)) for every layer, from the output's M_L down (:func:`_layer_magnitude`)."""
    M = [M_L]
    for l in range(spec.depth - 2, -1, -1):
        M.insert(0, _layer_magnitude(spec.activations[l], ref, l, delta[l + 1], M[0], fwd, unit))
    return M


def _layer_magnitude(
    entry: Activation, ref: Reference, l: int, delta_above: np.ndarray, M_above: np.ndarray, fwd: _Forward, unit: float
) -> np.ndarray:
    r"""M(delta^(l)) from the layer above's, through :math:`\delta^{(l)} = (\delta^{(l+1)} W^T) \odot \mathcal{A}'`:

    .. math::
        c |\mathcal{A}'| + (|\delta^{(l+1)} W^T| + \text{unit}\, c)\, M(\mathcal{A}') + \text{kink},
        \quad c = (M(\delta^{(l+1)}) + |\delta^{(l+1)}|)\, |W|^T
    """
    W = ref.params.weights[l + 1]
    back = delta_above @ W.T
    carried = (M_above + np.abs(delta_above)) @ np.abs(W).T
    # at an ambiguous kink the other implementation multiplies its own back (|back| give or
    # take unit * carried) by 1 instead of 0
    kink = _kink(entry, ref.I[l], fwd.e_I[l], unit) * (np.abs(back) / unit + carried)
    # A' is itself off by unit * M_dA, and multiplies the other implementation's signal, which
    # may be larger than ours by unit * carried (second order)
    return carried * np.abs(ref.first(l)) + (np.abs(back) + unit * carried) * fwd.M_dA[l] + kink


def _gradient_allowances(
    ref: Reference, delta: tuple[np.ndarray, ...], M: list[np.ndarray], e_u: list[np.ndarray], r: _Rounding
) -> Params:
    r"""The allowances of :math:`\partial E/\partial W = u^T \delta` and :math:`\partial E/\partial b = \sum_n \delta_n`."""
    # u's own error multiplies the other side's delta, |delta| + unit * M
    grad_W = [
        np.abs(u).T @ (m + np.abs(d)) + e.T @ (np.abs(d) + r.unit * m) for u, m, d, e in zip(ref.u, M, delta, e_u)
    ]
    if ref.params.biases is None:
        return Params([_allow(m, r) for m in grad_W], None)
    grad_b = [np.sum(m + np.abs(d), axis=0) for m, d in zip(M, delta)]
    return Params([_allow(m, r) for m in grad_W], [_allow(m, r) for m in grad_b])


def _update_allowance(p: Params, grads: Params, g_ref: Params, lr: float, r: _Rounding) -> Params:
    r"""The weights after one SGD step, :math:`W - \xi g`: the gradient's allowance G scaled by
    :math:`\xi`, and one rounding of each result, :math:`\xi G + 2\varepsilon(|W| + \xi |g|) + \text{tiny}`."""

    def step(W: np.ndarray, G: np.ndarray, g: np.ndarray) -> np.ndarray:
        return lr * G + 2 * r.eps * (np.abs(W) + lr * np.abs(g)) + r.tiny

    return Params(
        [step(W, G, g) for W, G, g in zip(p.weights, grads.weights, g_ref.weights)],
        None
        if p.biases is None or grads.biases is None or g_ref.biases is None
        else [step(b, G, g) for b, G, g in zip(p.biases, grads.biases, g_ref.biases)],
    )
