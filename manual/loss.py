r"""One per-example loss L(y, y*) and everything the code needs to know about it: one registry entry.

The built-in entries are in :mod:`manual.losses`; a user's own entry is checked against autograd of
its own ``value`` (see :mod:`torch_ref`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from ._entry import MissingDerivativeError, NamedEntry, check_signature
from ._xp import Array
from .activation import Activation

__all__ = ["TARGETS", "Loss"]

# what a loss's targets may be: any reals, [0, 1], rows on the probability simplex, one 1 per row
TARGETS = ("real", "unit", "simplex", "onehot")


@dataclass(frozen=True, eq=False, repr=False)
class Loss(NamedEntry):
    r"""A per-example loss :math:`L(y, y^*)`, summed over the J outputs of one example.

    Args:
        name: how specs and reports name it.
        value: ``value(O, Y, xp) -> L``, shape ``(N,)``, from the prediction ``O = y*`` and the targets
            ``Y``, both ``(N, J)``; the objective sums it over N (or averages, ``reduction="mean"``).
        gradient: ``gradient(O, Y, xp) -> dL/dy*``, shape ``(N, J)``.

    Keyword-only (all optional):
        targets: ``"real"`` (any finite values; default), ``"unit"`` ([0, 1]), ``"simplex"`` (rows of
            entries >= 0 summing to 1) or ``"onehot"`` (one 1 per row, zeros elsewhere): what inputs
            validation accepts and what the strategies draw.
        outputs: the output activations (names) the loss accepts; ``None`` (default): every
            elementwise activation.
        softmax: the loss also accepts a vector-valued output, softmax (its delta then goes through
            the activation's vector-Jacobian product of :math:`h = y^* \odot \partial L/\partial y^*`).
        canonical: output activations (names) with which the output delta simplifies to
            :math:`\delta = y^* - y` (slide "Weight updates: compact representation").
        times_output: ``times_output(O, Y, xp) -> h``, :math:`h = y^* \odot \partial L/\partial y^*`
            with y* cancelled before evaluation where the loss allows (ce: :math:`-y`); by default
            ``O * gradient(O, Y, xp)``.
        cancelled: ``{output name: fn(I, O, Y, xp) -> delta}``: output deltas written with common
            factors cancelled (sigmoid + ce: :math:`-y(1 - y^*)`), used instead of
            ``gradient * A'``.
        from_logits: ``{output name: fn(I, Y, xp) -> L}``: the per-example value written from the
            output layer's pre-activation, stable where y* underflows (ce on softmax by log-sum-exp).
        r_cancelled: ``{output name: fn(I, O, Y, RI, RO, xp) -> R{delta}}``: the output delta's
            directional derivative for :func:`manual.hvp` with common factors cancelled, as
            ``cancelled`` does at first order (sigmoid + ce: :math:`y \odot \mathcal{R}\{y^*\}`, where the
            general form multiplies :math:`y/y^{*2}` by :math:`y^{*2}`), per example, not divided by N.
        exact_delta: ``{output name: fn(I, O, Y, xp) -> delta}``: the output delta of the exact
            objective where the first-order one follows a convention that is no derivative (bce on
            softmax: torch's floor max(y*(1 - y*), 1e-12)); :func:`manual.hvp` carries it with
            ``r_cancelled``'s :math:`\mathcal{R}\{\delta\}`, so that both are of one objective
            (issue 21). Per example, not divided by N.
        gn_cancelled: ``{output name: fn(I, O, Y, RI, RO, xp) -> delta}``: the Gauss-Newton pass's
            output delta :math:`\mathcal{A}' \odot H_L \mathcal{R}\{y^*\}` with common factors
            cancelled (sigmoid + ce: :math:`y (1 - y^*)^2 \mathcal{R}\{I\}`; sigmoid + bce:
            :math:`(y^{*2} - 2 y y^* + y) \mathcal{R}\{I\}`), for :func:`manual.gnvp`.
        hessian: ``hessian(O, Y, R, xp) -> H R``: the loss's second derivative in y* applied to a
            direction R, per example, shape ``(N, J)``
            (:math:`\sum_k \partial^2 L / \partial y^*_j \partial y^*_k \, R_k`); what
            :func:`manual.hvp` and :func:`manual.gnvp` need. ``None``: they refuse a spec that uses it.
        description: the formula in words.

    Example:
        >>> import numpy as np
        >>> half_squares = Loss("half_squares", lambda O, Y, xp: xp.sum((O - Y) ** 2, axis=-1) / 2,
        ...                     lambda O, Y, xp: O - Y)
        >>> half_squares.value(np.array([[3.0, 1.0]]), np.zeros((1, 2)), np)
        array([5.])
    """

    name: str
    value: Callable[[Array, Array, Any], Array]
    gradient: Callable[[Array, Array, Any], Array]
    _: KW_ONLY
    targets: str = "real"
    outputs: tuple[str, ...] | None = None
    softmax: bool = False
    canonical: tuple[str, ...] = ()
    times_output: Callable[[Array, Array, Any], Array] | None = None
    cancelled: Mapping[str, Callable[[Array, Array, Array, Any], Array]] = field(default_factory=dict)
    from_logits: Mapping[str, Callable[[Array, Array, Any], Array]] = field(default_factory=dict)
    hessian: Callable[[Array, Array, Array, Any], Array] | None = None
    r_cancelled: Mapping[str, Callable[..., Array]] = field(default_factory=dict)
    gn_cancelled: Mapping[str, Callable[..., Array]] = field(default_factory=dict)
    exact_delta: Mapping[str, Callable[..., Array]] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"Loss name must be an identifier such as 'log_cosh', got {self.name!r}")
        for name in ("value", "gradient"):
            if not callable(getattr(self, name)):
                raise TypeError(f"Loss {self.name!r}: {name}(O, Y, xp) must be callable, got {getattr(self, name)!r}")
        for name, params in (("value", "O, Y, xp"), ("gradient", "O, Y, xp")):
            check_signature("Loss", self.name, name, getattr(self, name), params)
        if self.times_output is not None and not callable(self.times_output):
            raise TypeError(f"Loss {self.name!r}: times_output must be callable or None, got {self.times_output!r}")
        if self.targets not in TARGETS:
            raise ValueError(f"Loss {self.name!r}: targets must be one of {TARGETS}, got {self.targets!r}")
        if self.outputs is not None:
            object.__setattr__(self, "outputs", _names(self.name, "outputs", self.outputs))
        object.__setattr__(self, "canonical", _names(self.name, "canonical", self.canonical))
        if not isinstance(self.softmax, bool):
            raise TypeError(f"Loss {self.name!r}: softmax must be True or False, got {self.softmax!r}")
        for name in ("cancelled", "from_logits", "r_cancelled", "gn_cancelled", "exact_delta"):
            table = getattr(self, name)
            if not isinstance(table, Mapping) or not all(isinstance(k, str) and callable(f) for k, f in table.items()):
                raise TypeError(
                    f"Loss {self.name!r}: {name} must map output activation names to callables, got {table!r}"
                )
            object.__setattr__(self, name, dict(table))
        if self.times_output is not None:
            check_signature("Loss", self.name, "times_output", self.times_output, "O, Y, xp")
        if self.hessian is not None:
            if not callable(self.hessian):
                raise TypeError(f"Loss {self.name!r}: hessian must be callable or None, got {self.hessian!r}")
            check_signature("Loss", self.name, "hessian", self.hessian, "O, Y, R, xp")
        for table_name in ("cancelled", "exact_delta"):
            for output, delta_fn in getattr(self, table_name).items():
                check_signature("Loss", self.name, f"{table_name}[{output!r}]", delta_fn, "I, O, Y, xp")
        for table_name in ("r_cancelled", "gn_cancelled"):
            for output, fn in getattr(self, table_name).items():
                check_signature("Loss", self.name, f"{table_name}[{output!r}]", fn, "I, O, Y, RI, RO, xp")
        for output, logit_fn in self.from_logits.items():
            check_signature("Loss", self.name, f"from_logits[{output!r}]", logit_fn, "I, Y, xp")

    def accepts(self, output: Activation) -> bool:
        """Whether ``output`` may be the output activation under this loss."""
        if not output.elementwise:
            return self.softmax
        return self.outputs is None or output.name in self.outputs

    def hessian_times(self, O: Array, Y: Array, R: Array, xp: Any) -> Array:
        """``hessian(O, Y, R, xp)``; ``ValueError`` naming the entry where it gives none."""
        if self.hessian is None:
            raise MissingDerivativeError(
                f"loss {self.name!r} gives no hessian(O, Y, R, xp); second-order products (manual.hvp, "
                f"manual.gnvp) need the loss's second derivative in y*: pass hessian= to its manual.Loss"
            )
        return self.hessian(O, Y, R, xp)

    def h(self, O: Array, Y: Array, xp: Any) -> Array:
        r""":math:`h = y^* \odot \partial L/\partial y^*`, shape ``(N, J)`` (see ``times_output``)."""
        if self.times_output is not None:
            return self.times_output(O, Y, xp)
        return O * self.gradient(O, Y, xp)


def _names(loss: str, field_name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not hasattr(value, "__iter__") or not all(isinstance(v, str) for v in value):
        raise TypeError(f"Loss {loss!r}: {field_name} must be a tuple of activation names, got {value!r}")
    return tuple(value)
