r"""Update rules with state, written out by hand: SGD with momentum, dampening, Nesterov and weight
decay, and Adam (coupled L2 or decoupled weight decay), each with ``torch.optim``'s exact semantics.

A rule gets the gradient ``G`` of one parameter ``P`` (a temporary the caller owns, which the rule
may overwrite) and updates ``P`` in place; its state (momentum buffers, moments) is kept per
parameter key, so one rule object serves a whole network across steps. The step count ``t`` of Adam
advances once per training step (:meth:`Adam.begin_step`), never once per parameter.

Each rule's constructor is the one place that names its options (``lr`` positional, the rest
keyword-only), their defaults and their checks: :class:`manual.Trainer` and
:class:`manual.AdamTrainer` take exactly those keywords (:func:`options`, :func:`make_rule`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from numbers import Real
from typing import Any

from ._entry import did_you_mean
from ._xp import Array
from .validate import check_lr

__all__ = ["SGD", "Adam", "make_rule", "options"]


def _number(name: str, value: object, low: float = 0.0, high: float = math.inf, closed: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    v = float(value)
    if not (math.isfinite(v) and low <= v and (v <= high if closed else v < high)):
        bracket = "]" if closed else ")"
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}{bracket}, got {value!r}")
    return v


class SGD:
    r"""``torch.optim.SGD``: learning rate :math:`\xi`, momentum :math:`\mu`, dampening :math:`\tau`,
    weight decay :math:`\lambda`; per parameter at step t, with :math:`g_t = \nabla_P` objective:

    .. math::
        g_t &\leftarrow g_t + \lambda P_{t-1} \\
        b_t &= g_t \ (t = 1), \qquad b_t = \mu b_{t-1} + (1 - \tau) g_t \ (t > 1) \\
        d_t &= g_t + \mu b_t \ \text{(Nesterov)}, \qquad d_t = b_t \ \text{(else)} \\
        P_t &= P_{t-1} - \xi d_t

    (with :math:`\mu = 0` there is no buffer and :math:`d_t = g_t`). The buffer starts as the first
    gradient itself, undamped, as torch's does.
    """

    def __init__(
        self,
        lr: float,
        *,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        self.lr = check_lr(lr)
        self.momentum = _number("momentum", momentum)
        self.dampening = _number("dampening", dampening, high=1.0, closed=True)
        self.weight_decay = _number("weight_decay", weight_decay)
        if not isinstance(nesterov, bool):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening 0 (as torch.optim.SGD), got momentum="
                f"{momentum!r}, dampening={dampening!r}"
            )
        self.nesterov = nesterov
        self.buffers: dict[Any, Array] = {}

    @property
    def plain(self) -> bool:
        """No momentum and no weight decay: :math:`P \\leftarrow P - \\xi g` (the slides' rule)."""
        return self.momentum == 0 and self.weight_decay == 0

    def begin_step(self) -> None:
        """Nothing to count for SGD (its buffer's first step is known per parameter)."""

    def update(self, key: Any, P: Array, G: Array) -> None:
        """``P`` updated in place from its gradient ``G`` (which may be overwritten)."""
        mu = self.momentum
        if self.weight_decay:
            G += self.weight_decay * P
        if mu:
            b = self.buffers.get(key)
            if b is None:
                b = self.buffers[key] = G * 1.0  # b_1 = g_1: a copy, undamped
            else:
                b *= mu
                b += (1 - self.dampening) * G
            if self.nesterov:
                G += mu * b
            else:
                G = b
        P -= self.lr * G


class Adam:
    r"""``torch.optim.Adam`` (``decoupled=False``) and ``torch.optim.AdamW`` (``decoupled=True``):
    learning rate :math:`\xi`, :math:`(\beta_1, \beta_2)`, :math:`\epsilon`, weight decay
    :math:`\lambda`; per parameter at step t (counted once per training step, from 1):

    .. math::
        g_t &\leftarrow g_t + \lambda P_{t-1} \ \text{(coupled, Adam)}, \qquad
        P_{t-1} \leftarrow (1 - \xi\lambda) P_{t-1} \ \text{(decoupled, AdamW)} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2
        \qquad (m_0 = v_0 = 0) \\
        P_t &= P_{t-1} - \frac{\xi}{1 - \beta_1^t} \, \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    :math:`\epsilon` is added after the bias correction of :math:`\sqrt{v_t}`, outside the root, as
    torch adds it.
    """

    def __init__(
        self,
        lr: float,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled: bool = False,
    ) -> None:
        self.lr = check_lr(lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_number("betas[0]", betas[0], high=1.0), _number("betas[1]", betas[1], high=1.0))
        self.eps = _number("eps", eps)
        self.weight_decay = _number("weight_decay", weight_decay)
        if not isinstance(decoupled, bool):
            raise TypeError(f"decoupled must be True or False, got {decoupled!r}")
        self.decoupled = decoupled
        self.t = 0
        self.moments: dict[Any, tuple[Array, Array]] = {}

    plain = False

    def begin_step(self) -> None:
        """Advance the step count t by one (call once per training step, before its updates)."""
        self.t += 1

    def update(self, key: Any, P: Array, G: Array) -> None:
        """``P`` updated in place from its gradient ``G`` (which may be overwritten)."""
        if self.t < 1:
            raise RuntimeError("Adam.update before begin_step(): the step count t starts at 1")
        beta1, beta2 = self.betas
        if self.weight_decay and self.decoupled:
            P *= 1 - self.lr * self.weight_decay
        elif self.weight_decay:
            G += self.weight_decay * P
        if key not in self.moments:
            self.moments[key] = (G * 0.0, G * 0.0)
        m, v = self.moments[key]
        m *= beta1
        m += (1 - beta1) * G
        v *= beta2
        v += (1 - beta2) * (G * G)
        denom = v**0.5
        denom /= math.sqrt(1 - beta2**self.t)
        denom += self.eps
        P -= (self.lr / (1 - beta1**self.t)) * (m / denom)


def options(rule: type[SGD] | type[Adam]) -> tuple[inspect.Parameter, ...]:
    """The keyword-only options of ``rule``'s constructor, in order, with their defaults and
    annotations (``lr``, positional, is not among them)."""
    return tuple(p for p in inspect.signature(rule).parameters.values() if p.kind is p.KEYWORD_ONLY)


def make_rule(rule: type[SGD] | type[Adam], lr: float, given: Mapping[str, Any], *, where: str) -> SGD | Adam:
    """``rule(lr, **given)``; an option ``rule`` does not take is a ``TypeError`` that names the
    caller (``where``) and the options it accepts."""
    accepted = [p.name for p in options(rule)]
    for name in given:
        if name not in accepted:
            raise TypeError(
                f"{where} got an unknown option {name!r}{did_you_mean(name, accepted)}; accepted: lr, "
                f"{', '.join(accepted)} (the options of manual.optim.{rule.__name__})"
            )
    return rule(lr, **given)
