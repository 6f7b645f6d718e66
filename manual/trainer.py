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
- ``I = u W + b`` uses a fused ``addmm`` where the library has one;
- what depends on the spec alone (the activations' kernels, the form of the output delta, the
  reduction) is settled once, in the constructor, into one step function: on a small network a
  step is a dozen library calls of about a microsecond each, and Python deciding what to call
  would otherwise cost as much again.

With momentum or weight decay (:class:`manual.optim.SGD`) or Adam (:class:`AdamTrainer`,
:class:`manual.optim.Adam`) the gradient of each parameter is formed (``u^T delta``) and handed to
the rule, which keeps its state per parameter and updates the parameter in place.

Validation happens once, in the constructor; :meth:`Trainer.step` checks only shapes, so NaN or
infinite data passed to ``step`` is not caught there (use :func:`manual.sgd_step` for a checked,
functional step).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
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


def _activation(entry: Activation, xp: Any, fused: bool) -> Callable[[Array], Array]:
    """``I -> O``: on torch, the entry's in-place kernel where it has one (``I`` is overwritten by
    ``O = A(I)``; its derivative reads O only, so I is not needed again and a layer-sized
    temporary is saved); else its forward."""
    if fused and entry.in_place is not None:
        return entry.in_place
    forward = entry.forward
    return lambda I: forward(I, xp)


def _times(entry: Activation) -> Callable[[Array, Array, Array, Any], None]:
    """``times(d, I, O, xp)``: d *= A'(I) in place, by the entry's fused form where it has one. Called
    once per layer, after the layer's output O was last used (the weight update of the layer
    above), so it may overwrite O."""
    if entry.times_derivative is not None:
        return entry.times_derivative
    prime = entry.prime

    def times(d: Array, I: Array, O: Array, xp: Any) -> None:
        d *= prime(I, O, xp)

    return times


def _step_function(spec: Spec, xp: Any, fused: bool) -> Callable[..., None]:
    r"""The step for ``spec``, ``run(X, Y, weights, biases, rule, xi)``, with every choice that
    depends on the spec alone (activation kernels, the output delta's form, the reduction) made
    here once, so that a step on a small network is not dominated by Python deciding what to do.

    The arithmetic is that of the slides, in this order: forward
    :math:`I^{(l)} = u^{(l)} W^{(l)} + b^{(l)}`, :math:`u^{(l+1)} = \mathcal{A}(I^{(l)})`; the output delta;
    then from the top layer down :math:`\delta^{(l-1)} = (\delta^{(l)} W^{(l)T}) \odot \mathcal{A}'` from
    the old :math:`W^{(l)}`, and :math:`W^{(l)} \leftarrow W^{(l)} - \xi\, u^{(l)T} \delta^{(l)}`,
    :math:`b^{(l)} \leftarrow b^{(l)} - \xi \sum_n \delta^{(l)}_n`.
    """
    depth = spec.depth
    acts = tuple(_activation(entry, xp, fused) for entry in spec.activations)
    times = tuple(_times(entry) for entry in spec.activations)
    out = spec.activations[-1]
    canonical = spec.canonical
    chain = not canonical and out.elementwise and out.name not in spec.loss.cancelled
    general = not canonical and not chain  # softmax's vector-Jacobian product, a cancelled form
    gradient, times_out = spec.loss.gradient, times[-1]
    mean = spec.reduction == "mean"
    keys = tuple((("W", l), ("b", l)) for l in range(depth))
    # W^(l)T as a view, made again only when weights[l] is another array (W is updated in place)
    transposed: list[tuple[Any, Any]] = [(None, None)] * depth

    def run(X: Array, Y: Array, weights: list[Array], biases: list[Array] | None, rule: Any, xi: float) -> None:
        us, Is = [X], []  # us[l] = u^(l), us[l + 1] = O^(l); Is[l] = I^(l) (O itself, in place on torch)
        u = X
        for l, act in enumerate(acts):
            W = weights[l]
            if biases is None:
                I = u @ W
            elif fused:
                I = xp.addmm(biases[l], u, W)
            else:
                I = u @ W + biases[l]
            u = act(I)
            Is.append(I)
            us.append(u)
        I, O = Is[-1], u
        if canonical:
            delta = O - Y  # slide "Going backward....": delta^(2) = y* - y
        elif chain:
            delta = gradient(O, Y, xp)  # dL/dy* ⊙ A'(I^(L)), A' applied in place
            times_out(delta, I, O, xp)
        else:
            delta = output_delta(spec, I, O, Y)  # already divided by N for "mean"
        plain = rule.plain
        if mean and not general:
            if plain:
                xi = xi / X.shape[0]  # every delta is linear in the output's: 1/N goes into the step size
            else:
                delta /= X.shape[0]  # the rule is handed the gradient itself
        rule.begin_step()
        if plain and fused:
            for l in range(depth - 1, 0, -1):
                W = weights[l]
                pair = transposed[l]
                if pair[0] is not W:
                    pair = transposed[l] = (W, W.T)
                back = delta.mm(pair[1])  # from the old W^(l); torch's matmul of two matrices is mm
                W.addmm_(us[l].T, delta, alpha=-xi)
                if biases is not None:
                    biases[l].sub_(delta.sum(0), alpha=xi)
                times[l - 1](back, Is[l - 1], us[l], xp)
                delta = back
            weights[0].addmm_(X.T, delta, alpha=-xi)
            if biases is not None:
                biases[0].sub_(delta.sum(0), alpha=xi)
            return
        for l in range(depth - 1, -1, -1):
            W = weights[l]
            back = delta @ W.T if l > 0 else None  # from the old W^(l)
            if plain:
                g = us[l].T @ delta
                g *= xi
                W -= g
                if biases is not None:
                    biases[l] -= xi * delta.sum(axis=0)
            else:
                rule.update(keys[l][0], W, us[l].T @ delta)  # grad W^(l) = u^(l)T delta^(l)
                if biases is not None:
                    rule.update(keys[l][1], biases[l], xp.sum(delta, axis=0))
            if back is not None:
                times[l - 1](back, Is[l - 1], us[l], xp)
                delta = back

    return run


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
        # everything that depends only on the spec is settled here, once: step() runs one closure
        self._sizes = (spec.sizes[0], spec.sizes[-1])
        self._run = _step_function(spec, xp, self._fused)

    @property
    def params(self) -> Params:
        """The current weights (the trainer's own arrays, not copies)."""
        return Params(self.weights, self.biases)

    def step(self, X: Array, Y: Array) -> None:
        """One step on the batch ``X`` (N, D), ``Y`` (N, J); updates :attr:`weights` in place."""
        D, J = self._sizes
        shape = X.shape  # read once: torch builds a new Size object on every read
        if len(shape) != 2 or shape[1] != D or Y.shape != (shape[0], J):
            raise ValueError(f"X must be (N, {D}) and Y (N, {J}), got {tuple(X.shape)} and {tuple(Y.shape)}")
        if getattr(X, "requires_grad", False):  # _plain, inlined: this runs on every step
            X = X.detach()
        if getattr(Y, "requires_grad", False):
            Y = Y.detach()
        # lr, rule, weights and biases are read on every step: a schedule may change lr between steps
        self._run(X, Y, self.weights, self.biases, self.rule, self.lr)


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
