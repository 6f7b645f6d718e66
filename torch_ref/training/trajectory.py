r"""A hand-written training loop against ``torch.optim``, step by step.

:func:`check_training_case` runs ``make_trainer(spec, params, lr=lr)`` for ``steps`` steps (a fresh
batch per step, drawn from the case's seed) and the same steps of a ``torch.optim`` optimizer on the
float64 ``torch_ref`` network, and compares the weights after every step.

The tolerance follows the two trajectories (:mod:`torch_ref.numerics.bound`): at step k the trainer's weights
:math:`W_k` differ from torch's :math:`V_k` by a measured amount, its gradient differs from torch's
by :math:`|g(W_k) - g(V_k)|` (both by float64 autograd, measured) plus the derived gradient tolerance
:math:`T_g(W_k)` of the case's dtype (:mod:`torch_ref.numerics.tolerance`), and the optimizer's rule
(:mod:`torch_ref.training.rules`, read from the optimizer object) carries these errors, and those of its state
(buffers, moments), through one step of its arithmetic, adding the rounding of every operation in
the case's dtype. A wrong rule adds a difference that none of these explains. Where the trajectories
part, the wrong rules people write (:func:`torch_ref.training.rules.variants`) are run the same way; a
diagnosis names those the trainer's trajectory fits within the same tolerance, at every step.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from manual import Params, Spec

from ..engine.result import normalise
from ..first_order.verdict import Outcome, _crash, hand_out
from ..numerics.bound import Bound
from ..numerics.compare import Comparison
from ..numerics.tolerance import tolerance
from ..strategies import Case, data_for
from ..twin.autograd import gradients as autograd_gradients
from ..twin.build import build
from ..twin.convert import as_numpy64
from ..twin.reference import Reference, reference
from .points import step_point
from .rules import Rule, rule_of, variants
from .step_compare import beyond, compare_step, unjudged

__all__ = ["TrainingVerdict", "check_training_case", "make_optimizer"]

Factory = Callable[..., Any]
# what :func:`_follow` finds: the kind, the step, the comparison there, the findings, and every
# compared step's distance against its bound (:func:`torch_ref.training.points.step_point`)
_Followed = tuple[str, int, Comparison, tuple[str, ...], tuple[dict[str, float], ...]]


def _copy64(p: Params) -> Params:
    return p.map(lambda a: np.array(as_numpy64(a), dtype=np.float64, copy=True))


def batches(case: Case, steps: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The batch of every step: the case's own first, then fresh ones drawn from its seed."""
    out = [(case.X, case.Y)]
    for k in range(1, steps):
        rng = np.random.default_rng([case.seed, 2, k])
        out.append(data_for(case.spec, case.X.shape[0], rng, grid=case.grid, dtype=case.X.dtype, targets=case.targets))
    return out


def make_optimizer(optimizer: Factory | None, params: list[torch.Tensor], lr: float) -> Any:
    """``optimizer(params, lr)`` (default ``torch.optim.SGD``); ``ValueError`` when it does not give a
    ``torch.optim.Optimizer`` with learning rate ``lr``."""
    factory = torch.optim.SGD if optimizer is None else optimizer
    try:
        made = factory(params, lr)
    except Exception as exc:
        raise ValueError(
            f"optimizer(params, lr) raised {type(exc).__name__}: {exc}; optimizer must be a torch.optim factory "
            f"such as torch.optim.Adam or functools.partial(torch.optim.SGD, momentum=0.9)"
        ) from None
    if not isinstance(made, torch.optim.Optimizer):
        raise ValueError(f"optimizer(params, lr) must return a torch.optim.Optimizer, got {type(made).__name__}")
    got = made.param_groups[0]["lr"]
    if float(got) != float(lr):
        raise ValueError(
            f"optimizer(params, lr={lr}) made an optimizer with lr={got}; pass lr on to it "
            f"(e.g. lambda params, lr: torch.optim.SGD(params, lr, momentum=0.9))"
        )
    return made


