"""The adversarial campaign's families (scripts/adversarial_campaign.py): wrong results confined to
the regime of one allowance each, and how a case of that regime is drawn.

A first-order wrong result here is a right derivation (``derivations.exact_stable``: the exact
derivatives evaluated stably, no floor, whose output delta is of the size of y* - y in every row)
changed by a factor ``c`` in the rows where the regime holds, as a "stable branch" taken for large
logits would be: the rows are chosen by the derivation's own forward pass in the case's dtype, as
such a branch would choose them. The wrong trainers, second-order and
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


def _right(spec: Spec, params: Params, X: Any, Y: Any) -> Params:
    """The right gradient the wrong results are made from: exact, stable, never floored."""
    from derivations import exact_stable

    return exact_stable(spec, params, X, Y)


def _rows_part(spec: Spec, params: Params, X: Any, Y: Any, rows: np.ndarray) -> Params:
    """The rows' share of the objective's gradient (the sum over those rows; divided by the whole N for a mean)."""
    g = _right(spec, params, X[rows], Y[rows])
    share = rows.sum() / X.shape[0] if spec.reduction == "mean" else 1.0
    return g.map(lambda a: a * share)


def scaled_in(regime: Rows, c: float) -> Callable[[Spec, Params, Any, Any], Params]:
    """A grad_fn right outside ``regime``'s rows (:func:`_right`) and ``c`` times the right gradient's
    share inside them."""

    def grad_fn(spec: Spec, params: Params, X: Any, Y: Any) -> Params:
        g = _right(spec, params, X, Y)
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
        g = grad_fn(spec, params, X, Y)
        return Params(
            [W - lr * d for W, d in zip(params.weights, g.weights)],
            None if params.biases is None else [b - lr * d for b, d in zip(params.biases, g.biases)],  # type: ignore[arg-type]
        )

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


# A wrong result is counted only where it is wrong beyond any doubt about rounding, measured here and
# not read from the check under test: the change in the output layer's gradient must exceed both 1% of
# that array's largest entry (DISTINCT) and RESOLUTION times the dtype's epsilon times the size of the
# terms the entry sums, |u^(L)|^T (|y*| + |y|) for W^(L) and sum_n (|y*| + |y|) for b^(L) (the output
# delta is y* - y or a form with terms of that size). A float32 output that rounds to 1 leaves the
# output delta undetermined to about eps (|y*| + |y|): a sign flipped below that is no wrong result.
DISTINCT = 1e-2
RESOLUTION = 1e3
# a second-order product counts as wrong only where it is also SPREAD times farther from the right one
# than the right product's own evaluation in the case's dtype is (measured on the case)
SPREAD = 10.0


def _distinct(case: Any, rows: np.ndarray, c: float) -> bool:
    """Whether scaling ``rows``' share of the gradient by ``c`` is a change beyond doubt (see above)."""
    X, Y = (np.asarray(a, dtype=np.float64) for a in (case.X, case.Y))
    params = case.params.map(lambda a: np.asarray(a, dtype=np.float64))
    spec = case.spec
    g = _right(spec, params, X, Y)
    part = _rows_part(spec, params, X, Y, rows)
    fwd = manual.forward(spec, params, X)
    size = np.abs(fwd.prediction) + np.abs(Y)
    if spec.reduction == "mean":
        size = size / X.shape[0]
    u = X if spec.depth == 1 else fwd.O[-2]
    eps = float(np.finfo(case.X.dtype).eps)
    scales = [np.abs(u).T @ size] + ([np.sum(size, axis=0)] if spec.bias else [])
    ours = [g.weights[-1]] + ([g.biases[-1]] if spec.bias else [])  # type: ignore[index]
    changes = [(c - 1) * part.weights[-1]] + ([(c - 1) * part.biases[-1]] if spec.bias else [])  # type: ignore[index]
    return any(
        bool(np.any((np.abs(d) > DISTINCT * np.max(np.abs(a))) & (np.abs(d) > RESOLUTION * eps * scale)))
        for a, d, scale in zip(ours, changes, scales)
    )


