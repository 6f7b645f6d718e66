"""The adversarial campaign's families (scripts/adversarial_campaign.py): wrong results confined to
the regime of one allowance each, and how a case of that regime is drawn.

A first-order wrong result here is a right derivation (``manual.gradients``, which evaluates every
output delta in its stable form) changed by a factor ``c`` in the rows where the regime holds, as a
"stable branch" taken for large logits would be: the rows are chosen by the derivation's own forward
pass in the case's dtype, as such a branch would choose them. The wrong trainers, second-order and
data-parallel results are those of the other ``adversaries_*`` modules, drawn here in their regimes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

import manual
from manual import Params, Spec

Rows = Callable[[np.ndarray, str], np.ndarray]


# ------------------------------------------------------------------------------------------ regimes


def floored(O: np.ndarray, dtype: str) -> np.ndarray:
    """Rows with an output past torch's bce floor, y*(1 - y*) < 1e-12, as the derivation computes y*."""
    return np.any(O * (1 - O) < 1e-12, axis=-1)


def saturated(O: np.ndarray, dtype: str) -> np.ndarray:
    """Rows with an output whose y*(1 - y*) is at most sqrt(eps) of the dtype (1 - y* has lost half its
    digits), the rows where a saturation allowance would apply."""
    return np.any(O * (1 - O) <= np.sqrt(np.finfo(dtype).eps), axis=-1)


def rounded_to_one(O: np.ndarray, dtype: str) -> np.ndarray:
    """Rows with an output within a few units of rounding of 0 or 1 in the dtype (y*(1 - y*) below
    4 eps), where 1 - y* has no correct digit."""
    return np.any(O * (1 - O) < 4 * np.finfo(dtype).eps, axis=-1)


# ------------------------------------------------------------------------------------------ wrong results


def _rows_part(spec: Spec, params: Params, X: Any, Y: Any, rows: np.ndarray) -> Params:
    """The rows' share of the objective's gradient (the sum over those rows; divided by the whole N for a mean)."""
    g = manual.gradients(spec, params, X[rows], Y[rows])
    share = rows.sum() / X.shape[0] if spec.reduction == "mean" else 1.0
    return g.map(lambda a: a * share)


def scaled_in(regime: Rows, c: float) -> Callable[[Spec, Params, Any, Any], Params]:
    """A grad_fn right outside ``regime``'s rows and ``c`` times the right gradient's share inside them."""

    def grad_fn(spec: Spec, params: Params, X: Any, Y: Any) -> Params:
        g = manual.gradients(spec, params, X, Y)
        rows = regime(np.asarray(manual.forward(spec, params, X).prediction), np.dtype(X.dtype).name)
        if not rows.any():
            return g
        part = _rows_part(spec, params, X, Y, rows)
        return Params(
            [a + (c - 1) * b for a, b in zip(g.weights, part.weights)],
            None if g.biases is None else [a + (c - 1) * b for a, b in zip(g.biases, part.biases)],
        )

    grad_fn.__name__ = f"x{c:g}_in_{regime.__name__}_rows"
    return grad_fn


def as_step(grad_fn: Callable[[Spec, Params, Any, Any], Params]) -> Callable[..., Params]:
    """The SGD step that takes ``grad_fn``'s gradient: ``W - lr g``."""

    def step_fn(spec: Spec, params: Params, X: Any, Y: Any, lr: float) -> Params:
        return manual.sgd_step(params, grad_fn(spec, params, X, Y), lr)

    step_fn.__name__ = f"step_{grad_fn.__name__}"
    return step_fn


def _kink_from_the_right(entry: manual.Activation) -> manual.Activation:
    """``entry`` with A'(0) taken from the right (ReLU' (0) = 1, leaky ReLU' (0) = 1): a wrong subgradient."""
    derivative = entry.derivative
    assert derivative is not None

    def right(I: Any, O: Any, xp: Any) -> Any:
        return xp.where(I == 0, xp.ones_like(I), derivative(I, O, xp))

    return manual.Activation(f"{entry.name}_right", entry.forward, right, kinks=entry.kinks, exact=entry.exact)


