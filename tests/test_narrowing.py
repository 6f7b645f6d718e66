"""Every narrowing option of the oracle is honoured by every case a derivation is handed: the drawn
ones and the coverage cases alike (the recorder sees each call)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

import manual
import torch_ref
from torch_ref.strategies import Case


class Recorder:
    """A right derivation that remembers every (spec, X, Y, lr) it was handed."""

    def __init__(self) -> None:
        self.seen: list[tuple[manual.Spec, np.ndarray, np.ndarray, float | None]] = []

    def grad_fn(self, spec, params, X, Y):
        self.seen.append((spec, X, Y, None))
        return manual.gradients(spec, params, X, Y)

    def step_fn(self, spec, params, X, Y, lr):
        self.seen.append((spec, X, Y, lr))
        return manual.sgd_step(spec, params, X, Y, lr)


def _run(check=torch_ref.check_derivation, **options) -> Recorder:
    r = Recorder()
    fn = r.step_fn if check is torch_ref.check_update else r.grad_fn
    check(fn, max_examples=40, seed=3, **options)
    assert len(r.seen) >= 40
    return r


def _names(entries) -> set[str]:
    return {a.name for a in entries}


def test_activations_every_layer():
    r = _run(activations=("tanh", "sigmoid"), losses=("squared", "bce"))
    assert all(_names(spec.activations) <= {"tanh", "sigmoid"} for spec, *_ in r.seen)


def test_hidden_activations():
    r = _run(hidden_activations=("relu",), depths=(2, 3))
    assert all(_names(spec.activations[:-1]) == {"relu"} for spec, *_ in r.seen)
    assert len({spec.activations[-1].name for spec, *_ in r.seen}) > 1  # the output layer is not narrowed


def test_output_activations():
    r = _run(output_activations=("sigmoid",), losses=("bce",))
    assert all(spec.activations[-1].name == "sigmoid" for spec, *_ in r.seen)
    assert len({a.name for spec, *_ in r.seen for a in spec.activations[:-1]}) > 1  # hidden ones are not


def test_relu_hidden_sigmoid_output_one_unit():
    """The architecture the issue names: ReLU hidden layers, one sigmoid output under bce."""
    r = _run(hidden_activations=("relu",), output_activations=("sigmoid",), losses="bce", output_width=1)
    for spec, _, Y, _ in r.seen:
        assert _names(spec.activations[:-1]) <= {"relu"} and spec.activations[-1].name == "sigmoid"
        assert spec.sizes[-1] == 1 and Y.shape[1] == 1


def test_narrowing_within_activations():
    r = _run(activations=("relu", "tanh", "sigmoid"), hidden_activations=("relu", "tanh"), losses="squared")
    assert all(_names(spec.activations[:-1]) <= {"relu", "tanh"} for spec, *_ in r.seen)
    assert all(spec.activations[-1].name in {"relu", "tanh", "sigmoid"} for spec, *_ in r.seen)


@pytest.mark.parametrize("width", [1, 3, (2, 4)])
def test_output_width(width):
    lo, hi = (width, width) if isinstance(width, int) else width
    r = _run(output_width=width, widths=(1, 6))
    assert all(lo <= spec.sizes[-1] <= hi for spec, *_ in r.seen)
    assert len({spec.sizes[0] for spec, *_ in r.seen}) > 2  # the other widths are still drawn


def test_losses_depths_widths_batch_bias_reductions():
    r = _run(losses=("ce",), depths=(2, 3), widths=(2, 4), batch=(2, 3), bias=True, reductions=("mean",))
    for spec, X, _, _ in r.seen:
        assert spec.loss.name == "ce" and 2 <= spec.depth <= 3 and all(2 <= w <= 4 for w in spec.sizes)
        assert 2 <= X.shape[0] <= 3 and spec.bias and spec.reduction == "mean"


def test_onehot_targets_ce():
    r = _run(losses=("ce",), targets="onehot")
    for _, _, Y, _ in r.seen:
        assert set(np.unique(Y)) <= {0.0, 1.0} and np.all(Y.sum(axis=1) == 1)


def test_onehot_targets_bce():
    r = _run(losses=("bce",), targets="onehot")
    assert all(set(np.unique(Y)) <= {0.0, 1.0} for _, _, Y, _ in r.seen)
    assert any(Y.shape[1] > 1 and np.any(Y.sum(axis=1) > 1) for _, _, Y, _ in r.seen)  # labels, not one-hot rows


def test_onehot_targets_squared():
    r = _run(losses=("squared",), targets="onehot")
    assert all(np.all(Y.sum(axis=1) == 1) and set(np.unique(Y)) <= {0.0, 1.0} for _, _, Y, _ in r.seen)


def test_soft_targets_stay_soft():
    r = _run(losses=("ce",))
    assert any(not set(np.unique(Y)) <= {0.0, 1.0} for _, _, Y, _ in r.seen)


def test_where_predicate():
    def even_batch_no_square(case: Case) -> bool:
        return case.X.shape[0] % 2 == 0 and len(set(case.spec.sizes)) > 1

    r = _run(where=even_batch_no_square)
    assert all(X.shape[0] % 2 == 0 and len(set(spec.sizes)) > 1 for spec, X, _, _ in r.seen)


@pytest.mark.parametrize("lr", [0.25, (0.05, 0.5)])
def test_update_lr(lr):
    allowed = {lr} if isinstance(lr, float) else set(lr)
    r = _run(check=torch_ref.check_update, lr=lr)
    assert {seen_lr for *_, seen_lr in r.seen} == allowed


def test_narrowed_coverage_cases_still_run():
    """The coverage cases are filtered, not dropped wholesale: a narrow check still sees them."""
    r = Recorder()
    summary = torch_ref.check_derivation(r.grad_fn, max_examples=1, seed=0, output_width=1, losses="squared")
    assert summary.examples > 1 and all(spec.sizes[-1] == 1 for spec, *_ in r.seen)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            dict(activations=("tanh",), hidden_activations=("relu",)), "lie outside activations", id="outside"
        ),
        pytest.param(dict(hidden_activations=("softmax",)), "not elementwise", id="softmax-hidden"),
        pytest.param(dict(output_width=0), "output_width must be", id="width-0"),
        pytest.param(dict(output_width=(3, 2)), "output_width must be", id="width-order"),
        pytest.param(dict(targets="labels"), "targets must be one of", id="targets"),
        pytest.param(dict(where=3), "where must be None or a callable", id="where-type"),
        pytest.param(dict(where=lambda case: False), "rejected every drawn case", id="where-rejects"),
        pytest.param(
            dict(output_activations=("softmax",), losses=("bce",), output_width=1),
            "no valid output",
            id="softmax-bce-1",
        ),
        pytest.param(dict(hidden_activations=("nope",)), "nope", id="unknown-name"),
        pytest.param(dict(where=lambda: True), "where must take one argument", id="where-arity"),
        pytest.param(dict(where=lambda case: case.nope), "where.case. raised AttributeError", id="where-raises"),
    ],
)
def test_bad_narrowing_is_refused(options, message):
    with pytest.raises(ValueError, match=message):
        torch_ref.check_derivation(manual.gradients, max_examples=5, seed=0, **options)


def test_update_bad_lr_and_stray_lr():
    with pytest.raises(ValueError, match="lr must be"):
        torch_ref.check_update(manual.sgd_step, lr=0.0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        torch_ref.check_deltas(manual.deltas, lr=0.1)


class _RecordingTrainer(manual.Trainer):
    seen: ClassVar[list] = []

    def step(self, X, Y):
        _RecordingTrainer.seen.append((self.spec, X, Y, self.lr))
        super().step(X, Y)


_KINDS = {
    "deltas": (torch_ref.check_deltas, manual.deltas),
    "input": (torch_ref.check_input_gradient, manual.input_gradient),
    "per-example": (torch_ref.check_per_example, manual.per_example_gradients),
}


@pytest.mark.parametrize("kind", [*_KINDS, "training"])
def test_every_check_honours_the_options(kind):
    """The same options reach every kind of check, drawn and coverage cases alike."""
    options = dict(
        hidden_activations=("relu",),
        output_activations=("sigmoid",),
        losses=("bce",),
        output_width=1,
        targets="onehot",
        batch=(2, 4),
        max_examples=15,
        seed=2,
    )
    seen: ClassVar[list] = []
    if kind == "training":
        _RecordingTrainer.seen = seen
        torch_ref.check_training(_RecordingTrainer, lr=0.05, steps=2, **options)
    else:
        check, fn = _KINDS[kind]

        def recording(spec, params, X, Y):
            seen.append((spec, X, Y, None))
            return fn(spec, params, X, Y)

        check(recording, **options)
    assert len(seen) >= 15
    for spec, X, Y, lr in seen:
        assert _names(spec.activations[:-1]) <= {"relu"} and spec.activations[-1].name == "sigmoid"
        assert spec.loss.name == "bce" and spec.sizes[-1] == 1 and 2 <= X.shape[0] <= 4
        assert set(np.unique(Y)) <= {0.0, 1.0} and lr in (None, 0.05)
