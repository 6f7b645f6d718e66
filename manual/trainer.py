r"""In-place full-batch gradient descent: the training step the benchmarks time.

The same formulas as :func:`manual.sgd_step` (slide "Going backward....":
:math:`W^{(l)} \leftarrow W^{(l)} - \xi\, u^{(l)T} \delta^{(l)}`, every delta from the old weights),
arranged to do no work autograd would not do:

- the weights are updated in place; on libraries that offer a fused ``addmm_`` (torch) the update
  ``W - xi u^T delta`` is one matrix product accumulated into ``W``, with no gradient temporary;
  elsewhere (NumPy) the product goes to a temporary that is scaled and subtracted in place;
- ``delta^(l-1) = (delta^(l) W^(l)T) ⊙ A'`` is formed before ``W^(l)`` changes, and multiplied by
  ``A'`` in place;
- for ``reduction="mean"`` the deltas are kept undivided and ``1/N`` goes into the step size
  (``xi/N``): the deltas are linear in the output delta, so this is the same update with one pass
  over delta fewer;
- ``I = u W + b`` uses a fused ``addmm`` where the library has one.

With momentum or weight decay (:class:`manual.optim.SGD`) or Adam (:class:`AdamTrainer`,
:class:`manual.optim.Adam`) the gradient of each parameter is formed (``u^T delta``) and handed to
the rule, which keeps its state per parameter and updates the parameter in place.

Validation happens once, in the constructor; :meth:`Trainer.step` checks only shapes, so NaN or
infinite data passed to ``step`` is not caught there (use :func:`manual.sgd_step` for a checked,
functional step).
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

from . import optim
from ._xp import Array, namespace
from .activation import Activation
from .backward import output_delta
from .params import Params
from .spec import Spec
from .validate import check_params

__all__ = ["AdamTrainer", "Trainer"]


def _plain(a: Array) -> Array:
    """``a`` cut from any autograd graph (a torch tensor that requires grad is detached; other
    arrays pass through), so that no step ever records a graph."""
    return a.detach() if getattr(a, "requires_grad", False) else a


def _own_copy(xp: Any, a: Array) -> Array:
    return xp.asarray(_plain(a), copy=True)


def _signature(rule: type[optim.SGD] | type[optim.Adam]) -> inspect.Signature:
    """``(spec, params, *, lr, <the rule's options>)``: what a trainer over ``rule`` is called with,
    as ``help()`` and ``inspect.signature`` show it; the options come from the rule's constructor."""
    head = [
        inspect.Parameter("spec", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="Spec"),
        inspect.Parameter("params", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="Params"),
        inspect.Parameter("lr", inspect.Parameter.KEYWORD_ONLY, annotation="float"),
    ]
    return inspect.Signature([*head, *optim.options(rule)], return_annotation="None")


class Trainer:
    r"""Owns a copy of the weights and steps them in place: full-batch gradient descent with
    ``torch.optim.SGD``'s options (see :class:`manual.optim.SGD` for the update, written out).

    Args:
        spec, params: the network and its starting weights (copied).
        lr: the learning rate :math:`\xi`.
        momentum, dampening, nesterov, weight_decay: as ``torch.optim.SGD`` (defaults: none, the
            slides' plain rule, done by fused in-place products); the options of
            :attr:`rule_type`'s constructor, checked there.

    Example:
        >>> import numpy as np
        >>> from manual import Spec, init_params
        >>> spec = Spec((2, 2, 1), ("sigmoid", "sigmoid"), "bce")
        >>> t = Trainer(spec, init_params(spec, np.random.default_rng(0)), lr=0.5)
        >>> t.step(np.ones((4, 2)), np.ones((4, 1)))
        >>> t.params.weights[0].shape
        (2, 2)
    """

    rule_type: ClassVar[type[optim.SGD] | type[optim.Adam]] = optim.SGD
    """The update rule; its constructor's keyword options are the trainer's."""

    # what help() and inspect.signature show: spec, params, lr and the rule's own options
    __signature__: ClassVar[inspect.Signature]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__signature__ = _signature(cls.rule_type)

    def __init__(self, spec: Spec, params: Params, *, lr: float, **options: Any) -> None:
        rule = optim.make_rule(self.rule_type, lr, options, where=f"manual.{type(self).__name__}")
        check_params(spec, params)
        self.spec = spec
        self.rule = rule
        self.lr = rule.lr
        xp = namespace(params.weights[0])
        self._xp = xp
        self.weights = [_own_copy(xp, W) for W in params.weights]
        self.biases = None if params.biases is None else [_own_copy(xp, b) for b in params.biases]
        self._fused = hasattr(params.weights[0], "addmm_")  # torch tensors
        self._forward = [self._in_place(entry) for entry in spec.activations]

    def _in_place(self, entry: Activation) -> Any:
        """``I -> O``: on torch, the entry's in-place kernel where it has one (``I`` is overwritten by
        ``O = A(I)``; its derivative reads O only, so I is not needed again and a layer-sized
        temporary is saved); else its forward."""
        if self._fused and entry.in_place is not None:
            return entry.in_place
        xp = self._xp
        return lambda I: entry.forward(I, xp)

    @property
    def params(self) -> Params:
        """The current weights (the trainer's own arrays, not copies)."""
        return Params(self.weights, self.biases)

    def _affine(self, u: Array, l: int) -> Array:
        W = self.weights[l]
        if self.biases is None:
            return u @ W
        if self._fused:
            return self._xp.addmm(self.biases[l], u, W)
        return u @ W + self.biases[l]

    def _times_derivative(self, d: Array, entry: Activation, I: Array, O: Array) -> None:
        """d *= A'(I) in place, by the entry's fused form where it has one. Called once per layer,
        after the layer's output O was last used (the weight update of the layer above), so it may
        overwrite O."""
        if entry.times_derivative is not None:
            entry.times_derivative(d, I, O, self._xp)
        else:
            d *= entry.prime(I, O, self._xp)

    def step(self, X: Array, Y: Array) -> None:
        """One step on the batch ``X`` (N, D), ``Y`` (N, J); updates :attr:`weights` in place."""
        spec = self.spec
        if X.ndim != 2 or X.shape[1] != spec.sizes[0] or Y.shape != (X.shape[0], spec.sizes[-1]):
            raise ValueError(
                f"X must be (N, {spec.sizes[0]}) and Y (N, {spec.sizes[-1]}), got {tuple(X.shape)} and {tuple(Y.shape)}"
            )
        X, Y = _plain(X), _plain(Y)
        us, Is, Os = [X], [], []
        for l, act in enumerate(self._forward):
            Is.append(self._affine(us[-1], l))
            Os.append(act(Is[-1]))
            us.append(Os[-1])
        out = spec.activations[-1]
        if spec.canonical:
            delta = Os[-1] - Y  # slide "Going backward....": delta^(2) = y* - y
        elif out.elementwise and out.name not in spec.loss.cancelled:
            delta = spec.loss.gradient(Os[-1], Y, self._xp)  # dL/dy* ⊙ A'(I^(L)), A' applied in place
            self._times_derivative(delta, out, Is[-1], Os[-1])
        else:
            delta = None  # softmax's vector-Jacobian product, a cancelled form
        rule = self.rule
        xi = self.lr
        if delta is None:
            delta = output_delta(spec, Is[-1], Os[-1], Y)  # already divided by N for "mean"
        elif spec.reduction == "mean":
            if rule.plain:
                xi = xi / X.shape[0]  # every delta is linear in the output's: 1/N goes into the step size
            else:
                delta /= X.shape[0]  # the rule is handed the gradient itself
        rule.begin_step()
        for l in range(spec.depth - 1, -1, -1):
            W = self.weights[l]
            back = delta @ W.T if l > 0 else None  # from the old W^(l)
            if not rule.plain:
                rule.update(("W", l), W, us[l].T @ delta)  # grad W^(l) = u^(l)T delta^(l)
                if self.biases is not None:
                    rule.update(("b", l), self.biases[l], self._xp.sum(delta, axis=0))
            elif self._fused:
                W.addmm_(us[l].T, delta, alpha=-xi)
            else:
                g = us[l].T @ delta
                g *= xi
                W -= g
            if self.biases is not None and rule.plain:
                if self._fused:
                    self.biases[l].sub_(delta.sum(0), alpha=xi)
                else:
                    self.biases[l] -= xi * delta.sum(axis=0)
            if back is not None:
                self._times_derivative(back, spec.activations[l - 1], Is[l - 1], Os[l - 1])
                delta = back


Trainer.__signature__ = _signature(Trainer.rule_type)


class AdamTrainer(Trainer):
    r"""A :class:`Trainer` whose update is ``torch.optim.Adam`` (``decoupled=False``: weight decay as
    an L2 term in the gradient) or ``torch.optim.AdamW`` (``decoupled=True``); the update is written
    out in :class:`manual.optim.Adam`.

    Example:
        >>> import numpy as np
        >>> from manual import Spec, init_params
        >>> spec = Spec((2, 3, 1), ("tanh", "identity"), "squared", bias=True)
        >>> t = AdamTrainer(spec, init_params(spec, np.random.default_rng(0)), lr=0.01)
        >>> t.step(np.ones((4, 2)), np.zeros((4, 1))); t.rule.t
        1
    """

    rule_type = optim.Adam
