r"""A user's own entry run on torch tensors, and the two things the reference must know before it
trusts autograd of it (issue 21, "from a new user's trial").

1. **No custom backward.** The reference differentiates a user's ``forward`` / ``value`` by
   autograd. Where that code runs a ``torch.autograd.Function`` of its own, autograd runs the
   user's own ``backward``, and the check compares the derivative with itself: a wrong backward
   and a derivative that agrees with it passed. Such an entry is refused, naming it and the
   Function. It is not differentiated by finite differences instead: their truncation and
   rounding error, about :math:`\sqrt{\varepsilon}` of the scale (1e-8 in float64), is 10^7 times
   the :math:`c\,\varepsilon` the tolerance model derives from an exact A', and A'' and A''' (the
   second-order checks) would need nested differences worse still; a bound that wide would let
   wrong derivations through. ``torch.autograd.gradcheck`` checks a custom backward itself.
2. **Elementwise means elementwise.** An entry with ``derivative`` is multiplied in entry by entry
   (:math:`\delta = (\delta W^T) \odot \mathcal{A}'(I)`), which holds only when
   :math:`O_{ij}` depends on :math:`I_{ij}` alone. At first use its Jacobian is probed on a 2 x 3
   input with distinct nonzero values: every off-diagonal entry must be exactly 0 (autograd of an
   elementwise graph gives an exact 0 there, whatever the rounding), and changing one input alone
   must leave every other output bit for bit unchanged (a coupling through a detached tensor,
   which autograd does not see). A layer norm declared as an activation is refused here.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from array_api_compat import array_namespace
from torch.autograd.function import BackwardCFunction

from manual import Activation, Loss

__all__ = ["probe_elementwise", "user_forward", "user_value"]

Tensor = torch.Tensor

# distinct, nonzero, away from 0 (the usual kink), both signs: any coupling shows in a 2 x 3 probe
_PROBE = ((-1.25, 0.5, 2.0), (0.75, -0.375, 1.5))
_PROBED: weakref.WeakSet[Activation] = weakref.WeakSet()


def _custom_functions(out: Tensor, *inputs: Tensor) -> list[str]:
    """The ``torch.autograd.Function`` classes in ``out``'s graph between it and ``inputs`` (the
    walk stops at the inputs' own nodes, so an earlier layer's graph is not walked again)."""
    stop = {t.grad_fn for t in inputs if t.grad_fn is not None}
    found: list[str] = []
    seen: set[Any] = set()
    todo = [out.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in stop or node in seen:
            continue
        seen.add(node)
        if isinstance(node, BackwardCFunction):
            cls = getattr(node, "_forward_cls", type(node))
            found.append(f"{cls.__module__}.{cls.__qualname__}")
        todo.extend(n for n, _ in node.next_functions)
    return sorted(set(found))


def _refuse_custom(kind: str, name: str, what: str, functions: list[str]) -> None:
    if functions:
        raise ValueError(
            f"{kind} {name!r}: {what} runs a custom torch.autograd.Function ({', '.join(functions)}); the "
            f"reference differentiates your {what.split('(')[0]} by autograd, which would run your own backward and "
            f"check your formula against itself. Write it with xp's functions (xp.exp, xp.tanh, ...) so torch's "
            f"own derivatives are the reference (torch.autograd.gradcheck checks a custom backward)"
        )


def user_forward(entry: Activation, I: Tensor) -> Tensor:
    """A user's ``forward`` on torch tensors, where the reference differentiates it by autograd; a
    failure, a wrong shape or a custom autograd Function is an error that names the entry."""
    try:
        O = entry.forward(I, array_namespace(I))
    except Exception as exc:
        raise ValueError(
            f"Activation {entry.name!r}: forward(I, xp) failed on torch tensors, where the reference runs it to "
            f"differentiate it by autograd ({type(exc).__name__}: {exc}); write it with xp's functions (xp.exp, "
            f"xp.tanh, ...), not NumPy's"
        ) from exc
    if not isinstance(O, Tensor) or O.shape != I.shape:
        raise ValueError(
            f"Activation {entry.name!r}: forward(I, xp) must return an array of I's shape {tuple(I.shape)} "
            f"(elementwise), got {type(O).__name__} of shape {tuple(getattr(O, 'shape', ()))}"
        )
    if O.grad_fn is not None:  # only a graph autograd will walk can run a custom backward
        _refuse_custom("Activation", entry.name, "forward(I, xp)", _custom_functions(O, I))
    return O


def user_value(entry: Loss, O: Tensor, Y: Tensor) -> Tensor:
    """A user's ``value`` on torch tensors (see :func:`user_forward`); it must be per example, (N,)."""
    try:
        L = entry.value(O, Y, array_namespace(O, Y))
    except Exception as exc:
        raise ValueError(
            f"Loss {entry.name!r}: value(O, Y, xp) failed on torch tensors, where the reference runs it to "
            f"differentiate it by autograd ({type(exc).__name__}: {exc}); write it with xp's functions, not NumPy's"
        ) from exc
    if not isinstance(L, Tensor) or L.shape != O.shape[:1]:
        raise ValueError(
            f"Loss {entry.name!r}: value(O, Y, xp) must return the per-example loss, shape (N,) = "
            f"{tuple(O.shape[:1])}, summed over the J outputs (e.g. xp.sum(..., axis=-1)); got "
            f"{type(L).__name__} of shape {tuple(getattr(L, 'shape', ()))}"
        )
    if L.grad_fn is not None:
        _refuse_custom("Loss", entry.name, "value(O, Y, xp)", _custom_functions(L, O, Y))
    return L


