"""Every malformed input is a ValueError or TypeError that names the argument, the value received and
what is accepted, raised at the public entry before any arithmetic."""

import math

import numpy as np
import pytest
import torch

import manual
import torch_ref
from manual import Params, Spec

SPEC = Spec((2, 3, 1), ("tanh", "sigmoid"), "bce")
SPEC_B = Spec((2, 3, 1), ("tanh", "sigmoid"), "bce", bias=True)
SPEC_CE = Spec((2, 3, 2), ("tanh", "softmax"), "ce")
RNG = np.random.default_rng(0)
P = manual.init_params(SPEC, RNG)
PB = manual.init_params(SPEC_B, RNG)
PCE = manual.init_params(SPEC_CE, RNG)
X = RNG.uniform(-1, 1, size=(4, 2))
Y = RNG.uniform(0, 1, size=(4, 1))
YCE = np.full((4, 2), 0.5)


def _with(params, k, value):
    weights = list(params.weights)
    weights[k] = value
    return Params(weights, params.biases)


def _bad(a, idx, value):
    a = a.copy()
    a[idx] = value
    return a


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


SPEC_CASES = [
    pytest.param(lambda: Spec((), ("sigmoid",), "bce"), ValueError, "sizes needs at least two", id="sizes-empty"),
    pytest.param(lambda: Spec((3,), (), "bce"), ValueError, "sizes needs at least two", id="sizes-one"),
    pytest.param(
        lambda: Spec((2, 1.5), ("sigmoid",), "bce"), TypeError, r"sizes\[1\] must be an int, got 1.5", id="sizes-float"
    ),
    pytest.param(lambda: Spec((2, "3"), ("sigmoid",), "bce"), TypeError, r"sizes\[1\] must be an int", id="sizes-str"),
    pytest.param(
        lambda: Spec((2, 0), ("sigmoid",), "bce"), ValueError, r"sizes\[1\] must be >= 1, got 0", id="sizes-zero"
    ),
    pytest.param(
        lambda: Spec((-2, 1), ("sigmoid",), "bce"), ValueError, r"sizes\[0\] must be >= 1, got -2", id="sizes-negative"
    ),
    pytest.param(lambda: Spec(3, ("sigmoid",), "bce"), TypeError, "sizes must be a sequence", id="sizes-int"),
    pytest.param(
        lambda: Spec((2, 2, 1), ("sigmoid",), "bce"), ValueError, "one entry per layer", id="activations-count"
    ),
    pytest.param(
        lambda: Spec((2, 1), ("swish",), "bce"),
        ValueError,
        r"activations\[0\]: unknown activation 'swish'; registered: identity, sigmoid, .*gelu",
        id="activation-unknown",
    ),
    pytest.param(
        lambda: Spec((2, 1), "sigmoid", "bce"), TypeError, "activations must be a sequence", id="activations-str"
    ),
    pytest.param(
        lambda: Spec((2, 2, 1), ("softmax", "sigmoid"), "bce"), ValueError, "last layer only", id="softmax-hidden"
    ),
    pytest.param(
        lambda: Spec((2, 1), ("tanh",), "bce"),
        ValueError,
        "does not accept output activation 'tanh'; it accepts sigmoid, softmax",
        id="pair-bce-tanh",
    ),
    pytest.param(
        lambda: Spec((2, 1), ("identity",), "ce"), ValueError, "it accepts sigmoid, softmax", id="pair-ce-identity"
    ),
    pytest.param(
        lambda: Spec((2, 1), ("sigmoid",), "hinge"),
        ValueError,
        "unknown loss 'hinge'; registered: " + ", ".join(manual.LOSSES),
        id="loss-unknown",
    ),
    pytest.param(
        lambda: Spec((2, 1), ("sigmoid",), "bce", reduction="avg"),
        ValueError,
        "reduction must be one of .* got 'avg'",
        id="reduction-unknown",
    ),
    pytest.param(
        lambda: Spec((2, 1), ("sigmoid",), "bce", bias=1), TypeError, "bias must be True or False", id="bias-int"
    ),
    pytest.param(lambda: Params(3), TypeError, "weights must be a sequence", id="params-weights-int"),
]

