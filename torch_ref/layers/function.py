r"""A custom ``torch.autograd.Function``'s backward, checked: the setup of ``check_function`` and its
finite-difference reference.

The Function is called as ``fn.apply(x, *values)``, the values in the order the draw gives them.
Its backward is what autograd returns through ``fn.apply`` in the checked dtype. With a
``reference`` (a torch function of the same signature) the check is a layer check against autograd
of it, under the rounding model of its graph. Without one, the reference is central finite
differences of the Function's own forward in float64, column by column of the Jacobian J:

- step :math:`h = u^{1/3} \max(1, |z|)` (u of float64), the step that balances the truncation error
  :math:`h^2 |f'''| / 6` against the rounding error :math:`u |f| / h` when both scales are 1
  (Nocedal & Wright, *Numerical Optimization*, §8.1), taken as the exactly representable
  :math:`(z + h) - z`;
- its error, per entry of J: the difference between the steps h and 2h (the truncation's
  estimate; Richardson's is a third of it) plus the forward's rounding, taken as 16 u |f| on each
  evaluation, divided by 2h;
- the gradient :math:`g = J^\top \delta_{out}`, its error :math:`|\delta_{out}|^\top e`.

The rounding of a right backward in the checked dtype is that of the rounding model
(:mod:`.rounding`) of the Function's own forward, its operations run through autograd (the
Function's ``forward(ctx, ...)`` called with a stand-in ``ctx``): the terms a backward of that
forward adds up. Where the forward cannot be run so (NumPy inside, in-place writes to saved
tensors), float64 is judged with :math:`\gamma_{n+2} |J|^\top |\delta_{out}|` (the product
:math:`J^\top \delta_{out}` with J exact, n the output's size; Higham §3.1), which finite
differences' own error dominates; float32 needs ``reference=`` then (a ``ValueError`` says so). The
model's two sides are pinned in ``tests/test_layer_function.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from .case import LayerCase
from .rounding import Traced, trace, unit_roundoff
from .setup import LayerSetup, _strategy

__all__ = ["FORWARD_ULPS", "fd_reference", "function_setup"]

FORWARD_ULPS = 16.0  # the Function's forward taken as accurate to 16 u per entry in float64


def _apply(fn: Any) -> Callable[..., Any]:
    if isinstance(fn, type) and issubclass(fn, torch.autograd.Function):
        return fn.apply
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type) and issubclass(owner, torch.autograd.Function):
        return fn
    raise TypeError(
        f"check_function takes a torch.autograd.Function subclass or its .apply, got {fn!r}; "
        "for a backward written as a function use check_layer"
    )


class _Context:
    """A stand-in for the ``ctx`` of a Function's forward, so that its operations run through
    autograd like any torch code (for the rounding model only; the check never calls backward on it)."""

    needs_input_grad: tuple[bool, ...] = ()
    materialize_grads = True

    def save_for_backward(self, *tensors: Any) -> None:
        self.saved_tensors = tensors

    def mark_non_differentiable(self, *tensors: Any) -> None:
        pass

    def mark_dirty(self, *tensors: Any) -> None:
        raise ValueError("the Function writes to its inputs in place")

    def set_materialize_grads(self, value: bool) -> None:
        pass


def forward_ops(fn: Any) -> Callable[..., Any]:
    """The Function's ``forward`` as plain torch code: ``forward(ctx, x, *values)`` with a stand-in ctx."""
    owner: Any = fn if isinstance(fn, type) else fn.__self__

    def forward(x: Any, **kw: Any) -> Any:
        return owner.forward(_Context(), x, *kw.values())

    forward.__name__ = f"{owner.__name__}.forward"
    return forward


def function_setup(fn: Any, extra: Mapping[str, Any], dtype: np.dtype) -> LayerSetup:
    """The layer setup of a Function: its forward and its backward through autograd, the reference
    (autograd of ``reference``, or finite differences), the draw."""
    apply = _apply(fn)
    reference = extra.get("reference")
    if reference is not None and not callable(reference):
        raise TypeError(
            f"reference must be a torch function with the Function's signature, got {type(reference).__name__}"
        )
    if extra.get("inputs") is None and extra.get("shapes") is None:
        raise ValueError("check_function needs inputs: give inputs=draw(rng) -> (x, params), or shapes= with dims=")
    nondiff = frozenset(extra.get("nondiff") or ())

    def forward(x: Any, **kw: Any) -> Any:
        return apply(x, *kw.values())

    def backward(dout: Any, x: Any, **kw: Any) -> dict[str, Any]:
        leaves = {"x": x, **kw}
        wanted = [
            k for k, v in leaves.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and k not in nondiff
        ]  # fmt: skip
        for k in wanted:
            leaves[k] = leaves[k].detach().requires_grad_(True)
        out = apply(leaves["x"], *[leaves[k] for k in kw])
        grads = torch.autograd.grad(out, [leaves[k] for k in wanted], dout, allow_unused=True)
        return dict(zip(wanted, grads))

    if reference is not None:

        def ref(x: Any, **kw: Any) -> Any:
            return reference(x, *kw.values())

        ref.__name__ = getattr(reference, "__name__", "reference")
        label = f"autograd of the reference {ref.__name__}()"
    else:
        ref, label = forward, "central finite differences (float64) of the Function's own forward"
    return LayerSetup(
        forward=forward,
        backward=backward,
        reference=ref if reference is not None else forward_ops(fn),
        reference_label=label,
        strategy=_strategy(extra, None, {}, dtype),
        nondiff=nondiff,
        user_forward=fn,
        user_backward=fn,
        fd=reference is None,
        kind="function",
        user_reference=reference,
    )


