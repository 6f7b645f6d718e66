"""Every quantity a slide formula needs, on a point, three ways.

- :func:`autograd_quantities`: the reference network of :mod:`torch_ref.twin.build`; every partial
  derivative by ``torch.autograd.grad`` with the intermediate as a leaf; updates by ``torch.optim.SGD``.
- :func:`manual_quantities`: the general :mod:`manual` implementation (forward, deltas, gradients,
  ``sgd_step``); partials from its activation and loss derivatives.
- :func:`sympy_quantities`: exact expressions in the point's symbols; partials by ``sympy.diff``.

Keys (0-based indices; ``dz_dw1[j, i]`` is dz_i/dw_ji^(1), ``dz2_dz1[a, b]`` is dz_a^(2)/dz_b^(1)):
``x, y, xi, y_star, L`` and the weights of the network (``w`` or ``w1, w2, ...``), the gradients
``dL_dw...``, the partials each slide writes, and ``updated_...`` weights after one step. NumPy
flavours also carry ``scale_...``: the tolerance model's error magnitude of each gradient.
"""

from __future__ import annotations

import itertools
from functools import cache
from typing import Any

import numpy as np
import torch

import manual
from manual import ACTIVATIONS, LOSSES

from ..numerics.tolerance import tolerance
from ..twin.build import build
from ..twin.reference import Reference, reference
from .points import NETWORKS, Point

__all__ = ["autograd_quantities", "manual_quantities", "sympy_quantities"]


