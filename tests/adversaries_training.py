"""Wrong trainers written to hide inside one allowance of the training check each (issue 21), for
:func:`torch_ref.check_training_case` to catch. Each takes ``(spec, params, lr=...)`` and has
``.step(X, Y)`` and ``.params`` (:class:`optimizer_mistakes.HandTrainer`); the gradients are
manual's (right), only the update is wrong, and only in the regime its docstring names.
"""

from __future__ import annotations

import numpy as np
from optimizer_mistakes import HandTrainer

import manual
from torch_ref.numerics.tolerance import tolerance

__all__ = [
    "AdamMovesTinyGradientEntries",
    "FirstBatchForever",
    "GradientOffByTolerance",
    "LastStepTooFar",
    "SGDTooFar",
    "TooFarWhileDiverging",
    "WeightsOffByRounding",
]

EPS = 1e-8  # torch.optim.Adam's default


class AdamMovesTinyGradientEntries(HandTrainer):
    """Adam (torch's defaults), plus 5 on every entry whose gradient is below 1e-5 in magnitude.

    Hides in the regime of Adam's divisor sqrt(v_hat) + eps: where the gradient's tolerance exceeds
    |g| + eps the divisor's error exceeds its value, and a bound of the division that ignores the
    divisor's guaranteed lower bound eps is infinite there (issue 21, item 4)."""

    def update(self, k, p, g):
        m, v = self.moments(k, g)
        m_hat, v_hat = m / (1 - 0.9**self.t), v / (1 - 0.999**self.t)
        step = self.lr * m_hat / (np.sqrt(v_hat) + EPS)
        p -= np.where(np.abs(g) < 1e-5, step + 5.0, step).astype(p.dtype)


class SGDTooFar(HandTrainer):
    """Plain SGD with 1.5 times the step, everywhere.

    Hides where the gradient's tolerance is huge: a float32 bce row whose output is within float32
    rounding of 1 (the "undetermined" allowance of issue 21, item 1, reached every weight)."""

    def update(self, k, p, g):
        p -= (1.5 * self.lr) * g


class LastStepTooFar(HandTrainer):
    """Plain SGD, right at every step but the ``last``-th, which takes 1.5 times the step.

    Hides in the last step of a trajectory: a check that never compares it passes this trainer
    (issue 21: with ``steps=1``, nothing was compared)."""

    last = 3

    def update(self, k, p, g):
        p -= (1.5 * self.lr if self.t == self.last else self.lr) * g


class FirstBatchForever(HandTrainer):
    """Plain SGD on the first batch it was given, at every step (the loader's first batch cached).

    Hides where every step's batch is the same: a check that draws one batch for all steps cannot
    tell it from a right trainer."""

    def step(self, X, Y):
        if not hasattr(self, "first"):
            self.first = (X, Y)
        super().step(*self.first)

    def update(self, k, p, g):
        p -= self.lr * g


class TooFarWhileDiverging(HandTrainer):
    """SGD with momentum 0.9 (torch's), with 1.5 times the step once some gradient exceeds 100.

    Hides in diverging trajectories: the steps where the weights grow fast, next to the steps the
    check leaves out because torch's trajectory leaves the dtype's range."""

    def step(self, X, Y):
        grads = [g for _, g in manual.gradients(self.spec, self.params, X, Y).arrays()]
        self.t += 1
        self.factor = 1.5 if max(float(np.max(np.abs(g))) for g in grads) > 100 else 1.0
        for k, (p, g) in enumerate(zip(self.P, grads)):
            self.update(k, p, g)

    def update(self, k, p, g):
        p -= (self.factor * self.lr) * self.buffer(k, g)


class WeightsOffByRounding(HandTrainer):
    """Plain SGD, then every weight moved by ``c`` units of rounding, ``c * 2 eps |W|`` (float64).

    Hides in the trajectory bound's rounding term; ``c = 0.5`` is a right run's rounding (passes),
    ``c = 4`` is beyond it (fails)."""

    c = 4.0

    def update(self, k, p, g):
        p -= self.lr * g
        p += self.c * 2 * np.finfo(p.dtype).eps * np.abs(p)


class GradientOffByTolerance(HandTrainer):
    """Plain SGD on manual's gradient plus ``c`` times the derived gradient tolerance of the case's
    dtype at the current weights.

    Hides in the trajectory bound's gradient-tolerance term; ``c = 0.5`` is within it (passes),
    ``c = 4`` beyond it (fails)."""

    c = 4.0

    def step(self, X, Y):
        T = [t for _, t in tolerance(self.spec, self.params, X, Y).grads.arrays()]
        grads = [g for _, g in manual.gradients(self.spec, self.params, X, Y).arrays()]
        self.t += 1
        for p, g, t in zip(self.P, grads, T):
            p -= self.lr * (g + self.c * t).astype(p.dtype)