def _kinked(
    f: Callable[[Mapping[str, torch.Tensor]], torch.Tensor],
    arrays: Mapping[str, torch.Tensor],
    name: str,
    idx: Any,
    z: float,
    step: float,
    out: torch.Tensor,
    forward_error: torch.Tensor,
) -> bool:
    """Whether the forward's one-sided differences at this entry disagree by more than a smooth
    function's would (their own steps h and 2h, and rounding)."""
    slopes = []
    for h in (step, 2 * step):
        h = (z + h) - z
        up, down = dict(arrays), dict(arrays)
        up[name], down[name] = arrays[name].clone(), arrays[name].clone()
        up[name][idx], down[name][idx] = z + h, z - h
        slopes.append(((f(up) - out) / h, (out - f(down)) / h, 2 * forward_error / h))
    (right, left, noise), (right2, left2, _) = slopes
    smooth = (right - right2).abs() + (left - left2).abs() + 2 * noise
    return bool(((right - left).abs() > 8 * smooth + 1e-300).any())


def fd_reference(
    setup: LayerSetup,
    case: LayerCase,
    arrays: Mapping[str, torch.Tensor],
    names: tuple[str, ...],
    dout: torch.Tensor,
    dtype: Any,
) -> Traced:
    """Finite differences of the Function's forward on ``case``: its value, J^T δ_out for every
    differentiated array, the rounding terms of the product and the differences' own error."""
    constants = dict(case.constants)
    order = case.order or (*case.params, *case.constants)

    def f(moved: Mapping[str, torch.Tensor]) -> torch.Tensor:
        both = {**moved, **constants}
        with torch.no_grad():
            return setup.forward(moved["x"], **{k: both[k] for k in order}).to(torch.float64)

    out = f(arrays)
    u = unit_roundoff(torch.float64)
    n = out.numel()
    traced, untraced = None, None
    try:  # the forward's own operations, through autograd: its rounding model
        traced = trace(setup.reference, arrays, names, constants, dout)
    except Exception as exc:  # NumPy inside, in-place writes: no model of it
        untraced = exc
    # each evaluation of the forward rounds: its model's bound where it has one, else FORWARD_ULPS u |f|
    forward_error = FORWARD_ULPS * u * out.abs() + (2 * u * traced.terms["out"] if traced is not None else 0.0)
    grads, product, fixed = {}, {"out": torch.zeros_like(out)}, {"out": torch.full_like(out, float("inf"))}
    for name in names:
        a = arrays[name]
        g, m, e = (torch.zeros_like(a) for _ in range(3))
        for i in range(a.numel()):
            idx = np.unravel_index(i, tuple(a.shape))
            z = float(a[idx])
            step = u ** (1 / 3) * max(1.0, abs(z))
            cols = []
            for h in (step, 2 * step):
                h = (z + h) - z  # exactly representable
                up, down = dict(arrays), dict(arrays)
                up[name] = a.clone()
                up[name][idx] = z + h
                down[name] = a.clone()
                down[name][idx] = z - h
                fu, fd = f(up), f(down)
                noise = (FORWARD_ULPS * u * (fu.abs() + fd.abs()) + 2 * forward_error) / (2 * h)
                cols.append(((fu - fd) / (2 * h), noise))
            (col, noise), (col2, _) = cols
            err = (col - col2).abs() + noise
            if _kinked(f, arrays, name, idx, z, step, out, forward_error):
                # one-sided slopes that disagree: a kink or a tie, where central differences give their
                # mean and decide nothing; the entry gets no finite bound, so it is never a pass
                err = torch.full_like(err, float("inf"))
            g[idx] = (col * dout).sum()
            m[idx] = (col.abs() * dout.abs()).sum()
            e[idx] = (err * dout.abs()).sum()
        grads[name] = g
        product[name] = (n + 2) * m
        fixed[name] = e
    if traced is not None:
        return Traced(out=out, grads=grads, terms={**dict(traced.terms), "out": product["out"]}, ops={}, fixed=fixed)
    if dtype != np.float64:
        raise ValueError(
            f"the Function's forward cannot be differentiated op by op ({type(untraced).__name__}: {untraced}), so no "
            f"rounding model of its backward in {np.dtype(dtype).name} can be derived: give reference=, a torch function "
            "of the same signature, or check it in float64"
        )
    return Traced(out=out, grads=grads, terms=product, ops={}, fixed=fixed)
