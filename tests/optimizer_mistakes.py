"""Hand-written optimizers with the mistakes people really make, each written the way the cited public
code or discussion writes it, for :func:`torch_ref.check_training` to catch.

Each trainer takes ``(spec, params, lr=...)`` and has ``.step(X, Y)`` and ``.params``, like
:class:`manual.Trainer`; the gradients are manual's (right), only the update rule is wrong. The
torch optimizer each one claims to implement is in :data:`CATALOGUE`, with the source and the part
of the diagnosis expected to name it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import manual

MU, TAU, WD = 0.9, 0.5, 0.05


class HandTrainer:
    """Full-batch training with manual's gradients and an update rule of its own (:meth:`update`)."""

    def __init__(self, spec: manual.Spec, params: manual.Params, *, lr: float) -> None:
        self.spec, self.lr = spec, lr
        self.P = [np.array(a, copy=True) for _, a in params.arrays()]
        self.state: dict[Any, Any] = {}
        self.t = 0

    @property
    def params(self) -> manual.Params:
        if self.spec.bias:
            return manual.Params(self.P[0::2], self.P[1::2])
        return manual.Params(self.P)

    def step(self, X: np.ndarray, Y: np.ndarray) -> None:
        grads = [g for _, g in manual.gradients(self.spec, self.params, X, Y).arrays()]
        self.t += 1
        for k, (p, g) in enumerate(zip(self.P, grads)):
            self.update(k, p, g)

    def update(self, k: int, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def buffer(self, k: int, g: np.ndarray) -> np.ndarray:
        """torch's momentum buffer (right): b_1 = g, then b = mu b + g."""
        b = self.state.get(k)
        b = g.copy() if b is None else MU * b + g
        self.state[k] = b
        return b

    def moments(self, k: int, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Adam's moments (right): m = 0.9 m + 0.1 g, v = 0.999 v + 0.001 g^2 from zero."""
        m, v = self.state.get(k, (np.zeros_like(g), np.zeros_like(g)))
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        self.state[k] = (m, v)
        return m, v


class EmaMomentum(HandTrainer):
    """v = mu v + (1 - mu) g from v = 0 (the exponential average of Ng's course)."""

    def update(self, k, p, g):
        v = self.state.get(k, np.zeros_like(p))
        v = MU * v + (1 - MU) * g
        self.state[k] = v
        p -= self.lr * v


class DampedFirstStep(HandTrainer):
    """The buffer starts at zero and the first step is dampened: b_1 = (1 - tau) g."""

    def update(self, k, p, g):
        b = self.state.get(k, np.zeros_like(p))
        b = MU * b + (1 - TAU) * g
        self.state[k] = b
        p -= self.lr * b


class PaddleNesterov(HandTrainer):
    """Nesterov as Paddle had it before its fix: p - g lr + mu v lr (the sign of the look-ahead term)."""

    def update(self, k, p, g):
        v = self.buffer(k, g)
        p -= g * self.lr - MU * v * self.lr


class NesterovWithoutLookahead(HandTrainer):
    """Claims Nesterov but steps along the buffer alone: P -= lr b."""

    def update(self, k, p, g):
        v = self.buffer(k, g)
        p -= self.lr * v


class DecayAfterMomentum(HandTrainer):
    """Weight decay added to the update after the momentum buffer (libtorch's C++ SGD before its fix)."""

    def update(self, k, p, g):
        v = self.buffer(k, g)
        p -= self.lr * (v + WD * p)


class DecayWithoutLr(HandTrainer):
    """Weight decay as data = data - wd * data, without the learning rate."""

    def update(self, k, p, g):
        v = self.buffer(k, g)
        p -= self.lr * v
        p -= WD * p


class BufferNotKept(HandTrainer):
    """The momentum buffer made afresh every step (a zeros_like each call, never stored)."""

    def update(self, k, p, g):
        b = g.copy()  # no state read: every step is the buffer's first
        p -= self.lr * b


class AdamNoBiasCorrection(HandTrainer):
    """p - lr m / (sqrt(v) + eps), m and v never corrected."""

    def update(self, k, p, g):
        m, v = self.moments(k, g)
        p -= self.lr * m / (np.sqrt(v) + 1e-8)


class AdamEpsilonHat(HandTrainer):
    """TensorFlow's Adam: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t), p -= lr_t m / (sqrt(v) + eps)."""

    def update(self, k, p, g):
        m, v = self.moments(k, g)
        lr_t = self.lr * math.sqrt(1 - 0.999**self.t) / (1 - 0.9**self.t)
        p -= lr_t * m / (np.sqrt(v) + 1e-8)


class AdamEpsInsideSqrt(HandTrainer):
    """eps inside the square root: m_hat / sqrt(v_hat + eps)."""

    def update(self, k, p, g):
        m, v = self.moments(k, g)
        m_hat, v_hat = m / (1 - 0.9**self.t), v / (1 - 0.999**self.t)
        p -= self.lr * m_hat / np.sqrt(v_hat + 1e-8)


class AdamCountPerParameter(HandTrainer):
    """The step count advanced inside the loop over parameters (count_++ per parameter)."""

    def step(self, X, Y):
        grads = [g for _, g in manual.gradients(self.spec, self.params, X, Y).arrays()]
        for k, (p, g) in enumerate(zip(self.P, grads)):
            self.t += 1
            self.update(k, p, g)

    def update(self, k, p, g):
        m, v = self.moments(k, g)
        m_hat, v_hat = m / (1 - 0.9**self.t), v / (1 - 0.999**self.t)
        p -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


class AdamWAsL2(HandTrainer):
    """ "AdamW" with the decay added to the gradient, g + wd p (Adam's L2, not decoupled)."""

    def update(self, k, p, g):
        g = g + WD * p
        m, v = self.moments(k, g)
        m_hat, v_hat = m / (1 - 0.9**self.t), v / (1 - 0.999**self.t)
        p -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


@dataclass(frozen=True)
class Mistake:
    trainer: type
    optimizer: Any  # the torch.optim factory it claims to match
    sources: tuple[str, ...]
    diagnosis: str | None  # a phrase the diagnosis must contain; None: no modelled mistake fits


SGD_MOMENTUM = functools.partial(torch.optim.SGD, momentum=MU)
CATALOGUE = {
    "ema-momentum": Mistake(
        EmaMomentum,
        SGD_MOMENTUM,
        (
            "https://github.com/pytorch/pytorch/issues/1099",
            "https://github.com/ml-explore/mlx/pull/87",
            "https://github.com/pjreddie/darknet/issues/2203",
        ),
        "momentum as an average",
    ),
    "damped-first-step": Mistake(
        DampedFirstStep,
        functools.partial(torch.optim.SGD, momentum=MU, dampening=TAU),
        ("https://github.com/ml-explore/mlx/pull/473", "https://github.com/pytorch/pytorch/pull/152833"),
        "first step dampened",
    ),
    "paddle-nesterov": Mistake(
        PaddleNesterov,
        functools.partial(torch.optim.SGD, momentum=MU, nesterov=True),
        ("https://github.com/PaddlePaddle/Paddle/pull/12231",),
        None,
    ),
    "nesterov-without-lookahead": Mistake(
        NesterovWithoutLookahead,
        functools.partial(torch.optim.SGD, momentum=MU, nesterov=True),
        ("https://github.com/ml-explore/mlx/pull/87", "https://github.com/pytorch/pytorch/pull/5920"),
        "the plain momentum update",
    ),
    "decay-after-momentum": Mistake(
        DecayAfterMomentum,
        functools.partial(torch.optim.SGD, momentum=MU, weight_decay=WD),
        ("https://github.com/pytorch/pytorch/pull/13801",),
        "after the momentum buffer",
    ),
    "decay-without-lr": Mistake(
        DecayWithoutLr,
        functools.partial(torch.optim.SGD, momentum=MU, weight_decay=WD),
        ("https://github.com/flashlight/flashlight/issues/143", "https://github.com/FluxML/model-zoo/pull/303"),
        "without the learning rate",
    ),
    "buffer-not-kept": Mistake(
        BufferNotKept,
        SGD_MOMENTUM,
        ("https://github.com/kozistr/pytorch_optimizer/pull/516", "https://github.com/deeplearning4j/nd4j/pull/2116"),
        "not kept between steps",
    ),
    "adam-no-bias-correction": Mistake(
        AdamNoBiasCorrection,
        torch.optim.Adam,
        ("https://github.com/ml-explore/mlx/pull/1640", "https://github.com/oxiglade/mlx-rs/issues/301"),
        "no bias correction",
    ),
    "adam-epsilon-hat": Mistake(
        AdamEpsilonHat,
        torch.optim.Adam,
        ("https://github.com/tensorflow/tensorflow/issues/9047", "https://github.com/keras-team/keras/issues/17391"),
        "epsilon hat",
    ),
    "adam-eps-inside-sqrt": Mistake(
        AdamEpsInsideSqrt,
        torch.optim.Adam,
        ("https://github.com/FluxML/Flux.jl/pull/448",),
        "eps inside the square root",
    ),
    "adam-count-per-parameter": Mistake(
        AdamCountPerParameter,
        torch.optim.Adam,
        (
            "https://github.com/flashlight/flashlight/issues/143",
            "https://github.com/DiffSharp/DiffSharp/issues/292",
            "https://github.com/clab/dynet/issues/77",
        ),
        "once per parameter",
    ),
    "adamw-as-l2": Mistake(
        AdamWAsL2,
        functools.partial(torch.optim.AdamW, weight_decay=WD),
        (
            "https://github.com/nntrainer/nntrainer/pull/3565",
            "https://github.com/pytorch/pytorch/issues/48793",
            "https://stackoverflow.com/questions/64621585/adamw-and-adam-with-weight-decay",
        ),
        "weight decay added to the gradient",
    ),
}