def _torch_trajectory(case: Case, data: list, optimizer: Factory | None) -> tuple[list[Params], Rule]:
    """torch's weights after every step, ``[V_0, ..., V_S]`` (float64), and the optimizer's rule."""
    net = build(case.spec, _copy64(case.params))
    opt = make_optimizer(optimizer, list(net.parameters()), case.lr)
    rule = rule_of(opt)
    out = [_copy64(net.params())]
    for X, Y in data:
        opt.zero_grad()
        net.objective(torch.from_numpy(as_numpy64(X)), torch.from_numpy(as_numpy64(Y))).backward()
        opt.step()
        out.append(_copy64(net.params()))
    return out, rule


def _gradients(case: Case, P: Params, X: Any, Y: Any, exact: bool) -> Params:
    """Autograd's gradients at ``P``: torch's (its BCELoss floor), or the exact objective's (no floor)."""
    if not exact:
        return autograd_gradients(case.spec, P, as_numpy64(X), as_numpy64(Y))
    return reference(case.spec, P, as_numpy64(X), as_numpy64(Y), derivatives=False).exact_grads


def _simulate(rule: Rule, case: Case, data: list, exact: bool = False) -> tuple[list[Params], list[Params]]:
    """The weights after every step of ``rule`` (float64, autograd's gradients, ``exact``: those of
    the exact objective), and the gradients along them."""
    P = _copy64(case.params)
    out: list[Params] = [P]
    grads: list[Params] = []
    state: dict[Any, Any] = {}
    for X, Y in data:
        g = _gradients(case, P, X, Y, exact)
        new = rule.step([a for _, a in P.arrays()], [a for _, a in g.arrays()], state)
        P = _rebuild(case.spec, new)
        out.append(P)
        grads.append(g)
    return out, grads


def _rebuild(spec: Spec, flat: list[Any]) -> Params:
    if spec.bias:
        return Params(flat[0::2], flat[1::2])
    return Params(flat)


@dataclass(frozen=True)
class _UserPoint:
    """The trainer's weights before a step, autograd's gradient there and the gradient tolerance."""

    W: Params
    ref: Reference
    T: Params
    T_exact: Params  # around the exact objective's gradient (ref.exact_grads): T where no floor is in effect

    def at(self, exact: bool) -> tuple[Params, Params]:
        """Autograd's gradient here and its tolerance, of torch's objective or the exact one."""
        return (self.ref.exact_grads, self.T_exact) if exact else (self.ref.grads, self.T)


def _user_points(case: Case, data: list, W: list[Params]) -> list[_UserPoint]:
    dtype = case.X.dtype
    out = []
    for (X, Y), Wk in zip(data, W):
        X64, Y64 = as_numpy64(X), as_numpy64(Y)
        ref = reference(case.spec, Wk, X64, Y64)
        tol = tolerance(case.spec, Wk, X64, Y64, dtype=dtype, reference_pass=ref)
        out.append(_UserPoint(Wk, ref, tol.grads, tol.for_exact.grads))
    return out


@dataclass(frozen=True)
class _StepBound:
    """Per parameter at one step: the allowed ``|W_k - V_k|`` (:math:`B_k`; not finite: no bound) and
    its part carried from the measured differences (:math:`C_k`, :mod:`torch_ref.training.step_compare`)."""

    allowed: list[np.ndarray]
    carried: list[np.ndarray]

    def __iter__(self) -> Any:
        return iter(self.allowed)


def _as_step(bound: Any) -> _StepBound:
    """A step's bound; plain arrays (a bound given without its carried part) carry nothing."""
    if isinstance(bound, _StepBound):
        return bound
    allowed = [np.asarray(a, dtype=np.float64) for a in bound]
    return _StepBound(allowed, [np.zeros_like(a) for a in allowed])


def _exact(x: Any) -> Any:
    return Bound(x.val, x.err, 0.0) if isinstance(x, Bound) else x


