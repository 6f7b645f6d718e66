r"""Second-order references: the Hessian-vector product :math:`HV` and the generalized Gauss-Newton
product :math:`J^T H_L J V` of the objective, from torch, in float64, and the quantities the
second-order oracle (:mod:`torch_ref.second_order.check`) and the R-passes on reference values
(:mod:`torch_ref.second_order.r_pass`) read.

- :func:`hvp_reference`: double backward (the gradient of :math:`\langle \nabla E, V \rangle`) of the
  *exact* objective (:func:`torch_ref.twin.reference.exact_objective`: from the logits in a stable form,
  no floor), so torch's bce floor does not enter second order. :func:`hvp_jvp_of_grad` is the same
  product by forward-over-reverse (``torch.func.jvp`` of ``torch.func.grad``), for the benchmark
  (torch has no forward-mode derivative of ``huber_loss_backward``: it raises for huber).
- :func:`gnvp_reference`: :math:`JV` by ``torch.func.jvp`` of the network's output y*, :math:`H_L JV`
  by double backward of the loss in y* (bce in its exact form), and :math:`J^T(\cdot)` by
  ``torch.func.vjp`` of the output.
- :func:`parts` (a :class:`SecondOrderParts`): the R-passes' inputs, float64 NumPy, from torch alone,
  never from :mod:`manual`: u, I, O and A', A'', A''' by autograd of the torch twins, the exact
  objective's deltas, and the loss's first, second and third derivatives in y* by autograd.

Non-smooth activations: ReLU and leaky ReLU have :math:`\mathcal{A}'' = 0` everywhere, their kink
included, ELU's :math:`\mathcal{A}''` is 0 at 0 and softplus' from its threshold 20 on: what torch's
double backward gives, and what the built-in entries' ``second_derivative`` returns.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.func import grad, jvp, vjp

from manual import Params, Spec

from ..twin.build import Network, build
from ..twin.convert import params_as_numpy64
from ..twin.reference import exact_objective
from ..twins import activation_twin, loss_twin

__all__ = [
    "SecondOrderParts",
    "gnvp_reference",
    "hvp_jvp_of_grad",
    "hvp_reference",
    "parts",
]


def _quiet_forward_ad(fn: Any) -> Any:
    """``fn`` without the ``DeprecationWarning`` torch 2.13 raises about its own ``torch.jit.script``
    when forward-mode AD (``torch.func.jvp``, ``hessian``) loads its decompositions on first use: a
    user's pytest run would show it for the first product checked, and it says nothing about it."""

    @functools.wraps(fn)
    def quiet(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=DeprecationWarning)
            return fn(*args, **kwargs)

    return quiet


def _net64(spec: Spec, params: Params, dtype: Any = np.float64) -> Network:
    if np.dtype(dtype) == np.float64:
        return build(spec, params_as_numpy64(params))
    return build(spec, params.map(lambda a: np.asarray(a, dtype=dtype)))


def _t(a: Any, dtype: Any = np.float64) -> torch.Tensor:
    return torch.from_numpy(np.array(np.asarray(a, dtype=dtype), copy=True))


def _direction(spec: Spec, V: Params, dtype: Any = np.float64) -> dict[str, torch.Tensor]:
    """V in the network's own parameter names and layout (torch stores W as (out, in))."""
    out = {}
    for l in range(spec.depth):
        out[f"linears.{l}.weight"] = _t(V.weights[l], dtype).T.contiguous()
        if V.biases is not None:
            out[f"linears.{l}.bias"] = _t(V.biases[l], dtype)
    return out


def _as_params(spec: Spec, named: dict[str, torch.Tensor]) -> Params:
    W = [named[f"linears.{l}.weight"].detach().T.numpy().copy() for l in range(spec.depth)]
    b = [named[f"linears.{l}.bias"].detach().numpy().copy() for l in range(spec.depth)] if spec.bias else None
    return Params(W, b)


def _exact_objective_fn(spec: Spec, net: Network, X: torch.Tensor, Y: torch.Tensor) -> Any:
    def objective(P: dict[str, torch.Tensor]) -> torch.Tensor:
        I, _ = _forward_all(net, P, X)
        return exact_objective(spec, I[-1], Y)

    return objective


def _forward_all(net: Network, P: dict[str, torch.Tensor], X: torch.Tensor) -> tuple[list, list]:
    I, O = [], []
    u = X
    for l, activation in enumerate(net.activations):
        I_l = u @ P[f"linears.{l}.weight"].T
        if f"linears.{l}.bias" in P:
            I_l = I_l + P[f"linears.{l}.bias"]
        u = activation(I_l)
        I.append(I_l)
        O.append(u)
    return I, O