def _classify(fn: Callable, case: Any, update: bool = False) -> str:
    from torch_ref.first_order.verdict import classify

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
    right = manual.gradients(spec, case.params, case.X, case.Y)
    wrong = kink_from_the_right(spec, case.params, case.X, case.Y)
    if all(np.array_equal(a, b) for (_, a), (_, b) in zip(right.arrays(), wrong.arrays())):
        yield "kink", "outside"  # the back signal at the kink is 0 (a zero weight on the grid)
        return
    yield f"kink_from_the_right on {case!r}", _classify(kink_from_the_right, case)
    yield f"step_kink_from_the_right on {case!r}", _classify(as_step(kink_from_the_right), case, update=True)


# ------------------------------------------------------------------------------------------ training


def _run_trainer(make: Callable, case: Any, steps: int) -> list[np.ndarray]:
    """The trainer's weights after ``steps`` steps on the check's batches, float64, flat."""
    from torch_ref.training.trajectory import batches

    trainer = make(case.spec, case.params.map(np.copy), lr=case.lr)
    for X, Y in batches(case, steps):
        trainer.step(X.copy(), Y.copy())
    return [np.asarray(a, dtype=np.float64) for _, a in trainer.params.arrays()]


def _training(wrong: Callable, right: Callable, optimizer: Any, draw: Callable, steps: int):
    """Trials of a wrong trainer against ``optimizer``: outside its regime where its weights equal the
    right trainer's after ``steps`` steps, indistinct where they are within DISTINCT of the right
    trainer's movement."""

    def trials(seed: int, k: int, dtype: str) -> Iterator[tuple[str, str]]:
        from torch_ref.training.trajectory import check_training_case

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


# ------------------------------------------------------------------------------------------ second order


def _second_order(kind: str):
    """A product with the saturated rows' (y*(1 - y*) < 1e-2) contribution of the wrong sign
    (``adversaries_pins``), on probability outputs driven to large logits."""

    def trials(seed: int, k: int, dtype: str) -> Iterator[tuple[str, str]]:
        import adversaries_pins as P

        from torch_ref.second_order.check import direction, judge

        rng = _rng(seed, k, kind)
        case = _case(_probability_spec(rng), rng, dtype, (5.0, 40.0))
        right_fn = manual.hvp if kind == "hvp" else manual.gnvp
        wrong_fn = P.hvp_saturated_rows_flipped if kind == "hvp" else P.gnvp_saturated_rows_flipped
        X, Y = (np.asarray(a, dtype=np.float64) for a in (case.X, case.Y))
        params = case.params.map(lambda a: np.asarray(a, dtype=np.float64))
        V = direction(case).map(lambda a: np.asarray(a, dtype=np.float64))
        with np.errstate(all="ignore"):
            right, wrong = right_fn(case.spec, params, X, Y, V), wrong_fn(case.spec, params, X, Y, V)
            # what the right product itself gets in the case's dtype: the resolution of its evaluation
            # there (A' = O(1 - O) has no correct digit where a float32 y* rounds to 1)
            own = right_fn(case.spec, case.params, case.X, case.Y, direction(case))
        apart = [np.abs(w - r) for (_, w), (_, r) in zip(wrong.arrays(), right.arrays())]
        spread = [np.abs(np.asarray(o, dtype=np.float64) - r) for (_, o), (_, r) in zip(own.arrays(), right.arrays())]
        if all(float(np.max(d)) == 0 for d in apart):
            yield kind, "outside"
            return
        if not any(
            np.isfinite(np.max(d))
            and float(np.max(d)) > DISTINCT * float(np.max(np.abs(r)))
            and float(np.max(d)) > SPREAD * float(np.max(e))
            for d, e, (_, r) in zip(apart, spread, right.arrays())
        ):
            yield kind, "indistinct"
            return
        with np.errstate(all="ignore"):
            outcome = judge(kind, wrong_fn, case)
        if outcome.unjudged:
            yield f"{wrong_fn.__name__} on {case!r}", "not judged"
        elif outcome.problem or not outcome.comparison.ok:
            yield f"{wrong_fn.__name__} on {case!r}", "mismatch"
        else:
            yield f"{wrong_fn.__name__} on {case!r}", "accepted"

    return trials