def _along(
    rule: Rule,
    V: list[Params],
    points: list[_UserPoint],
    case: Case,
    data: list,
    W: list[Params],
    grads: list[Params] | None = None,
    exact: bool = False,
) -> list[_StepBound]:
    """Per step k >= 1, the allowed |W_k - V_k| for a trainer following ``rule`` (see the module
    docstring) and its carried part; ``V`` is the rule's own trajectory (torch's, or a variant's),
    ``grads`` autograd's gradients along it where the caller has them; ``exact``: gradients and
    tolerances of the exact objective (no floor) along ``V`` and at the trainer's points."""
    unit = float(np.finfo(case.X.dtype).eps) + float(np.finfo(np.float64).eps)
    state: dict = {}
    out = []
    for k, ((X, Y), point) in enumerate(zip(data, points)):
        gV = grads[k] if grads is not None else _gradients(case, V[k], X, Y, exact)
        gW, T = point.at(exact)
        d = [np.abs(w - v) for (_, v), (_, w) in zip(V[k].arrays(), W[k].arrays())]
        measured = [np.abs(gw - g) for (_, g), (_, gw) in zip(gV.arrays(), gW.arrays())]
        gs = [g for _, g in gV.arrays()]
        # the carried part: the same step on the measured differences alone, exact arithmetic
        before = {key: _exact(value) for key, value in state.items()}
        C = rule.step(
            [Bound(v, e, 0.0) for (_, v), e in zip(V[k].arrays(), d)],
            [Bound(g, e, 0.0) for g, e in zip(gs, measured)],
            before,
        )
        P = [Bound(v, e, unit) for (_, v), e in zip(V[k].arrays(), d)]
        G = [Bound(g, e + t, unit) for g, e, (_, t) in zip(gs, measured, T.arrays())]
        B = rule.step(P, G, state)
        allowed = [b.err + np.abs(b.val - v) for b, (_, v) in zip(B, V[k + 1].arrays())]
        out.append(_StepBound(allowed, [c.err for c in C]))
    return out


def _compare(
    case: Case, W: Params, V: Params, bound: Any, step: int, steps: int, rule: Rule, exact: bool = False
) -> Comparison:
    names = [n for n, _ in V.arrays()]
    bound = _as_step(bound)
    gradients = " with the exact objective's gradients (no floor)" if exact else ""
    return compare_step(
        names,
        [a for _, a in W.arrays()],
        [a for _, a in V.arrays()],
        bound.allowed,
        bound.carried,
        title=f"weights after step {step} of {steps} against {rule.describe()}{gradients} on the torch network",
    )


@dataclass(frozen=True)
class TrainingVerdict(Outcome):
    """What a trainer does on one case over ``steps`` steps.

    Attributes:
        kind: ``"agree"``, ``"mismatch"``, ``"not judged"``, ``"crash"``, ``"type"`` or ``"shape"``.
            *Not judged* (issue 21): nothing was compared (torch's trajectory leaves the dtype's range
            at step 1), or some entry had no finite bound at a compared step while every judged entry
            was within its bound. It is not a pass (``passed`` is False) and not a fault found in the
            trainer; the oracle counts such cases and fails a run where most are not judged.
        case, steps, rule: the case, the number of steps, the optimizer's rule.
        comparison: the weights at the first step where they part (the last step when they agree;
            the first step with entries not judged when not judged; ``None`` when nothing was compared).
        step: that step (1-based).
        findings: the diagnosis, sentences verified on this case.
        reference: the float64 reference pass at the starting weights.
        trajectory: every compared step's largest distance to the rule's weights against its bound
            (:func:`torch_ref.training.points.step_point`), past the parting step too.
    """

    kind: str
    case: Case
    steps: int
    rule: Rule
    reference: Reference
    comparison: Comparison | None = None
    step: int = 0
    findings: tuple[str, ...] = ()
    detail: str = ""
    what: str = "make_trainer"
    trajectory: tuple[dict[str, float], ...] = ()

    @property
    def passed(self) -> bool:
        return self.kind == "agree"

    def parting(self) -> str:
        """Where the trajectories part, in words (a mismatch)."""
        first = self.checked.first_mismatch()
        name = first.name if first is not None else "?"
        return (
            f"Parts from {self.rule.describe()} at step {self.step} of {self.steps}, first at {name} (layer {name[1:]})"
        )

    def __str__(self) -> str:
        head = {
            "agree": f"follows {self.rule.describe()} within the derived trajectory bound",
            "mismatch": f"parts from {self.rule.describe()}",
            "not judged": f"could not be judged against {self.rule.describe()}",
            "crash": "raised an exception",
            "type": "has .params that are not weights",
            "shape": "has weights of the wrong shape",
        }[self.kind]
        lines = [f"{self.what} {head} on {self.case!r}, {self.steps} steps"]
        if self.detail:
            lines.append(f"  {self.detail}")
        if self.comparison is not None:
            lines.append(str(self.comparison))
        if self.kind == "mismatch":
            lines.append(self.parting())
        lines += self.findings
        return "\n".join(lines)