def _common(p: Point, ref: Reference | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {"x": p.x[0], "y": p.y[0, 0], "xi": p.xi}
    q["v"] = float(p.x[0] @ p.weights[0][:, 0])  # a pre-activation to feed the activation slides
    tol = tolerance(p.spec, p.params, p.x, p.y, reference_pass=ref)
    unit = 2 * tol.eps * tol.kappa
    for l, t in enumerate(tol.grads.weights, start=1):
        q[f"scale_dw{l}"] = t / unit
    if p.net == "single":
        q["w"] = p.weights[0][:, 0]
    else:
        for l, W in enumerate(p.weights, start=1):
            q[f"w{l}"] = W
    return q


def _gradient_keys(q: dict[str, Any], net: str, grads: list[np.ndarray], updated: list[np.ndarray]) -> None:
    if net == "single":
        q["dL_dw"], q["updated_w"], q["scale_dw"] = grads[0][:, 0], updated[0][:, 0], q["scale_dw1"][:, 0]
        return
    for l, (g, u) in enumerate(zip(grads, updated), start=1):
        q[f"dL_dw{l}"], q[f"updated_w{l}"] = g, u


# ---------------------------------------------------------------- autograd


def _grad(out: torch.Tensor, wrt: torch.Tensor) -> np.ndarray:
    (g,) = torch.autograd.grad(out, wrt, retain_graph=True, allow_unused=True)
    return np.zeros(tuple(wrt.shape)) if g is None else g.detach().numpy()


def _leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_(True)


def autograd_quantities(p: Point) -> dict[str, Any]:
    # one reference pass gives autograd's gradients, deltas and the torch.optim.SGD step at xi, and
    # the tolerance model reads the same pass
    ref = reference(p.spec, p.params, p.x, p.y, lr=p.xi)
    q = _common(p, ref)
    spec = p.spec
    net = build(spec, p.params)
    X, Y = torch.from_numpy(p.x), torch.from_numpy(p.y)
    I, O = net.forward_all(X)
    L = net.objective_from(I[-1], O[-1], Y)
    W = [lin.weight for lin in net.layers()]  # (out, in): entry [i, j] is w_ji
    q["y_star"], q["L"] = O[-1].item(), L.item()
    assert ref.updated is not None  # the pass was given lr
    grads = ref.grads.weights
    _gradient_keys(q, p.net, list(grads), list(ref.updated.weights))

    s = _leaf(O[-1])
    q["dL_dy_star"] = _grad(net.objective_from(None, s, Y), s).item()
    probs = torch.cat([O[-1][0], 1 - O[-1][0]]).detach()
    targets = torch.cat([Y[0], 1 - Y[0]])
    q["probs"], q["targets"] = probs.numpy(), targets.numpy()
    q["loss_squared"] = (0.5 * torch.nn.MSELoss(reduction="sum")(probs, targets)).item()
    q["loss_bce"] = torch.nn.BCELoss(reduction="sum")(O[-1], Y).item()
    q["loss_ce"] = torch.nn.CrossEntropyLoss(reduction="sum")(torch.log(probs)[None], targets[None]).item()
    v = torch.tensor(q["v"], dtype=torch.float64)
    q["sigmoid"], q["tanh"], q["relu"] = torch.sigmoid(v).item(), torch.tanh(v).item(), torch.relu(v).item()
    q["dA_I"] = [_grad(torch.sigmoid(_I).sum(), _I)[0] for _I in (_leaf(I_l) for I_l in I)]
    q["dtranscribed"] = _transcription_gradient(p)
    if p.net == "single":
        q["dy_star_dw"] = _grad(O[-1].sum(), W[0])[0]
    elif p.net == "two":
        q["z"] = O[0][0].detach().numpy()
        d = ref.delta
        q["delta1"], q["delta2"] = d[0][0], d[1][0, 0]
        zeta = _leaf(O[0])
        q["dy_star_dz"] = _grad(net.activations[1](net.linears[1](zeta)).sum(), zeta)[0]
        q["dz_dw1"] = np.stack([_grad(O[0][0, i], W[0])[i] for i in range(2)], axis=1)
        q["dy_star_dw1"] = _grad(O[-1].sum(), W[0]).T
        q["dy_star_dw2"] = _grad(O[-1].sum(), W[1])[0]
    elif p.net == "three":
        zeta1, zeta2 = _leaf(O[0]), _leaf(O[1])
        z2_of_z1 = net.activations[1](net.linears[1](zeta1))
        q["dy_dz2"] = _grad(net.activations[2](net.linears[2](zeta2)).sum(), zeta2)[0]
        q["dz2_dz1"] = np.stack([_grad(z2_of_z1[0, a], zeta1)[0] for a in range(2)])
        q["dz1_dw22"] = np.array([_grad(O[0][0, a], W[0])[1, 1] for a in range(2)])
        q["dL_dw22"] = grads[0][1, 1]
    else:
        q["z"] = O[0][0].detach().numpy()
        q["I1"], q["O1"] = I[0].detach().numpy().T, O[0].detach().numpy().T
        q["I2"], q["O2"] = I[1].detach().numpy().T, O[1].detach().numpy().T
        d = ref.delta
        q["delta1"], q["delta2"] = d[0], d[1]
    return q


def _transcription_gradient(p: Point) -> list[np.ndarray]:
    """Autograd of the slides' own loss expression (``loss_of_weights``) with respect to each weight
    matrix, slides' layout: the first line of each derivation, evaluated as written."""
    from manual.slides import single_layer, two_layer

    W = [_leaf(torch.from_numpy(w)) for w in p.weights]
    x, y = torch.from_numpy(p.x[0]), torch.tensor(p.y[0, 0], dtype=torch.float64)
    if p.net == "single":
        L = single_layer.loss_of_weights(W[0][:, 0], x, y)
    elif p.net == "two":
        L = two_layer.loss_of_weights(W[0], W[1], x, y)
    else:
        return []
    return [_grad(L, w) for w in W]


# ---------------------------------------------------------------- manual


def manual_quantities(p: Point) -> dict[str, Any]:
    q = _common(p)
    spec = p.spec
    fwd = manual.forward(spec, p.params, p.x)
    I, O = fwd.I, fwd.O
    dA = [ACTIVATIONS["sigmoid"].prime(I_l, O_l, np)[0] for I_l, O_l in zip(I, O)]  # A'(I^(l)) per unit
    q["y_star"] = O[-1][0, 0]
    q["L"] = float(manual.objective(spec, p.params, p.x, p.y))
    grads = manual.gradients(spec, p.params, p.x, p.y).weights
    updated = manual.sgd_step(spec, p.params, p.x, p.y, p.xi).weights
    _gradient_keys(q, p.net, list(grads), list(updated))
    q["dL_dy_star"] = LOSSES["bce"].gradient(O[-1], p.y, np)[0, 0]
    probs = np.array([O[-1][0, 0], 1 - O[-1][0, 0]])
    targets = np.array([p.y[0, 0], 1 - p.y[0, 0]])
    q["probs"], q["targets"] = probs, targets
    q["loss_squared"] = LOSSES["squared"].value(probs[None], targets[None], np)[0]
    q["loss_bce"] = LOSSES["bce"].value(O[-1], p.y, np)[0]
    q["loss_ce"] = LOSSES["ce"].value(probs[None], targets[None], np)[0]
    v = np.array([[q["v"]]])
    q["sigmoid"], q["tanh"], q["relu"] = (ACTIVATIONS[a].forward(v, np)[0, 0] for a in ("sigmoid", "tanh", "relu"))
    q["dA_I"] = dA
    x = p.x[0]
    W = p.weights
    if p.net == "single":
        q["dy_star_dw"] = dA[0][0] * x
    elif p.net == "two":
        q["z"] = O[0][0]
        d = manual.deltas(spec, p.params, p.x, p.y)
        q["delta1"], q["delta2"] = d[0][0], d[1][0, 0]
        q["dy_star_dz"] = dA[1][0] * W[1][:, 0]
        q["dz_dw1"] = np.outer(x, dA[0])
        q["dy_star_dw1"] = dA[1][0] * np.outer(x, dA[0] * W[1][:, 0])
        q["dy_star_dw2"] = dA[1][0] * O[0][0]
    elif p.net == "three":
        q["dy_dz2"] = dA[2][0] * W[2][:, 0]
        q["dz2_dz1"] = (W[1] * dA[1]).T  # [a, b] = A'(I_a^(2)) w_ba^(2)
        q["dz1_dw22"] = np.array([0.0, dA[0][1] * x[1]])
        q["dL_dw22"] = grads[0][1, 1]
    else:
        q["z"] = O[0][0]
        q["I1"], q["O1"], q["I2"], q["O2"] = I[0].T, O[0].T, I[1].T, O[1].T
        d = manual.deltas(spec, p.params, p.x, p.y)
        q["delta1"], q["delta2"] = d[0], d[1]
    return q


# ---------------------------------------------------------------- sympy


@cache
def sympy_quantities(net: str) -> dict[str, Any]:
    """Exact expressions for network ``net`` in symbols x_j, w_ji^(l), y, xi (cached)."""
    import sympy as sp

    from manual.slides.activations import sigmoid
    from manual.slides.losses import binary_cross_entropy

    sizes = NETWORKS[net]
    x = sp.symbols(f"x1:{sizes[0] + 1}", real=True)
    y, xi, s = sp.symbols("y xi s", real=True)
    W = [
        sp.Matrix(i, o, lambda j, k, l=l: sp.Symbol(f"w{j + 1}{k + 1}_{l}", real=True))
        for l, (i, o) in enumerate(itertools.pairwise(sizes), start=1)
    ]

    def layer(Wl: Any, u: list) -> list:
        return [sigmoid(sum(Wl[j, k] * u[j] for j in range(len(u)))) for k in range(Wl.shape[1])]

    zs, pres = [], []
    u = list(x)
    for Wl in W:
        pres.append([sum(Wl[j, k] * u[j] for j in range(len(u))) for k in range(Wl.shape[1])])
        u = layer(Wl, u)
        zs.append(u)
    y_star = zs[-1][0]
    L = binary_cross_entropy(y, y_star)
    v = sp.Symbol("v", real=True)
    dsigmoid = sp.diff(sigmoid(v), v)
    q: dict[str, Any] = {"x": x, "y": y, "xi": xi, "y_star": y_star, "L": L, "v": v, "tanh": sp.tanh(v)}
    q["dL_dy_star"] = sp.diff(binary_cross_entropy(y, s), s).subs(s, y_star)
    q["dA_I"] = [[dsigmoid.subs(v, I_k) for I_k in I_l] for I_l in pres]
    grads = [Wl.applyfunc(lambda w: sp.diff(L, w)) for Wl in W]
    updated = [Wl - xi * g for Wl, g in zip(W, grads)]
    q["dtranscribed"] = [g for g in grads]
    if net == "single":
        q["x"] = np.array(x, dtype=object)
        q["w"] = np.array([W[0][j, 0] for j in range(sizes[0])], dtype=object)
        q["dL_dw"] = [grads[0][j, 0] for j in range(sizes[0])]
        q["updated_w"] = [updated[0][j, 0] for j in range(sizes[0])]
        q["dy_star_dw"] = [sp.diff(y_star, w) for w in q["w"]]
        return q
    for l, (Wl, g, up) in enumerate(zip(W, grads, updated), start=1):
        q[f"w{l}"], q[f"dL_dw{l}"], q[f"updated_w{l}"] = Wl, g, up
    zeta = sp.symbols("zeta1:3", real=True)
    if net == "two":
        z = zs[0]
        q["z"] = z
        y_of_zeta = layer(W[1], list(zeta))[0]
        q["dy_star_dz"] = [sp.diff(y_of_zeta, zeta[k]).subs(dict(zip(zeta, z))) for k in range(2)]
        q["dz_dw1"] = sp.Matrix(2, 2, lambda j, i: sp.diff(z[i], W[0][j, i]))
        q["dy_star_dw1"] = sp.Matrix(2, 2, lambda j, i: sp.diff(y_star, W[0][j, i]))
        q["dy_star_dw2"] = [sp.diff(y_star, W[1][j, 0]) for j in range(2)]
        # delta^(l) = dL/dI^(l): differentiate with the pre-activations as symbols, then substitute
        v1 = sp.symbols("v1_1:3", real=True)
        L_of_v1 = binary_cross_entropy(y, sigmoid(sum(W[1][k, 0] * sigmoid(v1[k]) for k in range(2))))
        I1 = [sum(W[0][j, i] * x[j] for j in range(2)) for i in range(2)]
        q["delta1"] = [sp.diff(L_of_v1, v1[i]).subs(dict(zip(v1, I1))) for i in range(2)]
        q["delta2"] = sp.diff(binary_cross_entropy(y, sigmoid(v)), v).subs(v, sum(W[1][k, 0] * z[k] for k in range(2)))
    elif net == "three":
        z1, z2 = zs[0], zs[1]
        y_of_zeta = layer(W[2], list(zeta))[0]
        q["dy_dz2"] = [sp.diff(y_of_zeta, zeta[k]).subs(dict(zip(zeta, z2))) for k in range(2)]
        z2_of_zeta = layer(W[1], list(zeta))
        q["dz2_dz1"] = sp.Matrix(2, 2, lambda a, b: sp.diff(z2_of_zeta[a], zeta[b]).subs(dict(zip(zeta, z1))))
        q["dz1_dw22"] = [sp.diff(z1[a], W[0][1, 1]) for a in range(2)]
        q["dL_dw22"] = grads[0][1, 1]
    return q