def _prepared(
    spec: Spec, params: Params, X: Any, Y: Any, V: Params, dtype: Any = np.float64
) -> tuple[Network, dict[str, torch.Tensor], torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """What every product starts from, in ``dtype``: the twin network, its parameters by name
    (detached copies), X, Y, and the direction V in the network's names and layout."""
    net = _net64(spec, params, dtype)
    P = {n: p.detach().clone() for n, p in net.named_parameters()}
    return net, P, _t(X, dtype), _t(Y, dtype), _direction(spec, V, dtype)


def hvp_reference(spec: Spec, params: Params, X: Any, Y: Any, V: Params, *, dtype: Any = np.float64) -> Params:
    r""":math:`HV` of the exact objective by double backward: ``grad(<grad E(P), V>, P)``, computed
    in ``dtype`` (float64, the reference; the false-alarm campaign also runs it in the case's dtype,
    as a right implementation that is not manual's)."""
    net, P, Xt, Yt, Vd = _prepared(spec, params, X, Y, V, dtype)
    P = {n: p.requires_grad_(True) for n, p in P.items()}
    objective = _exact_objective_fn(spec, net, Xt, Yt)
    names = list(P)
    g = torch.autograd.grad(objective(P), [P[n] for n in names], create_graph=True)
    dot = torch.stack([(gi * Vd[n]).sum() for gi, n in zip(g, names)]).sum()
    hv = torch.autograd.grad(dot, [P[n] for n in names], allow_unused=True)
    return _as_params(spec, {n: (h if h is not None else torch.zeros_like(P[n])) for n, h in zip(names, hv)})


@_quiet_forward_ad
def hvp_jvp_of_grad(spec: Spec, params: Params, X: Any, Y: Any, V: Params) -> Params:
    """:math:`HV` by ``torch.func.jvp(torch.func.grad(E), (P,), (V,))`` (forward over reverse)."""
    net, P, Xt, Yt, Vd = _prepared(spec, params, X, Y, V)
    out = jvp(grad(_exact_objective_fn(spec, net, Xt, Yt)), (P,), (Vd,))
    return _as_params(spec, out[1])


def _loss_in_ystar(spec: Spec) -> Any:
    """``(O, Y) -> sum of L`` on y*, exact: bce without torch's -100 floor; any other loss as its twin."""
    twin = loss_twin(spec.loss)
    if twin.floor is not None:  # bce: torch's BCELoss clamps its logs; the exact form here
        return lambda O, Y: -(Y * torch.log(O) + (1 - Y) * torch.log1p(-O)).sum()
    return lambda O, Y: twin.per_example(O, Y).sum()


@_quiet_forward_ad
def gnvp_reference(spec: Spec, params: Params, X: Any, Y: Any, V: Params, *, dtype: Any = np.float64) -> Params:
    r""":math:`J^T H_L J V`: ``torch.func.jvp`` of y*(P) along V, :math:`H_L` by double backward of
    the loss in y*, then ``torch.func.vjp`` of y*(P); computed in ``dtype`` (float64, the
    reference). Divided by N for a mean."""
    net, P, Xt, Yt, Vd = _prepared(spec, params, X, Y, V, dtype)

    def output(Q: dict[str, torch.Tensor]) -> torch.Tensor:
        return _forward_all(net, Q, Xt)[1][-1]

    pushed = jvp(output, (P,), (Vd,))
    y_star, JV = pushed[0], pushed[1]
    O = y_star.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_loss_in_ystar(spec)(O, Yt), O, create_graph=True)
    (HJV,) = torch.autograd.grad((g * JV).sum(), O)
    pull = vjp(output, P)[1]
    (G,) = pull(HJV)
    if spec.reduction == "mean":
        G = {n: a / Yt.shape[0] for n, a in G.items()}
    return _as_params(spec, G)


# ------------------------------------------------------------------ the R-passes' inputs, from torch


@dataclass(frozen=True)
class SecondOrderParts:
    r"""What the R-passes (:mod:`torch_ref.second_order.r_pass`) read, float64 NumPy, index ``l - 1``
    for layer l, from torch alone.

    Attributes:
        u, I, O: the forward pass.
        dA, d2A, d3A: :math:`\mathcal{A}', \mathcal{A}'', \mathcal{A}'''` by autograd of each twin
            (``None`` for softmax).
        delta: the exact objective's deltas (from the logits; divided by N for a mean).
        g: :math:`\partial L/\partial y^*`, ``(N, J)``, not divided by N.
        H: the loss's per-example Hessian in y*, ``(N, J, J)``.
        dH: its derivative in y*, ``(N, J, J, J)`` (the tolerance model's evaluation error of
            :math:`H_L R`).
    """

    spec: Spec
    params: Params
    u: tuple[np.ndarray, ...]
    I: tuple[np.ndarray, ...]
    O: tuple[np.ndarray, ...]
    dA: tuple[np.ndarray | None, ...]
    d2A: tuple[np.ndarray | None, ...]
    d3A: tuple[np.ndarray | None, ...]
    delta: tuple[np.ndarray, ...]
    g: np.ndarray
    H: np.ndarray
    dH: np.ndarray
    Y: np.ndarray | None = None