def kink_from_the_right(spec: Spec, params: Params, X: Any, Y: Any) -> Params:
    """A grad_fn with every kinked hidden activation's derivative at exactly 0 taken from the right."""
    acts = tuple(_kink_from_the_right(a) if 0.0 in a.kinks else a for a in spec.activations)
    return manual.gradients(replace(spec, activations=acts), params, X, Y)


# ------------------------------------------------------------------------------------------ draws


def _rng(seed: int, k: int, family: str) -> np.random.Generator:
    return np.random.default_rng([seed, k, sum(map(ord, family))])


def _bce_spec(rng: np.random.Generator) -> Spec:
    out = manual.ACTIVATIONS[str(rng.choice(["sigmoid", "softmax"]))]
    J = int(rng.integers(2 if not out.elementwise else 1, 4))
    hidden = [int(rng.integers(1, 5)) for _ in range(int(rng.integers(0, 3)))]
    acts = [manual.ACTIVATIONS[str(rng.choice(["tanh", "relu", "sigmoid"]))] for _ in hidden]
    sizes = (int(rng.integers(1, 5)), *hidden, J)
    return Spec(sizes, (*acts, out), "bce", bias=bool(rng.integers(2)), reduction=str(rng.choice(["sum", "mean"])))


def _probability_spec(rng: np.random.Generator) -> Spec:
    loss = str(rng.choice(["bce", "ce", "squared"]))
    if loss == "bce":
        return _bce_spec(rng)
    out = manual.ACTIVATIONS[str(rng.choice(["sigmoid", "softmax"]))]
    J = int(rng.integers(2, 4))
    hidden = [int(rng.integers(1, 5)) for _ in range(int(rng.integers(0, 3)))]
    acts = [manual.ACTIVATIONS[str(rng.choice(["tanh", "relu"]))] for _ in hidden]
    sizes = (int(rng.integers(1, 5)), *hidden, J)
    return Spec(sizes, (*acts, out), loss, bias=bool(rng.integers(2)), reduction=str(rng.choice(["sum", "mean"])))


def _case(spec: Spec, rng: np.random.Generator, dtype: str, logits: tuple[float, float], **kw: Any):
    from torch_ref.strategies import case_from

    return case_from(
        spec,
        N=int(rng.integers(2, 6)),
        seed=int(rng.integers(2**32)),
        dtype=np.dtype(dtype),
        logits=float(rng.uniform(*logits)),
        **kw,
    )


# the smallest change counted as a wrong result: 1% of the largest |gradient| of some array, far above
# the rounding of either dtype, so that what is judged is a result that should differ from the right one
DISTINCT = 1e-2


def _distinct(case: Any, rows: np.ndarray, c: float) -> bool:
    """Whether scaling ``rows``' share by ``c`` moves some array by more than DISTINCT of its largest
    |entry| (float64, the case's values), measured here, not read from the check under test."""
    X, Y = (np.asarray(a, dtype=np.float64) for a in (case.X, case.Y))
    params = case.params.map(lambda a: np.asarray(a, dtype=np.float64))
    g = manual.gradients(case.spec, params, X, Y)
    part = _rows_part(case.spec, params, X, Y, rows)
    return any(
        float(np.max(np.abs((c - 1) * b))) > DISTINCT * float(np.max(np.abs(a)))
        for (_, a), (_, b) in zip(g.arrays(), part.arrays())
    )


def _classify(fn: Callable, case: Any, update: bool = False) -> str:
    from torch_ref.verdict import classify

    v = classify(fn, case, update=update)
    if getattr(v, "kind", "") == "not judged":
        return "not judged"
    return "accepted" if v.passed else v.kind


