r"""One activation function A and everything the code needs to know about it: one registry entry.

Every consumer (the forward and backward passes, the Trainer, the reference twin, the tolerance
model, the strategies, the diagnosis) reads an :class:`Activation`; none switches on a name. The
built-in entries are in :mod:`manual.activations`; a user's own entry is checked against autograd
of its own ``forward`` (see :mod:`torch_ref`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any

from ._entry import MissingDerivativeError, NamedEntry, check_signature
from ._xp import Array

__all__ = ["Activation"]


@dataclass(frozen=True, eq=False, repr=False)
class Activation(NamedEntry):
    r"""An activation :math:`O = \mathcal{A}(I)` and its derivative, on any array-API namespace.

    Args:
        name: how specs and reports name it (``str(spec)`` shows it).
        forward: ``forward(I, xp) -> O``, elementwise, ``I`` of shape ``(N, out)``; ``xp`` is the
            arrays' namespace (NumPy's or torch's, through array-api-compat), so one callable runs on
            both.
        derivative: ``derivative(I, O, xp) -> A'(I)``, elementwise, shape ``(N, out)``; it may read
            ``I``, ``O = forward(I)`` or both. ``None`` only for a vector-valued activation, which
            gives ``vjp`` instead.

    Keyword-only, what the code needs to know (all optional):
        vjp: ``vjp(O, h, xp) -> delta``: for a vector-valued activation (softmax, the one built-in),
            the vector-Jacobian product taken from :math:`h = O \odot \partial L/\partial O`; such an
            activation is accepted on the output layer only.
        kinks: the points where A is not differentiable (ReLU: ``(0.0,)``); ``derivative`` there
            gives the subgradient taken (state it in ``description``). The tolerance model lets an
            input within its rounding error of a kink fall on either side; the strategies put inputs
            exactly on a kink at 0.
        exact: ``A`` and ``A'`` are computed without rounding (identity, ReLU), so exact sums stay
            exact through the layer and the tolerance adds no evaluation error for it.
        through_output: ``derivative`` reads only ``O`` (sigmoid: :math:`O(1 - O)`), so ``I`` may be
            overwritten by ``O`` (``in_place``).
        in_place: ``in_place(I) -> O`` overwriting ``I`` with ``A(I)`` on libraries with in-place
            kernels (torch's ``Tensor.sigmoid_``); ``None`` where there is none. Needs ``through_output``.
        times_derivative: ``times_derivative(d, I, O, xp)`` multiplies ``d`` by ``A'(I)`` in place
            and may overwrite ``O`` (a fused form for the Trainer); by default ``d *= derivative(I, O, xp)``.
        forward_terms: ``forward_terms(I, xp)``: the size of the terms ``forward`` adds up, where it
            cancels (gelu's I/2 (1 + tanh(.)) near tanh = -1); the tolerance model reads it as the
            rounding scale of A(I). By default ``|O| + |I| max(|A'|, 1)``.
        derivative_terms: ``derivative_terms(I, xp)``: the derivative formula evaluated on absolute
            values (the size of the terms it adds up, e.g. gelu's, which grow like I^3 where they
            cancel); the tolerance model reads it as the rounding scale of A'. By default
            ``max(|A'|, 1) (1 + |I|)``, A' by autograd (see :mod:`torch_ref.numerics.tolerance`).
        second_derivative: ``second_derivative(I, O, xp) -> A''(I)``, elementwise, shape ``(N, out)``:
            what :func:`manual.hvp` needs (every elementwise built-in gives it; ReLU and leaky ReLU
            take A'' = 0 everywhere, the kink included, as torch's double backward does). ``None``:
            :func:`manual.hvp` refuses a spec that uses the entry (``manual.gnvp`` does not need it).
        description: the formula in words, shown in the documentation of the registry.

    Raises:
        TypeError / ValueError: a field of the wrong kind, naming it.

    Example:
        >>> import numpy as np
        >>> square = Activation("square", lambda I, xp: I * I, lambda I, O, xp: 2 * I)
        >>> square.derivative(np.array([[3.0]]), None, np)
        array([[6.]])
    """

    name: str
    forward: Callable[[Array, Any], Array]
    derivative: Callable[[Array, Array, Any], Array] | None
    _: KW_ONLY
    vjp: Callable[[Array, Array, Any], Array] | None = None
    kinks: tuple[float, ...] = ()
    exact: bool = False
    through_output: bool = False
    in_place: Callable[[Array], Array] | None = None
    times_derivative: Callable[[Array, Array, Array, Any], None] | None = None
    forward_terms: Callable[[Array, Any], Array] | None = None
    derivative_terms: Callable[[Array, Any], Array] | None = None
    second_derivative: Callable[[Array, Array, Any], Array] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"Activation name must be an identifier such as 'mish', got {self.name!r}")
        for field in (
            "forward",
            "derivative",
            "vjp",
            "in_place",
            "times_derivative",
            "forward_terms",
            "derivative_terms",
            "second_derivative",
        ):
            value = getattr(self, field)
            if value is not None and not callable(value):
                raise TypeError(f"Activation {self.name!r}: {field} must be callable or None, got {value!r}")
        if not callable(self.forward):
            raise TypeError(f"Activation {self.name!r}: forward(I, xp) must be callable")
        for field, params in (
            ("forward", "I, xp"),
            ("derivative", "I, O, xp"),
            ("vjp", "O, h, xp"),
            ("in_place", "I"),
            ("times_derivative", "d, I, O, xp"),
            ("forward_terms", "I, xp"),
            ("derivative_terms", "I, xp"),
            ("second_derivative", "I, O, xp"),
        ):
            if getattr(self, field) is not None:
                check_signature("Activation", self.name, field, getattr(self, field), params)
        if (self.derivative is None) == (self.vjp is None):
            raise ValueError(
                f"Activation {self.name!r}: give derivative(I, O, xp) for an elementwise activation, or "
                f"vjp(O, h, xp) (and derivative=None) for a vector-valued one, not both or neither"
            )
        kinks = tuple(self.kinks) if not isinstance(self.kinks, (str, bytes)) else None
        if kinks is None or not all(isinstance(k, (int, float)) and math.isfinite(k) for k in kinks):
            raise TypeError(f"Activation {self.name!r}: kinks must be a tuple of finite numbers, got {self.kinks!r}")
        object.__setattr__(self, "kinks", tuple(float(k) for k in kinks))
        for flag in ("exact", "through_output"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"Activation {self.name!r}: {flag} must be True or False, got {getattr(self, flag)!r}")
        if self.in_place is not None and not self.through_output:
            raise ValueError(
                f"Activation {self.name!r}: in_place overwrites I, so it needs through_output=True "
                f"(a derivative that reads O only)"
            )

    def prime(self, I: Array, O: Array, xp: Any) -> Array:
        """``derivative(I, O, xp)``; ``TypeError`` for a vector-valued activation, which has none."""
        if self.derivative is None:
            raise TypeError(f"activation {self.name!r} is vector-valued: it has a vjp, not an elementwise derivative")
        return self.derivative(I, O, xp)

    def second(self, I: Array, O: Array, xp: Any) -> Array:
        """``second_derivative(I, O, xp)``; ``ValueError`` naming the entry where it gives none."""
        if self.second_derivative is None:
            raise MissingDerivativeError(
                f"activation {self.name!r} gives no second_derivative(I, O, xp); second-order products "
                f"(manual.hvp) need A''(I): pass second_derivative= to its manual.Activation"
            )
        return self.second_derivative(I, O, xp)

    def pullback(self, O: Array, h: Array, xp: Any) -> Array:
        """``vjp(O, h, xp)``; ``TypeError`` for an elementwise activation (use :meth:`prime`)."""
        if self.vjp is None:
            raise TypeError(f"activation {self.name!r} is elementwise: it has a derivative, not a vjp")
        return self.vjp(O, h, xp)

    @property
    def elementwise(self) -> bool:
        """True unless the activation is vector-valued (softmax)."""
        return self.vjp is None