def _user_trajectory(make_trainer: Factory, case: Case, data: list, arrays: str, device: str):
    """The trainer's weights ``[W_0, ..., W_S]`` (float64) or ``(None, kind, detail)``."""
    what = "make_trainer"
    params, _, _ = hand_out(case, arrays, device)
    try:
        trainer = make_trainer(case.spec, params, lr=case.lr)
    except (Exception, SystemExit) as exc:
        return None, "crash", _crash(exc, what, arrays, device)
    out = [_copy64(case.params)]
    for k, (X, Y) in enumerate(data, start=1):
        step_case = Case(case.spec, case.params, X, Y, case.lr, case.seed, case.grid)
        _, Xh, Yh = hand_out(step_case, arrays, device)
        try:
            trainer.step(Xh, Yh)
            current = trainer.params
        except (Exception, SystemExit) as exc:
            return None, "crash", _crash(exc, f"{what}(...).step (step {k})", arrays, device)
        p, problem, _ = normalise(case.spec, current, f"{what}(...).params after step {k}")
        if p is None:
            return None, "type", problem
        shapes = [(n, tuple(a.shape), tuple(b.shape)) for (n, a), (_, b) in zip(p.arrays(), case.params.arrays())]
        wrong = [f"{n} {got}, expected {want}" for n, got, want in shapes if got != want]
        if wrong:
            return None, "shape", f"{what}(...).params after step {k}: " + "; ".join(wrong)
        out.append(_copy64(p))
    return out, "", ""


def _diagnose(
    rule: Rule,
    case: Case,
    data: list,
    W: list[Params],
    points: list[_UserPoint],
    V: list[Params],
    parting: tuple[int, str, tuple[int, ...]],
) -> tuple[str, ...]:
    """The known mistakes whose trajectory the trainer's fits, within the same derived bound at every
    step; one counts only where its bound is tighter than its distance from torch's trajectory at
    the entry where the trainer parts from torch (so the fit tells the two apart)."""
    steps = len(data)
    k, name, index = parting
    fits = []
    for variant, words in variants(rule):
        U, _ = _simulate(variant, case, data)
        allowed = _along(variant, U, points, case, data, W)
        position = [n for n, _ in V[k].arrays()].index(name)
        apart = abs(dict(U[k].arrays())[name][index] - dict(V[k].arrays())[name][index])
        if not _as_step(allowed[k - 1]).allowed[position][index] < apart:
            continue
        if all(_compare(case, W[j + 1], U[j + 1], allowed[j], j + 1, steps, variant).ok for j in range(steps)):
            fits.append(words)
    if not fits:
        return ("Diagnosis: no known optimizer mistake fits",)
    return (
        "Diagnosis: the trajectory fits, within the same derived bound at every step, "
        + "; and also ".join(fits)
        + ".",
    )