def _first_order(spec_of: Callable, logits: tuple[float, float], regime: Rows, factors: tuple[float, ...]):
    def trials(seed: int, k: int, dtype: str) -> Iterator[tuple[str, str]]:
        rng = _rng(seed, k, regime.__name__)
        case = _case(spec_of(rng), rng, dtype, logits)
        O = np.asarray(manual.forward(case.spec, case.params, case.X).prediction)
        if not regime(O, dtype).any():
            yield f"{regime.__name__}", "outside"
            return
        rows = regime(O, dtype)
        for c in factors:
            fn = scaled_in(regime, c)
            if not _distinct(case, rows, c):
                yield fn.__name__, "indistinct"
                continue
            yield f"{fn.__name__} on {case!r}", _classify(fn, case)
            yield f"{fn.__name__} as an SGD step on {case!r}", _classify(as_step(fn), case, update=True)

    return trials


def _kinks(seed: int, k: int, dtype: str) -> Iterator[tuple[str, str]]:
    from torch_ref.strategies import case_from, kink_placeable

    rng = _rng(seed, k, "kinks")
    kinked = manual.ACTIVATIONS[str(rng.choice(["relu", "leaky_relu"]))]
    depth = int(rng.integers(2, 4))
    out = manual.ACTIVATIONS[str(rng.choice(["identity", "sigmoid"]))]
    loss = "squared" if out.name == "identity" else "bce"
    sizes = (*(int(rng.integers(2, 5)) for _ in range(depth)), int(rng.integers(1, 3)))
    spec = Spec(sizes, (kinked,) * (depth - 1) + (out,), loss, bias=bool(rng.integers(2)))
    if not kink_placeable(spec):
        yield "kink", "outside"
        return
    case = case_from(spec, N=int(rng.integers(1, 4)), seed=int(rng.integers(2**32)), grid=True, kink=True, dtype=dtype)
    yield f"kink_from_the_right on {case!r}", _classify(kink_from_the_right, case)
    yield f"step_kink_from_the_right on {case!r}", _classify(as_step(kink_from_the_right), case, update=True)


# ------------------------------------------------------------------------------------------ training


def _run_trainer(make: Callable, case: Any, steps: int) -> list[np.ndarray]:
    """The trainer's weights after ``steps`` steps on the check's batches, float64, flat."""
    from torch_ref.training import batches

    trainer = make(case.spec, case.params.map(np.copy), lr=case.lr)
    for X, Y in batches(case, steps):
        trainer.step(X.copy(), Y.copy())
    return [np.asarray(a, dtype=np.float64) for _, a in trainer.params.arrays()]


def _training(wrong: Callable, right: Callable, optimizer: Any, draw: Callable, steps: int):
    """Trials of a wrong trainer against ``optimizer``: outside its regime where its weights equal the
    right trainer's after ``steps`` steps, indistinct where they are within DISTINCT of the right
    trainer's movement."""

    def trials(seed: int, k: int, dtype: str) -> Iterator[tuple[str, str]]:
        from torch_ref.training import check_training_case

        case = draw(_rng(seed, k, wrong.__name__), dtype)
        with np.errstate(all="ignore"):
            got, want = _run_trainer(wrong, case, steps), _run_trainer(right, case, steps)
        start = [np.asarray(a, dtype=np.float64) for _, a in case.params.arrays()]
        moved = max(float(np.max(np.abs(w - s))) for w, s in zip(want, start))
        apart = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want))
        if not np.isfinite(apart) or not np.isfinite(moved):
            yield wrong.__name__, "outside"  # a trainer that overflows is no hidden mistake
            return
        if apart == 0:
            yield wrong.__name__, "outside"
            return
        if apart <= DISTINCT * moved:
            yield wrong.__name__, "indistinct"
            return
        v = check_training_case(wrong, case, optimizer=optimizer, steps=steps, diagnose=False)
        kind = "accepted" if v.passed else v.kind
        yield f"{wrong.__name__} on {case!r}, {steps} steps", kind

    return trials


