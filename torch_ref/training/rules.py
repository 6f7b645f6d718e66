r"""Update rules as plain functions of (parameter, gradient, state), in float64: the rule a
``torch.optim`` optimizer applies (read from the optimizer object), and the wrong rules people write
instead, for the diagnosis of :func:`torch_ref.check_training`.

A :class:`Rule` runs on NumPy arrays or on :class:`~torch_ref.numerics.bound.Bound` values alike (only
``+ - * /`` and a square root), so the one description gives the reference's step and its
tolerance. The variants, each a mistake seen in public code (the tests cite them):

- SGD: momentum as an average, ``b = mu b + (1 - mu) g`` from ``b = 0`` (``ema``); the buffer's
  first step dampened, ``b_1 = (1 - tau) g`` (``damp_first``); Nesterov on or off; weight decay
  applied to the update after the buffer, i.e. decoupled (``decay_after``); weight decay without
  the learning rate, ``P -= lambda P`` (``decay_no_lr``); the buffer not kept between steps.
- Adam: no bias correction (``no_bias_correction``); eps inside the square root,
  ``sqrt(v_hat + eps)`` (``eps_inside``); eps before the bias correction, TensorFlow's
  ``eps_hat``, ``lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)`` (``eps_hat``); the step count
  advanced once per parameter (``t_per_param``) or never (``t_fixed``); weight decay coupled where
  it should be decoupled and the reverse.

Adam's quotient has two facts of its own that the tolerance uses (:meth:`Bound.at_least`,
:meth:`Bound.within`; issue 21, where the quotient's bound was infinite): its divisor
:math:`\sqrt{\hat v} + \epsilon` is at least :math:`\epsilon` whatever :math:`\hat v`'s error, and
after n steps from :math:`m = v = 0`, by Cauchy-Schwarz over the moments' weights,

.. math::
    |m_n| = (1 - \beta_1) \Big|\sum_i \beta_1^{n-i} g_i\Big|
    \le \rho_n \sqrt{v_n}, \qquad
    \rho_n = \frac{1 - \beta_1}{\sqrt{1 - \beta_2}} \sqrt{\sum_{j<n} (\beta_1^2 / \beta_2)^j}

for *any* gradients, so :math:`|\hat m / (\sqrt{\hat v} + \epsilon)| \le \rho_n \sqrt{1 - \beta_2^t}
/ (1 - \beta_1^t) \cdot (1 - \beta_1^t) = \rho_n \sqrt{1 - \beta_2^t}` (1 at the first step). A
correct run in a coarser dtype obeys it up to the rounding of its 2n moment updates and the
quotient's few operations, ``(8 n + 8) unit`` relative.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..numerics.bound import Bound

__all__ = ["Rule", "rule_of", "variants"]


def _sqrt(x: Any) -> Any:
    return x.sqrt() if isinstance(x, Bound) else np.sqrt(x)


def _copy(x: Any) -> Any:
    return x * 1.0


def _ratio(m: Any, divisor: Any, lo: float, R: float, n: int) -> Any:
    """``m / divisor`` where every correct divisor is at least ``lo`` and every correct quotient lies in
    ``[-R, R]`` (exact arithmetic; widened by ``(8 n + 8) unit`` for a run of ``n`` steps)."""
    if not isinstance(divisor, Bound):
        return m / divisor
    q = m / divisor.at_least(lo)
    if not isinstance(q, Bound):
        return q
    return q.within(R * (1 + (8 * n + 8) * q.unit))


@dataclass(frozen=True)
class Rule:
    """One update rule; :meth:`step` applies it to every parameter of one training step."""

    kind: str  # "sgd" or "adam"
    lr: float
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    decoupled: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    # mistakes
    ema: bool = False
    damp_first: bool = False
    decay_after: bool = False
    decay_no_lr: bool = False
    stateless: bool = False
    no_bias_correction: bool = False
    eps_inside: bool = False
    eps_hat: bool = False
    t_per_param: bool = False
    t_fixed: bool = False

    def describe(self) -> str:
        """As the torch constructor call that makes it (for the right rules)."""
        if self.kind == "sgd":
            extra = [
                f"momentum={self.momentum:g}" if self.momentum else "",
                f"dampening={self.dampening:g}" if self.dampening else "",
                "nesterov=True" if self.nesterov else "",
                f"weight_decay={self.weight_decay:g}" if self.weight_decay else "",
            ]
            return f"torch.optim.SGD(lr={self.lr:g}{''.join(', ' + e for e in extra if e)})"
        name = "AdamW" if self.decoupled else "Adam"
        return (
            f"torch.optim.{name}(lr={self.lr:g}, betas=({self.betas[0]:g}, {self.betas[1]:g}), eps={self.eps:g}, "
            f"weight_decay={self.weight_decay:g})"
        )

    def step(self, P: list[Any], G: list[Any], state: dict[Any, Any]) -> list[Any]:
        """The parameters after one step from gradients ``G``; ``state`` (``{}`` at first) is updated."""
        state["t"] = state.get("t", 0) + 1
        out = []
        for k, (p, g) in enumerate(zip(P, G)):
            out.append(self._sgd(k, p, g, state) if self.kind == "sgd" else self._adam(k, p, g, state, len(P)))
        return out

    def _sgd(self, k: int, p: Any, g: Any, state: dict[Any, Any]) -> Any:
        mu, tau, lam = self.momentum, (self.momentum if self.ema else self.dampening), self.weight_decay
        if lam and not (self.decay_after or self.decay_no_lr):
            g = g + lam * p
        if mu:
            b = None if self.stateless else state.get(("b", k))
            if b is None:
                b = (1 - tau) * g if (self.damp_first or self.ema) else _copy(g)
            else:
                b = mu * b + (1 - tau) * g
            state[("b", k)] = b
            d = g + mu * b if self.nesterov else b
        else:
            d = g
        if lam and self.decay_after:
            d = d + lam * p
        p = p - self.lr * d
        if lam and self.decay_no_lr:
            p = p - lam * p
        return p

    def _adam(self, k: int, p: Any, g: Any, state: dict[Any, Any], count: int) -> Any:
        b1, b2, lam = self.betas[0], self.betas[1], self.weight_decay
        t = state["t"]
        if self.t_fixed:
            t = 1
        elif self.t_per_param:
            t = (t - 1) * count + k + 1
        if lam and self.decoupled:
            p = (1 - self.lr * lam) * p
        elif lam:
            g = g + lam * p
        m0, v0 = state.get(("m", k), 0.0), state.get(("v", k), 0.0)
        m = b1 * m0 + (1 - b1) * g
        v = b2 * v0 + (1 - b2) * (g * g)
        state[("m", k)], state[("v", k)] = m, v
        n, eps = state["t"], self.eps  # n: the moments' updates so far, whatever t the correction uses
        rho = (1 - b1) / np.sqrt(1 - b2) * np.sqrt(sum((b1 * b1 / b2) ** j for j in range(n)))  # |m| <= rho sqrt(v)
        if self.no_bias_correction:
            return p - self.lr * _ratio(m, _sqrt(v) + eps, eps, rho, n)
        c1, c2 = 1 - b1**t, 1 - b2**t
        if self.eps_hat:
            return p - (self.lr * np.sqrt(c2) / c1) * _ratio(m, _sqrt(v) + eps, eps, rho, n)
        if self.eps_inside:
            return p - (self.lr / c1) * _ratio(m, _sqrt(v * (1 / c2) + eps), np.sqrt(eps), rho * np.sqrt(c2), n)
        return p - (self.lr / c1) * _ratio(m, _sqrt(v) * (1 / np.sqrt(c2)) + eps, eps, rho * np.sqrt(c2), n)


SUPPORTED = ("torch.optim.SGD", "torch.optim.Adam", "torch.optim.AdamW")


def rule_of(optimizer: Any) -> Rule:
    """The :class:`Rule` of a ``torch.optim`` optimizer object; ``ValueError`` for one whose update has
    no model here (another class, parameter groups that differ, amsgrad, maximize)."""
    import torch

    groups = optimizer.param_groups
    keys = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "betas", "eps", "amsgrad", "maximize")
    first = {k: groups[0].get(k) for k in keys}
    if any({k: g.get(k) for k in keys} != first for g in groups[1:]):
        raise ValueError("the optimizer's parameter groups have different settings; check_training needs one group")
    if first.get("maximize"):
        raise ValueError("maximize=True has no trajectory model here; the objective is minimised")
    lr = float(first["lr"])
    if type(optimizer) is torch.optim.SGD:
        return Rule(
            "sgd",
            lr,
            momentum=float(first["momentum"]),
            dampening=float(first["dampening"]),
            nesterov=bool(first["nesterov"]),
            weight_decay=float(first["weight_decay"]),
        )
    if type(optimizer) in (torch.optim.Adam, torch.optim.AdamW):
        if first.get("amsgrad"):
            raise ValueError("amsgrad=True has no trajectory model here")
        decoupled = type(optimizer) is torch.optim.AdamW or bool(groups[0].get("decoupled_weight_decay", False))
        b1, b2 = first["betas"]
        return Rule(
            "adam",
            lr,
            weight_decay=float(first["weight_decay"]),
            decoupled=decoupled,
            betas=(float(b1), float(b2)),
            eps=float(first["eps"]),
        )
    raise ValueError(
        f"optimizer made a {type(optimizer).__module__}.{type(optimizer).__name__}; check_training has a "
        f"trajectory tolerance for {', '.join(SUPPORTED)}"
    )


def variants(rule: Rule) -> list[tuple[Rule, str]]:
    """The wrong rules a person writes in place of ``rule``, each with what it does in words."""
    if rule.kind == "sgd":
        return [*_momentum_variants(rule), *_sgd_decay_variants(rule), *_other_optimizer(rule)]
    return [*_adam_variants(rule), *_adam_decay_variants(rule), *_other_optimizer(rule)]


def _other_optimizer(rule: Rule) -> list[tuple[Rule, str]]:
    """The other optimizer altogether at the same learning rate, with its defaults: a trainer checked
    against an optimizer it does not implement (an Adam trainer against the default SGD, or the reverse)."""
    if rule.kind == "sgd":
        other = Rule("adam", rule.lr)
        return [
            (
                other,
                f"Adam (betas {other.betas}, eps {other.eps:g}) where the optimizer is SGD: check it with optimizer=torch.optim.Adam",
            )
        ]
    return [(Rule("sgd", rule.lr), "plain SGD (w - lr g) where the optimizer is Adam")]


def _momentum_variants(rule: Rule) -> list[tuple[Rule, str]]:
    """SGD's momentum written wrong: as an average, its first step dampened, Nesterov's update swapped
    for the plain one or back, the buffer not kept; momentum added where the optimizer has none."""
    mu = rule.momentum
    if not mu:
        return [(replace(rule, momentum=0.9), "momentum 0.9 where the optimizer has none")]
    torchs = (
        f"torch adds the whole gradient, b = {mu:g} b + g with b_1 = g"
        if not rule.dampening
        else f"torch takes b = {mu:g} b + (1 - {rule.dampening:g}) g with b_1 = g"
    )
    out = [
        (
            replace(rule, ema=True),
            f"momentum as an average, b = {mu:g} b + (1 - {mu:g}) g starting from b = 0, where {torchs}",
        )
    ]
    if rule.dampening:  # with no dampening the first step is the same either way
        out.append(
            (
                replace(rule, damp_first=True),
                f"the buffer's first step dampened, b_1 = (1 - {rule.dampening:g}) g, where torch starts with b_1 = g",
            )
        )
    out.append(
        (
            replace(rule, nesterov=not rule.nesterov),
            "Nesterov's update P -= lr (g + mu b) where torch takes P -= lr b"
            if not rule.nesterov
            else "the plain momentum update P -= lr b where Nesterov's is P -= lr (g + mu b)",
        )
    )
    out.append((replace(rule, stateless=True), "the momentum buffer not kept between steps"))
    return out


def _sgd_decay_variants(rule: Rule) -> list[tuple[Rule, str]]:
    """SGD's weight decay written wrong (none where the optimizer has none): applied after the momentum
    buffer, without the learning rate, or left out."""
    lam = rule.weight_decay
    if not lam:
        return []
    return [
        (
            replace(rule, decay_after=True),
            f"weight decay applied to the update after the momentum buffer (P -= lr (b + {lam:g} P), "
            f"decoupled), where torch adds {lam:g} P to the gradient before the buffer",
        ),
        (
            replace(rule, decay_no_lr=True),
            f"weight decay without the learning rate, P -= {lam:g} P, where torch adds {lam:g} P to the "
            f"gradient (so it is scaled by lr, and passes through the momentum buffer)",
        ),
        (replace(rule, weight_decay=0.0), "no weight decay"),
    ]


def _adam_variants(rule: Rule) -> list[tuple[Rule, str]]:
    """Adam's step written wrong: no bias correction, eps inside the square root or before the
    correction (TensorFlow's epsilon hat), the step count advanced per parameter or never."""
    return [
        (replace(rule, no_bias_correction=True), "no bias correction of m and v"),
        (
            replace(rule, eps_inside=True),
            "eps inside the square root, sqrt(v_hat + eps), where torch adds it to sqrt(v_hat)",
        ),
        (
            replace(rule, eps_hat=True),
            "eps added before the bias correction (TensorFlow's epsilon hat: lr sqrt(1 - b2^t) / (1 - b1^t) "
            "m / (sqrt(v) + eps)), where torch adds it after: m_hat / (sqrt(v_hat) + eps)",
        ),
        (replace(rule, t_per_param=True), "the step count t advanced once per parameter, not once per step"),
        (replace(rule, t_fixed=True), "the step count t never advanced (bias correction of step 1 throughout)"),
    ]


def _adam_decay_variants(rule: Rule) -> list[tuple[Rule, str]]:
    """Adam's weight decay written wrong (none where the optimizer has none): coupled where it is
    decoupled (AdamW) and the reverse, or left out."""
    if not rule.weight_decay:
        return []
    return [
        (
            replace(rule, decoupled=not rule.decoupled),
            "decoupled weight decay, P *= (1 - lr lambda) (AdamW), where torch.optim.Adam adds lambda P to the gradient"
            if not rule.decoupled
            else "weight decay added to the gradient (Adam's L2), where AdamW decays the weights, P *= (1 - lr lambda)",
        ),
        (replace(rule, weight_decay=0.0), "no weight decay"),
    ]