def check_training_case(
    make_trainer: Factory,
    case: Case,
    *,
    optimizer: Factory | None = None,
    steps: int = 3,
    arrays: str = "numpy",
    device: str = "cpu",
    diagnose: bool = True,
) -> TrainingVerdict:
    """Run ``make_trainer(spec, params, lr=case.lr)`` for ``steps`` steps against
    ``optimizer(torch_parameters, lr)`` (default ``torch.optim.SGD``; the parameters in the order
    ``[W1, b1, W2, b2, ...]`` of ``nn.Linear`` layers) on ``case``; ``print`` the verdict for its report.
    ``diagnose=False`` skips running the known mistakes where the trajectories part (the oracle
    diagnoses only the minimal case it reports).

    Example:
        >>> import manual
        >>> from torch_ref.strategies import case_from
        >>> case = case_from(manual.Spec((2, 3, 1), ("tanh", "sigmoid"), "bce"), N=4, seed=0)
        >>> check_training_case(manual.Trainer, case).kind
        'agree'
    """
    _check_arguments(make_trainer, case, steps)
    data = batches(case, steps)
    V, rule = _torch_trajectory(case, data, optimizer)
    start = reference(case.spec, _copy64(case.params), as_numpy64(case.X), as_numpy64(case.Y))
    held, largest, gV, floored = _in_range(case, data, V)
    data = data[:held]  # steps past the dtype's range are not run: a right trainer overflows there
    outside = _outside(case, held, steps, largest)
    left: tuple[str, ...] = () if held == steps else (outside,)
    if held == 0:  # nothing can be compared: not a pass, and no fault of the trainer's either
        return TrainingVerdict(
            "not judged", case, steps, rule, start, detail=outside.replace("not compared", "not judged", 1)
        )
    W, kind, detail = _user_trajectory(make_trainer, case, data, arrays, device)
    if W is None:
        return TrainingVerdict(kind, case, steps, rule, start, detail=detail)
    points = _user_points(case, data, W)
    outcome = _follow(rule, V, gV, points, case, data, W, steps, exact=False)
    if outcome[0] == "mismatch" and floored | any(p.ref.two_references for p in points):
        outcome = _past_the_floor(outcome, rule, points, case, data, W, steps)
    kind, k, comparison, findings, path = outcome
    if kind == "mismatch":
        diagnosis = _diagnose(rule, case, data, W, points, V, _parting(k, comparison)) if diagnose else ()
        return TrainingVerdict(
            "mismatch", case, steps, rule, start, comparison, k, (*diagnosis, *findings), trajectory=path
        )
    if kind == "not judged":
        why = _not_judged(comparison, k, steps)
        return TrainingVerdict(
            "not judged", case, steps, rule, start, comparison, k, (*left, *findings), detail=why, trajectory=path
        )
    return TrainingVerdict("agree", case, steps, rule, start, comparison, k, (*left, *findings), trajectory=path)


def _check_arguments(make_trainer: Any, case: Any, steps: Any) -> None:
    """``TypeError`` or ``ValueError`` unless ``make_trainer`` is a trainer factory, ``steps`` an int >= 1
    and ``case`` a :class:`~torch_ref.strategies.Case`."""
    check_trainer_factory(make_trainer)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if not isinstance(case, Case):
        raise TypeError(f"case must be a torch_ref.strategies.Case (e.g. from case_from), got {type(case).__name__}")


def _outside(case: Case, held: int, steps: int, largest: float) -> str:
    """The sentence for the steps after the first ``held``, where torch's float64 trajectory leaves the
    range the case's dtype holds (magnitudes up to ``largest``), so they are not compared."""
    return (
        f"{f'Steps {held + 1}-{steps}' if held + 1 < steps else f'Step {steps}'} not compared: torch's float64 "
        f"trajectory leaves the range "
        f"{np.dtype(case.X.dtype).name} holds there (magnitudes up to {largest:.3g}, beyond the square root of "
        f"its largest number, {_limit(case):.3g}), where a correct run in that dtype overflows."
    )


def _past_the_floor(
    outcome: _Followed, rule: Rule, points: list[_UserPoint], case: Case, data: list, W: list[Params], steps: int
) -> _Followed:
    """Where torch's BCELoss floor is in effect on the case and the trainer parts from torch's
    trajectory: the trajectory of the same rule with the exact objective's gradients is right too (each
    with its own bound, no allowance between), so the trainer is judged against that one, with a note;
    else it stays a mismatch at torch's step, noting where it parts from the exact one."""
    U, gU = _simulate(rule, case, data, exact=True)
    other = _follow(rule, U, gU, points, case, data, W, steps, exact=True)
    if other[0] == "mismatch":
        return (
            *outcome[:3],
            (*outcome[3], f"It parts from the exact-gradient trajectory too, at step {other[1]}."),
            outcome[4],
        )
    note = (
        f"It follows the trajectory of {rule.describe()} with the exact objective's gradients: torch's "
        f"BCELoss floor is in effect on this case (torch's gradient shrinks towards 0 where y*(1 - y*) < "
        f"1e-12), and it parts from torch's own trajectory at step {outcome[1]}."
    )
    return (*other[:3], (*other[3], note), other[4])


def _parting(k: int, comparison: Comparison) -> tuple[int, str, tuple[int, ...]]:
    """Where a mismatch parts: its step, and the name and index of the first entry beyond its bound."""
    first = beyond(comparison)
    assert first is not None  # a mismatch has a row beyond its bound
    return k, first.name, first.worst