def _three(function: Any, I: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A', A'', A''' of an elementwise function by autograd (zeros where a derivative is unused)."""
    x = I.detach().clone().requires_grad_(True)
    out = []
    y = function(x).sum()
    for _ in range(3):
        if not y.requires_grad:
            out.append(torch.zeros_like(x))
            y = torch.zeros((), dtype=x.dtype)
            continue
        (d,) = torch.autograd.grad(y, x, create_graph=True, allow_unused=True)
        d = torch.zeros_like(x) if d is None else d
        out.append(d.detach())
        y = d.sum()
    return out[0].numpy(), out[1].numpy(), out[2].numpy()


def parts(spec: Spec, params: Params, X: Any, Y: Any) -> SecondOrderParts:
    """The R-passes' inputs for this case (see :class:`SecondOrderParts`)."""
    net = _net64(spec, params)
    P = {n: p.detach().clone().requires_grad_(True) for n, p in net.named_parameters()}
    Xt, Yt = _t(X), _t(Y)
    I, O = _forward_all(net, P, Xt)
    for t in I:
        t.retain_grad()
    exact_objective(spec, I[-1], Yt).backward()
    delta = tuple(t.grad.numpy().copy() if t.grad is not None else np.zeros(t.shape) for t in I)
    dA: list[np.ndarray | None] = []
    d2A: list[np.ndarray | None] = []
    d3A: list[np.ndarray | None] = []
    for entry, I_l in zip(spec.activations, I):
        if not entry.elementwise:
            dA.append(None)
            d2A.append(None)
            d3A.append(None)
            continue
        a1, a2, a3 = _three(activation_twin(entry).function, I_l)
        # torch's third derivative of gelu is 0 * inf = NaN where tanh is saturated (|I| above about
        # 30); there the second derivative is exactly 0 as well, and so is the third
        a3 = np.where(~np.isfinite(a3) & (a2 == 0), 0.0, a3)
        dA.append(a1)
        d2A.append(a2)
        d3A.append(a3)
    y_star = O[-1].detach()
    loss = _loss_in_ystar(spec)
    g, H, dH = _loss_derivatives(loss, y_star, Yt)
    u = (np.asarray(X, dtype=np.float64), *tuple(o.detach().numpy() for o in O[:-1]))
    return SecondOrderParts(
        spec,
        params_as_numpy64(params),
        u,
        tuple(t.detach().numpy() for t in I),
        tuple(t.detach().numpy() for t in O),
        tuple(dA),
        tuple(d2A),
        tuple(d3A),
        delta,
        g,
        H,
        dH,
        np.asarray(Y, dtype=np.float64),
    )


@_quiet_forward_ad
def _loss_derivatives(loss: Any, y_star: torch.Tensor, Yt: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The loss's first, second and third derivatives in y*, per example: ``(N, J)``, ``(N, J, J)``,
    ``(N, J, J, J)``. Vectorised over the examples with ``torch.func.vmap``; a loss that vmap cannot
    run (a user's value written with operations it does not batch) is taken example by example."""

    def L_one(o: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss(o[None, :], y[None, :])

    try:
        g = _np(torch.func.vmap(torch.func.grad(L_one))(y_star, Yt))
        H = _np(torch.func.vmap(torch.func.hessian(L_one))(y_star, Yt))
    except Exception:  # not batchable: one example at a time
        g = np.stack([_np(torch.func.grad(L_one)(o, y)) for o, y in zip(y_star, Yt)])
        H = np.stack([_np(torch.func.hessian(L_one)(o, y)) for o, y in zip(y_star, Yt)])
    try:
        dH = _np(torch.func.vmap(torch.func.jacfwd(torch.func.hessian(L_one)))(y_star, Yt))
    except Exception:  # huber's backward has no forward-mode derivative; or not batchable
        N, J = y_star.shape
        dH = np.zeros((N, J, J, J))
        for n in range(N):
            dH[n] = _third(lambda o, y=Yt[n]: L_one(o, y), y_star[n])
    return g, H, dH


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy(force=True)  # force: torch.func may hand back a ZeroTensor


def _third(L_n: Any, o_n: torch.Tensor) -> np.ndarray | float:
    """The loss's third derivative in y* by forward over reverse; 0 where torch has no forward-mode
    derivative (huber's backward: its third derivative is 0 wherever it is smooth)."""
    try:
        return _np(torch.func.jacfwd(torch.func.hessian(L_n))(o_n))
    except NotImplementedError:
        return 0.0