CALL_CASES = [
    pytest.param(
        SPEC, Params(P.weights[:1]), X, Y, ValueError, "params.weights must hold 2 arrays", id="weights-count"
    ),
    pytest.param(
        SPEC,
        _with(P, 0, np.zeros((3, 2))),
        X,
        Y,
        ValueError,
        r"weights\[0\] must have shape \(2, 3\), got \(3, 2\)",
        id="weights-shape",
    ),
    pytest.param(
        SPEC,
        _with(P, 1, P.weights[1].astype(np.int64)),
        X,
        Y,
        TypeError,
        r"weights\[1\] must have dtype float32 or float64, got int64",
        id="weights-int",
    ),
    pytest.param(
        SPEC,
        _with(P, 0, [[1.0, 2.0, 3.0]] * 2),
        X,
        Y,
        TypeError,
        r"weights\[0\] must be a numpy.ndarray or torch.Tensor, got list",
        id="weights-list",
    ),
    pytest.param(
        SPEC,
        Params(P.weights, [np.zeros(3), np.zeros(1)]),
        X,
        Y,
        ValueError,
        "biases were given but the spec has bias=False",
        id="biases-unexpected",
    ),
    pytest.param(
        SPEC_B,
        Params(PB.weights),
        X,
        Y,
        ValueError,
        "params.biases is None but the spec has bias=True",
        id="biases-missing",
    ),
    pytest.param(
        SPEC_B,
        Params(PB.weights, [np.zeros(2), np.zeros(1)]),
        X,
        Y,
        ValueError,
        r"biases\[0\] must have shape \(3,\), got \(2,\)",
        id="bias-shape",
    ),
    pytest.param(SPEC, P, X[0], Y, ValueError, r"X must have shape \(N, 2\), got \(2,\)", id="X-rank"),
    pytest.param(SPEC, P, np.ones((4, 3)), Y, ValueError, r"X must have shape \(N, 2\), got \(4, 3\)", id="X-width"),
    pytest.param(SPEC, P, np.ones((0, 2)), np.ones((0, 1)), ValueError, "X has N = 0 examples", id="N-zero"),
    pytest.param(SPEC, P, X, Y[:, 0], ValueError, r"Y must have shape \(4, 1\), got \(4,\)", id="Y-rank"),
    pytest.param(SPEC, P, X, np.ones((4, 2)), ValueError, r"Y must have shape \(4, 1\), got \(4, 2\)", id="Y-width"),
    pytest.param(SPEC, P, X, np.ones((3, 1)), ValueError, r"Y must have shape \(4, 1\), got \(3, 1\)", id="Y-rows"),
    pytest.param(
        SPEC,
        _with(P, 0, _bad(P.weights[0], (0, 0), np.nan)),
        X,
        Y,
        ValueError,
        r"weights\[0\] \(W1\) contains NaN or infinite values",
        id="weights-nan",
    ),
    pytest.param(
        SPEC,
        _with(P, 1, _bad(P.weights[1], (0, 0), np.inf)),
        X,
        Y,
        ValueError,
        r"weights\[1\] \(W2\) contains NaN or infinite",
        id="weights-inf",
    ),
    pytest.param(
        SPEC_B,
        Params(PB.weights, [_bad(PB.biases[0], 0, -np.inf), PB.biases[1]]),
        X,
        Y,
        ValueError,
        r"biases\[0\] \(b1\) contains NaN",
        id="bias-inf",
    ),
    pytest.param(SPEC, P, _bad(X, (1, 1), np.nan), Y, ValueError, "X contains NaN or infinite", id="X-nan"),
    pytest.param(SPEC, P, _bad(X, (0, 0), np.inf), Y, ValueError, "X contains NaN or infinite", id="X-inf"),
    pytest.param(SPEC, P, X, _bad(Y, (2, 0), np.nan), ValueError, "Y contains NaN or infinite", id="Y-nan"),
    pytest.param(
        SPEC, P, X, _bad(Y, (2, 0), 1.5), ValueError, r"Y must lie in \[0, 1\] for loss 'bce'", id="bce-target-above"
    ),
    pytest.param(SPEC, P, X, _bad(Y, (0, 0), -0.1), ValueError, r"Y must lie in \[0, 1\]", id="bce-target-below"),
    pytest.param(
        SPEC_CE, PCE, X, np.full((4, 2), 0.6), ValueError, "Y rows must sum to 1 for loss 'ce'", id="ce-target-sum"
    ),
    pytest.param(
        SPEC_CE,
        PCE,
        X,
        np.tile([[1.5, -0.5]], (4, 1)),
        ValueError,
        "probability simplex .* negative",
        id="ce-target-negative",
    ),
    pytest.param(
        SPEC, P, _t(X), Y, TypeError, "X is a torch array but weights\\[0\\] is a numpy array", id="mixed-X-torch"
    ),
    pytest.param(
        SPEC,
        P.map(_t),
        X,
        _t(Y),
        TypeError,
        "X is a numpy array but weights\\[0\\] is a torch array",
        id="mixed-weights-torch",
    ),
    pytest.param(
        SPEC,
        Params([P.weights[0], _t(P.weights[1])]),
        X,
        Y,
        TypeError,
        r"weights\[1\] is a torch array",
        id="mixed-weights",
    ),
    pytest.param(
        SPEC,
        P,
        X.astype(np.float32),
        Y,
        TypeError,
        "X has dtype float32 but weights\\[0\\] has float64",
        id="mixed-float32-X",
    ),
    pytest.param(
        SPEC,
        _with(P, 1, P.weights[1].astype(np.float32)),
        X,
        Y,
        TypeError,
        r"weights\[1\] has dtype float32",
        id="mixed-float32-weights",
    ),
    pytest.param(
        SPEC,
        P.map(_t),
        _t(X).to("meta"),
        _t(Y),
        ValueError,
        "X is on device meta but weights\\[0\\] is on cpu",
        id="devices-differ",
    ),
]