def _not_judged(comparison: Comparison, k: int, steps: int) -> str:
    """Why a trajectory with entries that have no finite bound at step ``k`` is not judged."""
    where = ", ".join(f"{name} {count}" for name, count in unjudged(comparison))
    return (
        f"Not judged: at step {k} of {steps} some entries ({where}) have no finite trajectory bound (the "
        f"gradient tolerance or the rule's arithmetic there is not finite), so they were compared with "
        f"nothing; every other entry is within its bound at every compared step."
    )


def _follow(
    rule: Rule,
    V: list[Params],
    gV: list[Params],
    points: list[_UserPoint],
    case: Case,
    data: list,
    W: list[Params],
    steps: int,
    exact: bool,
) -> _Followed:
    """The trainer's weights against the trajectory ``V`` at every step: ``("mismatch", k, ...)`` at
    the first step k with an entry beyond its bound; else ``("not judged", k, ...)`` at the first step
    with entries that have no finite bound; else ``("agree", last step, ...)``."""
    # (exact passed only when set: a test stands in for _along with the older signature)
    allowed = (
        _along(rule, V, points, case, data, W, gV, exact=True) if exact else _along(rule, V, points, case, data, W, gV)
    )
    first_unjudged: tuple[int, Comparison] | None = None
    parted: tuple[int, Comparison] | None = None
    comparison = None
    path = []
    for k in range(len(data)):  # every step, the last included (and past the parting, for the report's plot)
        comparison = _compare(case, W[k + 1], V[k + 1], allowed[k], k + 1, steps, rule, exact)
        bound = _as_step(allowed[k])
        path.append(
            step_point(k + 1, [a for _, a in W[k + 1].arrays()], [a for _, a in V[k + 1].arrays()], bound.allowed)
        )
        if parted is None and beyond(comparison) is not None:
            parted = (k + 1, comparison)
        if parted is None and first_unjudged is None and unjudged(comparison):
            first_unjudged = (k + 1, comparison)
    if parted is not None:
        return "mismatch", parted[0], parted[1], (), tuple(path)
    if first_unjudged is not None:
        return "not judged", first_unjudged[0], first_unjudged[1], (), tuple(path)
    assert comparison is not None  # at least one step: the caller returns "not judged" before
    return "agree", len(data), comparison, (), tuple(path)


def _limit(case: Case) -> float:
    return float(np.sqrt(np.finfo(case.X.dtype).max))


def _in_range(case: Case, data: list, V: list[Params]) -> tuple[int, float, list[Params], bool]:
    """How many steps torch's float64 trajectory stays where the case's dtype can follow it: every
    weight before and after the step, every layer's I and O, delta and gradient at most the square root
    of the dtype's largest number (so that products of two of them stay finite); the largest
    magnitude met; autograd's gradients at ``V[k]`` for those steps; whether torch's bce floor is in
    effect at any of them."""
    limit, largest, floored = _limit(case), 0.0, False
    grads: list[Params] = []
    for k, (X, Y) in enumerate(data):
        ref = reference(case.spec, V[k], as_numpy64(X), as_numpy64(Y), derivatives=False)
        values = [a for _, a in (*V[k].arrays(), *V[k + 1].arrays(), *ref.grads.arrays())]
        values += [*ref.I, *ref.O, *ref.delta]
        with np.errstate(invalid="ignore"):
            here = max(float(np.max(np.abs(a))) if a.size else 0.0 for a in values)
        largest = max(largest, here) if np.isfinite(here) else np.inf
        if not here <= limit:
            return k, largest, grads, floored
        grads.append(ref.grads)
        floored |= ref.two_references
    return len(data), largest, grads, floored


def check_trainer_factory(make_trainer: Any) -> None:
    """``TypeError`` unless ``make_trainer`` can be called as ``make_trainer(spec, params, lr=lr)``."""
    if not callable(make_trainer):
        raise TypeError(f"make_trainer must be callable as make_trainer(spec, params, lr=lr), got {make_trainer!r}")
    try:
        signature = inspect.signature(make_trainer)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(0, 0, lr=0.1)
    except TypeError as exc:
        name = getattr(make_trainer, "__name__", type(make_trainer).__name__)
        raise TypeError(f"make_trainer must accept (spec, params, lr=lr); {name}{signature} does not: {exc}") from None