def _coupled(entry: Activation, text: str) -> ValueError:
    return ValueError(
        f"Activation {entry.name!r} gives derivative(I, O, xp), so it is taken as elementwise (O_ij = A(I_ij), "
        f"delta = (delta W^T) * A'(I)), but its forward couples entries: on the probe I = {[list(r) for r in _PROBE]}, "
        f"{text}. A function of a whole row (a layer norm, a softmax) is not an elementwise activation; give "
        f"vjp(O, h, xp) with derivative=None for a vector-valued one (accepted on the output layer only)"
    )


def probe_elementwise(entry: Activation) -> None:
    """``ValueError`` naming ``entry`` when its forward couples entries (see the module docstring);
    each entry is probed once, at its first use. A vector-valued entry (``vjp``) is not probed."""
    if not entry.elementwise or entry in _PROBED:
        return
    I = torch.tensor(_PROBE, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        O = user_forward(entry, I)
    n = O.numel()
    if O.requires_grad:
        for k in range(n):
            seed = torch.zeros(n, dtype=O.dtype).index_fill_(0, torch.tensor(k), 1.0).reshape(O.shape)
            (row,) = torch.autograd.grad(O, I, seed, retain_graph=True, allow_unused=True)
            if row is None:
                continue
            row = row.flatten().clone()
            row[k] = 0
            # an elementwise graph gives an exact 0 off the diagonal; a non-finite entry is 0 * inf
            # from an A' that is itself not finite at the probe, no evidence of coupling
            off = torch.nonzero(torch.isfinite(row) & (row != 0))
            if off.numel():
                m = int(off[0, 0])
                i, j, p, q = *divmod(k, O.shape[1]), *divmod(m, O.shape[1])
                raise _coupled(
                    entry, f"dO[{i}, {j}]/dI[{p}, {q}] = {float(row[m]):.6g} (an off-diagonal Jacobian entry)"
                )
    moved = I.detach().clone()
    moved[0, 0] += 0.5
    with torch.no_grad():
        O2, O1 = user_forward(entry, moved), O.detach()
    changed = ~((O2 == O1) | (torch.isnan(O2) & torch.isnan(O1)))
    changed[0, 0] = False
    if changed.any():
        i, j = (int(v) for v in torch.nonzero(changed)[0])
        raise _coupled(
            entry, f"changing I[0, 0] alone changed O[{i}, {j}] from {float(O1[i, j]):.10g} to {float(O2[i, j]):.10g}"
        )
    _PROBED.add(entry)