@pytest.mark.parametrize("make,error,message", SPEC_CASES)
def test_bad_spec_or_params(make, error, message):
    with pytest.raises(error, match=message):
        make()


ENTRIES = {
    "manual.gradients": lambda s, p, X, Y: manual.gradients(s, p, X, Y),
    "manual.sgd_step": lambda s, p, X, Y: manual.sgd_step(s, p, X, Y, 0.1),
    "manual.deltas": lambda s, p, X, Y: manual.deltas(s, p, X, Y),
    "torch_ref.gradients": lambda s, p, X, Y: torch_ref.gradients(s, p, X, Y),
    "torch_ref.sgd_step": lambda s, p, X, Y: torch_ref.sgd_step(s, p, X, Y, 0.1),
}


@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize("spec,params,X,Y,error,message", CALL_CASES)
def test_bad_call(entry, spec, params, X, Y, error, message):
    with pytest.raises(error, match=message):
        ENTRIES[entry](spec, params, X, Y)


@pytest.mark.parametrize(
    "spec,params,X,Y,error,message", [c for c in CALL_CASES if c.id.startswith(("weights", "biases", "bias-"))]
)
def test_build_validates_params(spec, params, X, Y, error, message):
    with pytest.raises(error, match=message):
        torch_ref.build(spec, params)


@pytest.mark.parametrize(
    "lr,error,message",
    [
        pytest.param(-0.1, ValueError, "lr must be a finite number >= 0, got -0.1", id="lr-negative"),
        pytest.param(math.nan, ValueError, "lr must be a finite number >= 0, got nan", id="lr-nan"),
        pytest.param(math.inf, ValueError, "lr must be a finite number", id="lr-inf"),
        pytest.param("0.1", TypeError, "lr must be a real number, got '0.1'", id="lr-str"),
        pytest.param(True, TypeError, "lr must be a real number, got True", id="lr-bool"),
    ],
)
@pytest.mark.parametrize("step", [manual.sgd_step, torch_ref.sgd_step], ids=["manual", "torch_ref"])
def test_bad_learning_rate(step, lr, error, message):
    with pytest.raises(error, match=message):
        step(SPEC, P, X, Y, lr)


def test_trainer_validates_at_construction():
    with pytest.raises(ValueError, match=r"\(W1\) contains NaN"):
        manual.Trainer(SPEC, _with(P, 0, _bad(P.weights[0], (0, 0), np.nan)), lr=0.1)
    with pytest.raises(ValueError, match="lr must be"):
        manual.Trainer(SPEC, P, lr=-1.0)
