"""Hessian-vector product: ``hvp_fn(spec, params, X, Y, V) -> Params (H V)`` against torch's double backward of the exact objective along V (float64)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typing_extensions import Unpack

from ..engine.options import CheckOptions
from ..engine.run import run
from ..engine.summary import Summary
from ..second_order import check as so

__all__ = ["KIND", "check_hvp"]


KIND = so.product_kind(
    "hvp",
    call="hvp_fn(spec, params, X, Y, V) -> Params (H V)",
    reference="torch's double backward of the exact objective along V (float64)",
)


def check_hvp(hvp_fn: Callable[..., Any], **options: Unpack[CheckOptions]) -> Summary:
    """Check ``hvp_fn(spec, params, X, Y, V) -> HV`` (a ``Params``) against torch's double backward
    of the exact objective, on drawn networks and directions V (:func:`~torch_ref.direction`; the
    bound: :mod:`torch_ref.second_order.check`). Raises :class:`~torch_ref.DerivationMismatch` with
    the minimal case, the arrays and layers that differ, a diagnosis and finite-difference blame;
    raises :class:`~torch_ref.NotJudged` when no drawn case, or fewer than half of them, could be
    judged (the float64 reference or its bound not finite); returns what was covered. The options
    are those of :func:`~torch_ref.check_derivation` (defaults here: 50 examples, depths 1-3, widths
    1-5, N 1-6); every activation drawn needs ``second_derivative`` and every loss ``hessian`` (the
    built-ins have both).

    Example:
        >>> import manual
        >>> check_hvp(manual.hvp, max_examples=5, seed=0).examples >= 5
        True
    """
    __tracebackhide__ = True
    return run(KIND, hvp_fn, options)