# ------------------------------------------------------------------------------------------ data-parallel


def _data_parallel(name: str):
    """A data-parallel derivation wrong only in one shard regime (``adversaries_pins``), on 2 ranks
    with uneven shards; outside its regime where the shards hold it right."""

    def trials(seed: int, k: int, dtype: str) -> Iterator[tuple[str, str]]:
        import adversaries_pins as P

        from torch_ref.data_parallel.check import check_data_parallel_case
        from torch_ref.strategies import case_from

        rng = _rng(seed, k, name)
        depth = int(rng.integers(1, 3))
        sizes = tuple(int(rng.integers(1, 4)) for _ in range(depth + 1))
        acts = (*(str(rng.choice(["tanh", "relu", "sigmoid"])) for _ in range(depth - 1)), "identity")
        spec = Spec(sizes, acts, "squared", bias=bool(rng.integers(2)), reduction=str(rng.choice(["sum", "mean"])))
        case = case_from(spec, N=int(rng.integers(1, 6)), seed=int(rng.integers(2**32)), dtype=dtype)
        report = check_data_parallel_case(getattr(P, name), case, world_size=2, shards="uneven", timeout_s=30)
        if report.startswith("every rank"):
            # right here unless its regime was met: a smallest shard of its own needs two non-empty
            # shards of different sizes; the other mistakes need an uneven split or an empty shard
            from torch_ref.data_parallel.distributed import shard_sizes

            sizes = shard_sizes(case.X.shape[0], 2, "uneven")
            smallest = min((k for k, s in enumerate(sizes) if s > 0), key=lambda k: sizes[k])
            rows = np.zeros(case.X.shape[0], dtype=bool)
            rows[sum(sizes[:smallest]) : sum(sizes[: smallest + 1])] = True
            met = {
                # two non-empty shards of different sizes, and a smallest shard whose sign matters
                "dp_smallest_shard_flipped": len({s for s in sizes if s > 0}) > 1 and _distinct(case, rows, -1.0),
                # the padded example is counted in N: a mean is wrong; a sum may not be (its zeros add nothing)
                "dp_empty_shard_padded": spec.reduction == "mean" and 0 in shard_sizes(case.X.shape[0], 2, "uneven"),
                "dp_own_mean_when_uneven": spec.reduction == "mean"
                and len(set(shard_sizes(case.X.shape[0], 2, "uneven"))) > 1,
            }[name]
            yield f"{name} on {case!r}", "accepted" if met else "outside"
        elif report.startswith("not judged"):
            yield f"{name} on {case!r}", "not judged"
        else:
            yield f"{name} on {case!r}", "mismatch"

    return trials


@dataclass(frozen=True)
class Family:
    """Wrong results hidden in one allowance's regime: ``trials(seed, k, dtype)`` yields, for case
    ``k``, ``(label, outcome)`` per wrong result, where outcome is ``"outside"`` (the regime was not
    met: the wrong result equals the right one there), ``"indistinct"`` (the change is within doubt
    about rounding, :func:`_distinct`: not a wrong result to count), ``"not judged"``, ``"accepted"``
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
        Family(
            "HV: saturated rows flipped",
            "the second-order bound where A' and H_L are far less accurate than their size",
            _second_order("hvp"),
        ),
        Family(
            "GV: saturated rows flipped",
            "the second-order bound where A' and H_L are far less accurate than their size",
            _second_order("gnvp"),
        ),
        *(
            Family(
                f"data-parallel: {name}",
                "the data-parallel bound, on the shards where the mistake shows",
                _data_parallel(name),
            )
            for name in ("dp_smallest_shard_flipped", "dp_empty_shard_padded", "dp_own_mean_when_uneven")
        ),
    ]


def __getattr__(name: str) -> Any:
    if name == "FAMILIES":
        return _families()
    raise AttributeError(name)