def _dead_unit_case(rng: np.random.Generator, dtype: str) -> Any:
    """A ReLU network with one hidden unit dead for every input (its bias -100): its weights' gradients
    are exactly 0, where Adam's step is 0 / (0 + eps)."""
    from torch_ref.strategies import case_from

    out = str(rng.choice(["sigmoid", "identity"]))
    spec = Spec(
        (int(rng.integers(1, 4)), int(rng.integers(2, 5)), int(rng.integers(1, 3))),
        ("relu", out),
        "bce" if out == "sigmoid" else "squared",
        bias=True,
    )
    case = case_from(spec, N=int(rng.integers(1, 5)), seed=int(rng.integers(2**32)), lr=0.1, dtype=dtype)
    case.params.biases[0][0] = -100.0
    return case


def _bce_rounded_case(rng: np.random.Generator, dtype: str) -> Any:
    from torch_ref.strategies import case_from

    return case_from(
        _bce_spec(rng),
        N=int(rng.integers(1, 5)),
        seed=int(rng.integers(2**32)),
        lr=0.1,
        dtype=dtype,
        logits=float(rng.uniform(14, 40)),
    )


def _diverging_case(rng: np.random.Generator, dtype: str) -> Any:
    from torch_ref.strategies import case_from

    depth = int(rng.integers(2, 4))
    spec = Spec((2,) * (depth + 1), ("identity",) * depth, "squared")
    return case_from(
        spec, N=3, seed=int(rng.integers(2**32)), grid=True, gain=0.5, lr=float(rng.uniform(0.4, 0.7)), dtype=dtype
    )


def _training_families() -> list[Family]:
    import functools

    import adversaries_training as T
    import torch

    momentum = functools.partial(torch.optim.SGD, momentum=0.9)
    return [
        Family(
            "Adam entries with a tiny gradient",
            "Adam's divisor sqrt(v_hat) + eps where the gradient's tolerance exceeds it (the trajectory bound)",
            _training(T.AdamMovesTinyGradientEntries, manual.AdamTrainer, torch.optim.Adam, _dead_unit_case, 3),
        ),
        Family(
            "SGD 1.5x on outputs rounded to 1",
            "bce outputs within rounding of 0 or 1 (the former 'undetermined' rows), through the trajectory bound",
            _training(T.SGDTooFar, manual.Trainer, None, _bce_rounded_case, 2),
        ),
        Family(
            "SGD 1.5x while diverging",
            "diverging trajectories, next to the steps left out past the dtype's range",
            _training(
                T.TooFarWhileDiverging, functools.partial(manual.Trainer, momentum=0.9), momentum, _diverging_case, 5
            ),
        ),
    ]


@dataclass(frozen=True)
class Family:
    """Wrong results hidden in one allowance's regime: ``trials(seed, k, dtype)`` yields, for case
    ``k``, ``(label, outcome)`` per wrong result, where outcome is ``"outside"`` (the regime was not
    met: the wrong result equals the right one there), ``"indistinct"`` (the change is below
    :data:`DISTINCT` of the gradient: not a wrong result to count), ``"not judged"``, ``"accepted"``
    or the failing verdict's kind."""

    name: str
    allowance: str
    trials: Callable[[int, int, str], Iterator[tuple[str, str]]]


def _families() -> list[Family]:
    return [
        Family(
            "bce floor rows",
            "torch's bce floor (float64 y*(1-y*) < 1e-12): torch's value or the exact one",
            _first_order(_bce_spec, (28.0, 60.0), floored, (-1.0, 1.5, -3.0)),
        ),
        Family(
            "outputs rounded to 0 or 1",
            "float32 outputs within rounding of 0 or 1 (the former 'undetermined' rows)",
            _first_order(_bce_spec, (14.0, 40.0), rounded_to_one, (-1.0, 1.5, -3.0)),
        ),
        Family(
            "saturated rows",
            "saturated outputs (y*(1-y*) <= sqrt(eps)), where 'unstable' may be named",
            _first_order(_probability_spec, (8.0, 40.0), saturated, (-3.0, 1.5)),
        ),
        Family("kinks", "an input within its rounding error of a kink: either side", _kinks),
        *_training_families(),
    ]


def __getattr__(name: str) -> Any:
    if name == "FAMILIES":
        return _families()
    raise AttributeError(name)
