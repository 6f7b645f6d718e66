"""Hypothesis strategies for networks, weights and data, public so users compose their own tests.

Values come from a ``numpy.random.Generator`` seeded by a drawn integer: drawing hundreds of floats
one by one would make each example slow, while the spec (depth, widths, activations, loss, N),
which is what a minimal failing case needs, still shrinks. A drawn ``grid`` flag puts weights and
inputs on multiples of 1/4, where sums are exact in float32 and float64 alike, so ReLU inputs of
exactly 0 occur often and both implementations see the same kink; half of the grid cases with a
layer whose activation has a kink at 0 also get a constructed kink in every such layer (:func:`case_from`, ``kink=True``).

A drawn ``logits`` target (one case in four) scales the output layer's weights and bias so that the
largest output pre-activation :math:`|I^{(L)}|` of the batch is that size (within a factor sqrt(2)
for grid cases, whose factor is a power of two), one of
:data:`LOGIT_TARGETS`: 16 and 24 reach float32-saturated outputs (y* within float32 rounding of 0 or
1, from 16.6 on for sigmoid) and typical "stable branch" thresholds (softplus's 20); 32, 45 and 60
pass torch's bce floor (float64 y*(1 - y*) < 1e-12 from 27.6 on) and float64's own saturation (y*
rounds to 1 from 36.7 on). Every convention of the tolerance model and every typical branch for
large logits is so reached in both dtypes, at the cost of one extra forward pass.

A drawn ``hidden`` target (in the same draw, as often as a logits target) scales every hidden layer
in turn instead, so that each one's largest :math:`|I^{(l)}|` is one of :data:`HIDDEN_TARGETS`: 6
and 10 reach the tails where a "saturated" shortcut for A' (tanh' = 0, silu' = 1 past some |I|) is
off by a few percent, 21 passes softplus's threshold 20 (not on it: torch's softplus jumps by
exp(-20) there, which the objective's bound does not model), 30 and 45 saturate sigmoid and tanh to
their limits in float64. Without it hidden inputs stay within a few units (gains 0.5-2), and a wrong branch for a
hidden layer's large inputs was never drawn.

Options are validated when a strategy is built, not inside a draw: a selection that leaves some loss
without a valid output activation is a ``ValueError`` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from hypothesis import strategies as st

from manual import ACTIVATIONS, LOSSES, Activation, Loss, Params, Spec
from manual.registry import activation as resolve_activation
from manual.registry import loss as resolve_loss

__all__ = [
    "HIDDEN_ACTIVATIONS",
    "LOGIT_TARGETS",
    "TARGET_MODES",
    "Case",
    "case_from",
    "cases",
    "data_for",
    "kink_placeable",
    "narrow",
    "output_pairs",
    "params_for",
    "random_spec",
    "resolve",
    "specs",
]

# the largest |I^(L)| a "logits" draw scales the output layer to (see the module docstring)
LOGIT_TARGETS = (16.0, 24.0, 32.0, 45.0, 60.0)
# the largest |I^(l)| a "hidden" draw scales each hidden layer to (see the module docstring)
HIDDEN_TARGETS = (6.0, 10.0, 21.0, 30.0, 45.0)
# the largest factor a logits or hidden draw scales a layer by
MAX_SCALE = 1024.0

# every registered elementwise activation may be a hidden layer's
HIDDEN_ACTIVATIONS = tuple(name for name, entry in ACTIVATIONS.items() if entry.elementwise)


def _needs_two(output: Activation, loss: Loss) -> bool:
    # a one-unit softmax under a [0, 1]-target loss (bce) is rejected by manual.Spec: J >= 2
    return not output.elementwise and loss.targets == "unit"


def _outputs(loss: Loss, activations: Sequence[Activation], max_width: int) -> list[Activation]:
    return [a for a in activations if loss.accepts(a) and not (_needs_two(a, loss) and max_width < 2)]


def resolve(
    activations: Sequence[str | Activation] | str | Activation | None,
    losses: Sequence[str | Loss] | str | Loss | None,
) -> tuple[tuple[Activation, ...], tuple[Loss, ...]]:
    """Names or entries to entries (``None``: every registered one); ``ValueError`` for an unknown name
    or for two different entries of one name (a report could not tell them apart)."""
    if activations is None:
        acts = tuple(ACTIVATIONS.values())
    else:
        given = (activations,) if isinstance(activations, (str, Activation)) else tuple(activations)
        acts = tuple(dict.fromkeys(resolve_activation(a, f"activations[{k}]") for k, a in enumerate(given)))
    if losses is None:
        loss_entries = tuple(LOSSES.values())
    else:
        given_losses = (losses,) if isinstance(losses, (str, Loss)) else tuple(losses)
        loss_entries = tuple(dict.fromkeys(resolve_loss(x, f"losses[{k}]") for k, x in enumerate(given_losses)))
    for kind, entries in (("activations", acts), ("losses", loss_entries)):
        names = [e.name for e in entries]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{kind} holds two different entries named {twice[0]!r}; give each its own name")
    return acts, loss_entries


def output_pairs(
    activations: Sequence[str | Activation] | None,
    losses: Sequence[str | Loss] | None,
    widths: tuple[int, int],
    depths: tuple[int, int] = (1, 1),
    hidden: Sequence[str | Activation] | None = None,
) -> dict[Loss, list[Activation]]:
    """For each loss, the output activations (from ``activations``) a drawn network may use, with an
    output width in ``widths``; ``ValueError`` when a loss has none, or when deeper networks have no
    hidden activation to draw (from ``hidden``, default ``activations``)."""
    acts, loss_entries = resolve(activations, losses)
    hidden_acts = acts if hidden is None else resolve(hidden, None)[0]
    pairs = {loss: _outputs(loss, acts, widths[1]) for loss in loss_entries}
    empty = [loss for loss, outs in pairs.items() if not outs]
    if empty:
        accepted = "; ".join(
            f"{loss.name} accepts {', '.join(a for a, e in ACTIVATIONS.items() if loss.accepts(e))}"
            + (" or any elementwise activation" if loss.outputs is None else "")
            for loss in empty
        )
        raise ValueError(
            f"losses {tuple(x.name for x in empty)!r} have no valid output activation among "
            f"{tuple(a.name for a in acts)!r} with widths {widths} ({accepted}; softmax with bce needs "
            f"2 or more outputs)"
        )
    if depths[1] > 1 and not any(a.elementwise for a in hidden_acts):
        raise ValueError(
            f"depths {depths} need an elementwise hidden activation (such as {HIDDEN_ACTIVATIONS}), "
            f"got {tuple(a.name for a in hidden_acts)!r}"
        )
    return pairs


@dataclass(frozen=True)
class Case:
    """One drawn problem: a spec, its weights, data, and a learning rate."""

    spec: Spec
    params: Params
    X: Any
    Y: Any
    lr: float
    seed: int
    grid: bool
    gain: float = 1.0
    kink: bool = False
    targets: str = "soft"
    logits: float = 0.0  # the output layer scaled so that max |I^(L)| is this (0: not scaled)
    hidden: float = 0.0  # every hidden layer scaled so that its max |I^(l)| is this (0: not scaled)

    def __repr__(self) -> str:
        return (
            f"Case({self.spec}, N={self.X.shape[0]}, dtype={self.X.dtype}, seed={self.seed}, "
            f"grid={self.grid}, gain={self.gain}, lr={self.lr}{', kink=True' if self.kink else ''}"
            f"{', targets=' + repr(self.targets) if self.targets != 'soft' else ''}"
            f"{f', logits={self.logits:g}' if self.logits else ''}"
            f"{f', hidden={self.hidden:g}' if self.hidden else ''})"
        )

    def rebuild(self, dtype: str | None = None) -> str:
        """The :func:`case_from` call that rebuilds this case from a ``spec`` variable (Reproduce lines)."""
        name = dtype or np.dtype(self.X.dtype).name
        return (
            f"torch_ref.strategies.case_from(spec, N={self.X.shape[0]}, seed={self.seed}, grid={self.grid}, "
            f"gain={self.gain}, lr={self.lr}, dtype=np.{name}"
            + (", kink=True" if self.kink else "")
            + (f", targets={self.targets!r}" if self.targets != "soft" else "")
            + (f", logits={self.logits!r}" if self.logits else "")
            + (f", hidden={self.hidden!r}" if self.hidden else "")
            + ")"
        )


def specs(
    *,
    depths: tuple[int, int] = (1, 5),
    widths: tuple[int, int] = (1, 12),
    activations: Sequence[str | Activation] | None = None,
    losses: Sequence[str | Loss] | None = None,
    bias: bool | None = None,
    reductions: Sequence[str] = ("sum", "mean"),
    hidden_activations: Sequence[str | Activation] | None = None,
    output_activations: Sequence[str | Activation] | None = None,
    output_width: tuple[int, int] | None = None,
) -> st.SearchStrategy[Spec]:
    """A valid :class:`manual.Spec`: hidden activations from ``activations`` (names or
    :class:`manual.Activation` objects; default every registered one; vector-valued ones such as softmax
    only on the output), losses from ``losses`` (default every registered one), an output activation
    that the loss accepts, depth and widths in the given inclusive ranges; about one spec in four has
    all widths equal (square layers).

    ``hidden_activations`` and ``output_activations`` narrow the hidden layers and the output layer
    further (each must lie within ``activations`` when both are given); ``output_width`` draws the
    output width J from its own range instead of ``widths``. Raises ``ValueError`` at once when the
    options leave a loss with nothing to draw, or name an unknown entry."""
    hidden, outputs = narrow(activations, hidden_activations, output_activations)
    out_range = widths if output_width is None else output_width
    pairs = output_pairs(outputs, losses, out_range, depths, hidden)
    return _specs(pairs, [a for a in hidden if a.elementwise], depths, widths, out_range, bias, tuple(reductions))


def narrow(
    activations: Sequence[str | Activation] | str | Activation | None,
    hidden_activations: Sequence[str | Activation] | str | Activation | None,
    output_activations: Sequence[str | Activation] | str | Activation | None,
) -> tuple[tuple[Activation, ...], tuple[Activation, ...]]:
    """The hidden layers' and the output layer's activations: ``activations`` (default every registered
    one) narrowed by ``hidden_activations`` and ``output_activations``. ``ValueError`` for an entry of
    these outside ``activations`` (when it is given), or for a hidden activation that is not
    elementwise."""
    acts = resolve(activations, None)[0]
    chosen = []
    for name, given in (("hidden_activations", hidden_activations), ("output_activations", output_activations)):
        if given is None:
            chosen.append(acts)
            continue
        entries = resolve(given, None)[0]
        if activations is not None:
            outside = [e.name for e in entries if e not in acts]
            if outside:
                raise ValueError(
                    f"{name} {tuple(outside)!r} lie outside activations {tuple(a.name for a in acts)!r}; "
                    f"activations= is what every layer draws from, {name}= narrows it"
                )
        chosen.append(entries)
    hidden, outputs = chosen
    if hidden_activations is not None:
        vector = [e.name for e in hidden if not e.elementwise]
        if vector:
            raise ValueError(
                f"hidden_activations {tuple(vector)!r} are not elementwise; a hidden layer takes one of "
                f"{HIDDEN_ACTIVATIONS} or a user's elementwise entry"
            )
    return hidden, outputs


@dataclass(frozen=True)
class _SpecDraws:
    """The strategies one spec is drawn from, built once per :func:`specs` call: built inside the draw,
    each would be a new object whose properties Hypothesis works out again on every example (a third
    of a drawn case's cost). The draws, and so the cases and their shrinking, are the same either way."""

    pairs: dict[Loss, list[Activation]]
    loss: st.SearchStrategy[Loss]
    output: dict[Loss, st.SearchStrategy[Activation]]
    depth: st.SearchStrategy[int]
    width: st.SearchStrategy[int]
    pick: st.SearchStrategy[int]
    hidden: st.SearchStrategy[Activation]  # nothing() where there are none: then only depth 1 is drawn
    bias: st.SearchStrategy[bool]  # drawn only where the caller left bias open (None)
    reduction: st.SearchStrategy[str]
    out_range: tuple[int, int]
    outputs: dict[tuple[int, int], st.SearchStrategy[int]]


def _specs(
    pairs: dict[Loss, list[Activation]],
    hidden: list[Activation],
    depths: tuple[int, int],
    widths: tuple[int, int],
    out_range: tuple[int, int],
    bias: bool | None,
    reductions: tuple[str, ...],
) -> st.SearchStrategy[Spec]:
    # shrinking moves towards the first entry: "sum", the slides' objective, before "mean"
    lo, hi = out_range
    outputs = {(a, hi): st.integers(a, hi) for a in range(lo, max(lo, 2) + 1) if a <= hi}
    return _draw_spec(
        _SpecDraws(
            pairs,
            st.sampled_from(list(pairs)),
            {loss: st.sampled_from(acts) for loss, acts in pairs.items()},
            st.integers(*depths),
            st.integers(*widths),
            st.integers(0, 3),
            st.sampled_from(hidden),
            st.booleans(),
            st.sampled_from(list(reductions)),
            out_range,
            outputs,
        ),
        bias,
    )


def _outputs_in(d: _SpecDraws, lo: int, hi: int) -> st.SearchStrategy[int]:
    found = d.outputs.get((lo, hi))
    return st.integers(lo, hi) if found is None else found


@st.composite
def _draw_spec(draw: st.DrawFn, d: _SpecDraws, bias: bool | None) -> Spec:
    loss = draw(d.loss)
    output = draw(d.output[loss])
    depth = draw(d.depth)
    lo, hi = d.out_range
    if _needs_two(output, loss):
        lo = max(lo, 2)
    if draw(d.pick) == 0:
        width = draw(d.width)
        sizes = [width] * depth + [width if lo <= width <= hi else draw(_outputs_in(d, lo, hi))]
    else:
        sizes = [draw(d.width) for _ in range(depth)] + [draw(_outputs_in(d, lo, hi))]
    acts = [draw(d.hidden) for _ in range(depth - 1)] + [output]
    use_bias = draw(d.bias) if bias is None else bias
    return Spec(tuple(sizes), tuple(acts), loss, bias=use_bias, reduction=draw(d.reduction))


def random_spec(
    rng: np.random.Generator, *, depths: tuple[int, int] = (1, 5), widths: tuple[int, int] = (1, 12)
) -> Spec:
    """A valid spec drawn with a plain Generator (for scripts that run too many cases for Hypothesis):
    the same space as :func:`specs`, every activation, loss pair, bias and reduction."""
    loss = list(LOSSES.values())[int(rng.integers(len(LOSSES)))]
    depth = int(rng.integers(depths[0], depths[1] + 1))
    if rng.integers(4) == 0:
        sizes = [int(rng.integers(widths[0], widths[1] + 1))] * (depth + 1)
    else:
        sizes = [int(s) for s in rng.integers(widths[0], widths[1] + 1, size=depth + 1)]
    outputs = _outputs(loss, tuple(ACTIVATIONS.values()), widths[1])
    output = outputs[int(rng.integers(len(outputs)))]
    if _needs_two(output, loss):
        sizes[-1] = max(sizes[-1], 2)
    acts: tuple[str | Activation, ...] = (*(str(a) for a in rng.choice(HIDDEN_ACTIVATIONS, size=depth - 1)), output)
    return Spec(tuple(sizes), acts, loss, bias=bool(rng.integers(2)), reduction=str(rng.choice(["sum", "mean"])))


def params_for(
    spec: Spec, rng: np.random.Generator, *, grid: bool = False, gain: float = 1.0, dtype: Any = np.float64
) -> Params:
    """Weights uniform in ``[-gain/sqrt(in), gain/sqrt(in)]``, or on the 1/4 grid in [-1, 1] scaled
    by the power of two nearest ``1/sqrt(in)`` (a power of two keeps the grid's sums exact)."""

    def draw(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        if grid:
            scale = 2.0 ** -round(np.log2(np.sqrt(fan_in)))
            return (rng.integers(-4, 5, size=shape) / 4 * scale).astype(dtype)
        bound = gain / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, size=shape).astype(dtype)

    weights = [draw((i, o), i) for i, o in spec.shapes()]
    biases = [draw((o,), i) for i, o in spec.shapes()] if spec.bias else None
    return Params(weights, biases)


TARGET_MODES = ("soft", "onehot")


def data_for(
    spec: Spec,
    N: int,
    rng: np.random.Generator,
    *,
    grid: bool = False,
    dtype: Any = np.float64,
    targets: str = "soft",
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``X`` (N, D) standard normal clipped to [-3, 3] (or on the 1/4 grid in [-2, 2]) and
    targets ``Y`` (N, J).

    ``targets="soft"`` draws them as the loss's ``targets`` declare: ``"real"`` standard normal,
    ``"unit"`` uniform in [0, 1], ``"simplex"`` rows on the probability simplex, ``"onehot"`` one 1
    per row. ``targets="onehot"`` draws labels, as code written for classification takes them: a
    ``"unit"`` loss (bce) gets entries in {0, 1}, every other loss one 1 per row (class labels,
    one-hot; squared error on one-hot rows as in many textbook networks)."""
    if targets not in TARGET_MODES:
        raise ValueError(f"targets must be one of {TARGET_MODES}, got {targets!r}")
    D, J = spec.sizes[0], spec.sizes[-1]
    if grid:
        X = rng.integers(-8, 9, size=(N, D)) / 4
    else:
        X = np.clip(rng.standard_normal((N, D)), -3, 3)
    kind = spec.loss.targets
    if kind not in ("real", "unit", "simplex", "onehot"):
        raise ValueError(f"loss {spec.loss.name!r} declares targets {kind!r}; known: real, unit, simplex, onehot")
    if targets == "onehot":
        Y = rng.integers(0, 2, size=(N, J)).astype(np.float64) if kind == "unit" else np.eye(J)[rng.integers(J, size=N)]
    elif kind == "real":
        Y = rng.standard_normal((N, J))
    elif kind == "unit":
        Y = rng.uniform(0, 1, size=(N, J))
    elif kind == "onehot":
        Y = np.eye(J)[rng.integers(J, size=N)]
    else:
        # rows on the simplex with entries on the 2^-10 grid: their sums are exactly 1 in float32 and
        # float64 alike, so a float32 case and its float64 reference see the same valid targets
        Y = np.floor(rng.dirichlet(np.ones(J), size=N) * 1024) / 1024
        Y[np.arange(N), Y.argmax(axis=1)] += 1 - Y.sum(axis=1)
    return X.astype(dtype), Y.astype(dtype)


def cases(
    *,
    dtype: Any = np.float64,
    batch: tuple[int, int] = (1, 8),
    gains: Sequence[float] = (0.5, 1.0, 2.0),
    lrs: Sequence[float] = (0.0, 0.01, 0.1, 0.5, 1.0),
    targets: str = "soft",
    where: Callable[[Case], bool] | None = None,
    **spec_options: Any,
) -> st.SearchStrategy[Case]:
    """A :class:`Case`: a spec from :func:`specs` (``spec_options`` pass through), weights (gain from
    ``gains``), N in ``batch``, data (``targets`` as :func:`data_for`), and a learning rate from
    ``lrs``; a grid case with a ReLU layer gets constructed kinks in every ReLU layer half of the
    time. ``where(case) -> bool``, when given, keeps only the cases it accepts."""
    if targets not in TARGET_MODES:
        raise ValueError(f"targets must be one of {TARGET_MODES}, got {targets!r}")
    strategy = _cases(specs(**spec_options), dtype, batch, tuple(gains), tuple(lrs), targets)
    return strategy if where is None else strategy.filter(where)


def _cases(
    spec_strategy: st.SearchStrategy[Spec],
    dtype: Any,
    batch: tuple[int, int],
    gains: tuple[float, ...],
    lrs: tuple[float, ...],
    targets: str,
) -> st.SearchStrategy[Case]:
    # the component strategies built once, as for specs (_SpecDraws); a logits target in one case of
    # four (0.0 first: shrinking moves towards the unscaled case)
    draws = (st.integers(0, 2**32 - 1), st.integers(0, 3), st.sampled_from(list(gains)), st.integers(*batch))
    logits = _logit_draw()
    return _draw_case(spec_strategy, (*draws, st.sampled_from(list(lrs)), st.booleans(), logits), dtype, targets)


def _logit_draw() -> st.SearchStrategy[tuple[float, float]]:
    """``(logits, hidden)``: (0, 0) three times in five, else one of :data:`LOGIT_TARGETS` for the
    output layer or one of :data:`HIDDEN_TARGETS` for the hidden layers."""
    n = len(LOGIT_TARGETS)

    def pick(k: int) -> tuple[float, float]:
        if k < 3 * n:
            return 0.0, 0.0
        if k < 4 * n:
            return LOGIT_TARGETS[k - 3 * n], 0.0
        return 0.0, HIDDEN_TARGETS[k - 4 * n]

    return st.integers(0, 5 * n - 1).map(pick)


@st.composite
def _draw_case(draw: st.DrawFn, spec_strategy: st.SearchStrategy[Spec], draws: tuple, dtype: Any, targets: str) -> Case:
    seed_st, pick_st, gain_st, N_st, lr_st, kink_st, logits_st = draws
    spec = draw(spec_strategy)
    seed = draw(seed_st)
    grid = draw(pick_st) == 0
    gain = draw(gain_st)
    N = draw(N_st)
    lr = draw(lr_st)
    kink = grid and kink_placeable(spec) and draw(kink_st)
    logits, hidden = draw(logits_st)
    if kink or spec.depth == 1:
        hidden = 0.0  # a constructed kink holds for the weights it was built on; no hidden layer to scale
    return case_from(
        spec,
        N=N,
        seed=seed,
        grid=grid,
        gain=gain,
        lr=lr,
        dtype=dtype,
        kink=kink,
        targets=targets,
        logits=logits,
        hidden=hidden,
    )


def case_from(
    spec: Spec,
    *,
    N: int,
    seed: int,
    grid: bool = False,
    gain: float = 1.0,
    lr: float = 0.1,
    dtype: Any = np.float64,
    kink: bool = False,
    targets: str = "soft",
    logits: float = 0.0,
    hidden: float = 0.0,
) -> Case:
    """The :class:`Case` that :func:`cases` would build from these draws (to rebuild a reported case).

    ``kink=True`` (grid values and a ReLU layer needed) gives unit 1 of every ReLU layer an input of
    exactly 0 at the first example (:func:`_place_kinks`), so a wrong ReLU'(0) reaches the gradients
    of every layer. ``logits > 0`` scales the output layer's weights and bias so that the largest
    :math:`|I^{(L)}|` of the batch is ``logits`` (:func:`_scale_logits`); ``hidden > 0`` scales every
    hidden layer in turn so that its largest :math:`|I^{(l)}|` is ``hidden`` (not with ``kink``)."""
    if isinstance(N, bool) or not isinstance(N, int) or N < 1:
        raise ValueError(f"N must be an int >= 1 (the number of examples), got {N!r}")
    if not (isinstance(logits, (int, float)) and np.isfinite(logits) and logits >= 0):
        raise ValueError(
            f"logits must be 0 (not scaled) or the largest |I^(L)| wanted, a finite float > 0; got {logits!r}"
        )
    if not (isinstance(hidden, (int, float)) and np.isfinite(hidden) and hidden >= 0):
        raise ValueError(
            f"hidden must be 0 (not scaled) or the largest |I^(l)| wanted in every hidden layer, a finite float > 0; "
            f"got {hidden!r}"
        )
    if hidden and kink:
        raise ValueError("hidden= and kink=True exclude each other: scaling a layer moves the kinks built below it")
    rng = np.random.default_rng(seed)
    params = params_for(spec, rng, grid=grid, gain=gain, dtype=dtype)
    X, Y = data_for(spec, N, rng, grid=grid, dtype=dtype, targets=targets)
    if kink:
        if not grid or not kink_placeable(spec):
            raise ValueError(
                f"kink=True needs grid=True and a layer whose activation has a kink at 0 (ReLU), got {spec} grid={grid}"
            )
        _place_kinks(spec, params, X)
    for l in range(spec.depth - 1 if hidden else 0):
        _scale_layer(spec, params, X, l, float(hidden), power_of_two=grid)
    if logits:
        _scale_logits(spec, params, X, float(logits), power_of_two=grid)
    return Case(spec, params, X, Y, lr, seed, grid, gain, kink, targets, float(logits), float(hidden))


def _scale_logits(spec: Spec, params: Params, X: np.ndarray, target: float, *, power_of_two: bool) -> None:
    """Scale the output layer so that max |I^(L)| over the batch is ``target`` (:func:`_scale_layer`)."""
    _scale_layer(spec, params, X, spec.depth - 1, target, power_of_two=power_of_two)


def _scale_layer(spec: Spec, params: Params, X: np.ndarray, layer: int, target: float, *, power_of_two: bool) -> None:
    """Scale layer index ``layer``'s weights and bias (in place) so that its max |I| over the batch is
    ``target``: one factor for the whole layer keeps the case's shape (which unit leads, the signs)
    and moves every unit towards its tails. ``power_of_two`` (grid cases) rounds the factor to
    the nearest power of two, which keeps grid sums and constructed kinks exact (max |I| then
    lies within a factor sqrt(2) of ``target``). Nothing is scaled where I is 0 throughout, and by at
    most :data:`MAX_SCALE`."""
    u = X.astype(np.float64)
    xp = array_namespace(u)
    for l, entry in enumerate(spec.activations[: layer + 1]):
        b = None if params.biases is None else params.biases[l].astype(np.float64)
        I = u @ params.weights[l].astype(np.float64) + (0 if b is None else b)
        with np.errstate(all="ignore"):
            u = np.asarray(entry.forward(I, xp))
    top = float(np.max(np.abs(I)))
    if not np.isfinite(top) or top == 0:
        return
    # at most MAX_SCALE: a layer whose inputs are tiny (an underflowed tail above it, gelu(-6) is 0 in
    # float32 and -8e-11 in float64) is not blown up by 1e11, which would turn the two dtypes' rounding
    # of that tail into differences of order 1 (max |I| then stays below the target)
    factor = min(target / top, MAX_SCALE)
    factor = 2.0 ** np.round(np.log2(factor)) if power_of_two else factor
    dtype = params.weights[layer].dtype
    params.weights[layer][...] = (params.weights[layer] * factor).astype(dtype)
    if params.biases is not None:
        params.biases[layer][...] = (params.biases[layer] * factor).astype(dtype)


def kink_placeable(spec: Spec) -> bool:
    """Whether some layer's activation has a kink at 0 (ReLU, leaky ReLU), where grid values can put
    an input exactly."""
    return any(0.0 in entry.kinks for entry in spec.activations)


def _place_kinks(spec: Spec, params: Params, X: np.ndarray) -> None:
    """Make unit 1 of every layer with a kink at 0 (ReLU, leaky ReLU) receive exactly 0 at example 1,
    in place.

    Where the layer's input is exact (grid values through ``exact`` layers only: ReLU, identity) and example
    1 has two nonzero inputs u_i, u_j, column 1 of W gets ``(u_j s, -u_i s)`` at (i, j) and zeros
    elsewhere (bias 0), so I = u_i u_j s - u_j u_i s = 0 from nonzero terms, computed exactly in either
    dtype; with one nonzero input and a bias, the bias cancels it. Otherwise the column (and bias)
    is zero, which gives exactly 0 for every example. Either way the layer above still sees the unit.
    """
    dtype = X.dtype
    u = X.astype(np.float64)
    exact = True
    xp = array_namespace(u)
    for l, entry in enumerate(spec.activations):
        W = params.weights[l]
        b = None if params.biases is None else params.biases[l]
        if 0.0 in entry.kinks:
            W[:, 0] = 0
            if b is not None:
                b[0] = 0
            nonzero = np.flatnonzero(u[0])
            if exact and nonzero.size:
                i = nonzero[0]
                s = 2.0 ** -np.round(np.log2(np.abs(u[0, nonzero[:2]]).max()))
                if nonzero.size >= 2:
                    j = nonzero[1]
                    column = {i: u[0, j] * s, j: -u[0, i] * s}
                    bias = 0.0
                elif b is not None:
                    column, bias = {i: s}, -u[0, i] * s
                else:
                    column, bias = {}, 0.0
                values = [*list(column.values()), bias]
                if all(float(np.asarray(v, dtype=dtype)) == v for v in values):
                    for k, v in column.items():
                        W[k, 0] = v
                    if b is not None:
                        b[0] = bias
        I = u @ W.astype(np.float64) + (0 if b is None else b.astype(np.float64))
        with np.errstate(all="ignore"):
            u = np.asarray(entry.forward(I, xp))
        exact = exact and entry.exact
