"""Second-order derivations people write, right and wrong: a Hessian-vector product by the R-operator
written out by hand (the way a person derives it from the first-order passes), with one switch per
mistake that derivations of Pearlmutter's method, Hessian-free and Gauss-Newton code get wrong.
Module-level functions, so the oracle's Reproduce lines can import them."""

import manual
from manual.forward import forward
from manual.second_order import _exact_deltas


def _xp(a):
    return manual._xp.namespace(a)


def hand_hvp(spec, params, X, Y, V, mistake=None):
    """HV by the R-passes, written out; ``mistake`` names one wrong step (None: right)."""
    xp = _xp(X)
    fwd = forward(spec, params, X)
    L = spec.depth
    N = X.shape[0]
    scale = 1 / N if spec.reduction == "mean" and mistake != "mean_not_divided" else 1
    RI, RO = [], []
    for l, entry in enumerate(spec.activations):
        r = fwd.u[l] @ V.weights[l]
        if l > 0:
            r = r + RO[-1] @ params.weights[l]
        if V.biases is not None and mistake != "bias_direction_left_out":
            r = r + V.biases[l]
        if entry.elementwise:
            RO.append(entry.prime(fwd.I[l], fwd.O[l], xp) * r)
        elif mistake == "softmax_jacobian_diagonal":
            RO.append(fwd.O[l] * (1 - fwd.O[l]) * r)
        else:
            RO.append(fwd.O[l] * r - fwd.O[l] * xp.sum(fwd.O[l] * r, axis=-1, keepdims=True))
        RI.append(r)
    summed = manual.Spec(spec.sizes, spec.activations, spec.loss, bias=spec.bias, reduction="sum")
    # the exact objective's deltas and, where the loss has one, its cancelled output form: past torch's
    # bce floor the floored first-order deltas, gradient and hessian are those of another objective
    delta = [d * scale for d in _exact_deltas(summed, params, forward(summed, params, X), Y, xp)]
    out, loss = spec.activations[-1], spec.loss
    I, O = fwd.I[-1], fwd.O[-1]
    if spec.canonical or mistake == "canonical_shortcut_everywhere":
        R_out = RO[-1]
    elif mistake is None and out.name in loss.r_cancelled:
        R_out = loss.r_cancelled[out.name](I, O, Y, RI[-1], RO[-1], xp)
    else:
        g = loss.gradient(O, Y, xp)
        Rg = loss.hessian(O, Y, RO[-1], xp)
        if out.elementwise:
            second = 0 if mistake == "output_second_derivative_left_out" else out.second(I, O, xp) * RI[-1] * g
            R_out = second + out.prime(I, O, xp) * Rg
        else:
            Og = xp.sum(O * g, axis=-1, keepdims=True)
            R_out = (
                RO[-1] * (g - Og)
                + O * Rg
                - O * (xp.sum(O * Rg, axis=-1, keepdims=True) + xp.sum(RO[-1] * g, axis=-1, keepdims=True))
            )
    R_delta = [R_out * scale]
    for l in range(L - 2, -1, -1):
        entry = spec.activations[l]
        W = params.weights[l + 1]
        R_back = R_delta[0] @ W.T
        if mistake != "delta_VW_left_out":
            R_back = R_back + delta[l + 1] @ V.weights[l + 1].T
        term = R_back * entry.prime(fwd.I[l], fwd.O[l], xp)
        A2 = entry.second(fwd.I[l], fwd.O[l], xp)
        if mistake == "tanh_second_derivative_sign" and entry == "tanh":
            A2 = -A2  # d/dI (1 - O^2) written as +2 O (1 - O^2)
        if mistake != "hidden_second_derivative_left_out":
            term = term + (delta[l + 1] @ W.T) * A2 * RI[l]
        R_delta.insert(0, term)
    HW = []
    for l in range(L):
        h = fwd.u[l].T @ R_delta[l]
        if l > 0 and mistake != "Ru_delta_left_out":
            h = h + RO[l - 1].T @ delta[l]
        HW.append(h)
    Hb = None if params.biases is None else [xp.sum(d, axis=0) for d in R_delta]
    return manual.Params(HW, Hb)


def gauss_newton_as_hessian(spec, params, X, Y, V):
    """The Gauss-Newton product returned where the Hessian's is asked for."""
    return manual.gnvp(spec, params, X, Y, V)


def hessian_as_gauss_newton(spec, params, X, Y, V):
    """The Hessian's product returned where the Gauss-Newton product is asked for."""
    return manual.hvp(spec, params, X, Y, V)


def jtj_as_gauss_newton(spec, params, X, Y, V):
    """J^T J V: the loss's second derivative in y* left out of the Gauss-Newton product."""
    identity = manual.Loss("identity_hessian", spec.loss.value, spec.loss.gradient, hessian=_identity_hessian)
    plain = manual.Spec(spec.sizes, spec.activations, identity, bias=spec.bias, reduction=spec.reduction)
    return manual.gnvp(plain, params, X, Y, V)


def _identity_hessian(O, Y, R, xp):
    return R


def right(spec, params, X, Y, V):
    """The R-passes written out, right."""
    return hand_hvp(spec, params, X, Y, V)


def hidden_second_derivative_left_out(spec, params, X, Y, V):
    return hand_hvp(spec, params, X, Y, V, mistake="hidden_second_derivative_left_out")


def output_second_derivative_left_out(spec, params, X, Y, V):
    return hand_hvp(spec, params, X, Y, V, mistake="output_second_derivative_left_out")


def Ru_delta_left_out(spec, params, X, Y, V):
    return hand_hvp(spec, params, X, Y, V, mistake="Ru_delta_left_out")


def delta_VW_left_out(spec, params, X, Y, V):
    return hand_hvp(spec, params, X, Y, V, mistake="delta_VW_left_out")


def canonical_shortcut_everywhere(spec, params, X, Y, V):
    return hand_hvp(spec, params, X, Y, V, mistake="canonical_shortcut_everywhere")


def softmax_jacobian_diagonal(spec, params, X, Y, V):
    return hand_hvp(spec, params, X, Y, V, mistake="softmax_jacobian_diagonal")


def tanh_second_derivative_sign(spec, params, X, Y, V):
    return hand_hvp(spec, params, X, Y, V, mistake="tanh_second_derivative_sign")


def bias_direction_left_out(spec, params, X, Y, V):
    return hand_hvp(spec, params, X, Y, V, mistake="bias_direction_left_out")


def mean_not_divided(spec, params, X, Y, V):
    return hand_hvp(spec, params, X, Y, V, mistake="mean_not_divided")
