"""A catalogue of hand derivations: mistakes people really make, and correct ones written
differently from manual. Each is a grad_fn(spec, params, X, Y) (or step_fn with lr) on NumPy."""

from __future__ import annotations

import numpy as np

import manual
from manual import Params


def _sigmoid(I):
    return 1 / (1 + np.exp(-I))


def _act(name, I):
    if name == "softmax":
        e = np.exp(I - I.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return {"identity": lambda: I, "sigmoid": lambda: _sigmoid(I), "tanh": lambda: np.tanh(I),
            "relu": lambda: np.maximum(I, 0)}[name]()


def _dA(name, I, O):
    return {"identity": lambda: np.ones_like(I), "sigmoid": lambda: O * (1 - O), "tanh": lambda: 1 - O**2,
            "relu": lambda: (I > 0).astype(I.dtype)}[name]()


def _g(loss, O, Y):
    # bce divides by max(y*(1 - y*), 1e-12), the documented convention (torch's BCELoss backward)
    return {"squared": lambda: O - Y, "bce": lambda: (O - Y) / np.maximum(O * (1 - O), 1e-12),
            "ce": lambda: -Y / O}[loss]()


def _output_delta(spec, I, O, Y):
    if spec.canonical:
        return O - Y
    g = _g(spec.loss, O, Y)
    if spec.activations[-1] == "softmax":
        return O * (g - (g * O).sum(axis=1, keepdims=True))
    return g * _dA(spec.activations[-1], I, O)


def backprop(spec, p, X, Y, *, dA=_dA, output_delta=_output_delta, back=lambda d, W: d @ W.T,
             grad_W=lambda u, d, O: u.T @ d, grad_b=lambda d: d.sum(axis=0), mean=lambda N, J: N):
    """The delta recursion with every piece replaceable, so each mistake is one substitution."""
    us, Is, Os = [X], [], []
    for l, (W, name) in enumerate(zip(p.weights, spec.activations)):
        I = us[-1] @ W + (p.biases[l] if p.biases is not None else 0)
        Is.append(I)
        Os.append(_act(name, I))
        us.append(Os[-1])
    delta = output_delta(spec, Is[-1], Os[-1], Y)
    if spec.reduction == "mean":
        delta = delta / mean(X.shape[0], Y.shape[1])
    deltas = [delta]
    for l in range(spec.depth - 2, -1, -1):
        deltas.insert(0, back(deltas[0], p.weights[l + 1]) * dA(spec.activations[l], Is[l], Os[l]))
    W = [grad_W(u, d, O) for u, d, O in zip(us, deltas, Os)]
    b = None if p.biases is None else [grad_b(d) for d in deltas]
    return Params(W, b)


# ------------------------------------------------------------------------------------------ wrong

def missing_hidden_activation_derivative(spec, p, X, Y):
    """Hidden deltas without the ⊙ A'(I) factor: delta^(l) = delta^(l+1) W^T."""
    return backprop(spec, p, X, Y, dA=lambda n, I, O: np.ones_like(I))


def sign_flipped_output_delta(spec, p, X, Y):
    """Output delta written y - y* instead of y* - y."""
    return backprop(spec, p, X, Y, output_delta=lambda s, I, O, Y: -_output_delta(s, I, O, Y))


def forgot_half_in_squared_loss(spec, p, X, Y):
    """d/dy* of the squared loss taken as 2 (y* - y), as if the 1/2 were not there."""
    f = lambda s, I, O, Y: 2 * _output_delta(s, I, O, Y) if s.loss == "squared" else _output_delta(s, I, O, Y)  # noqa: E731
    return backprop(spec, p, X, Y, output_delta=f)


def mean_not_divided_by_N(spec, p, X, Y):
    """reduction='mean' ignored: the sum's gradient returned."""
    return backprop(spec, p, X, Y, mean=lambda N, J: 1)


def mean_divided_by_N_times_J(spec, p, X, Y):
    """'mean' divided by N*J, as torch's MSELoss/BCELoss 'mean' would, not by N."""
    return backprop(spec, p, X, Y, mean=lambda N, J: N * J)


def transposed_weight_gradient(spec, p, X, Y):
    """grad W returned as delta^T u, in nn.Linear's (out, in) layout."""
    return backprop(spec, p, X, Y, grad_W=lambda u, d, O: d.T @ u)


def W_instead_of_W_transpose(spec, p, X, Y):
    """The recursion multiplies delta by W instead of W^T (fails or crashes unless square)."""
    return backprop(spec, p, X, Y, back=lambda d, W: d @ W)


def sigmoid_derivative_on_I(spec, p, X, Y):
    """sigmoid' written I (1 - I): the output formula applied to the pre-activation."""
    return backprop(spec, p, X, Y, dA=lambda n, I, O: I * (1 - I) if n == "sigmoid" else _dA(n, I, O))


def tanh_derivative_without_square(spec, p, X, Y):
    """tanh' written 1 - O instead of 1 - O^2."""
    return backprop(spec, p, X, Y, dA=lambda n, I, O: 1 - O if n == "tanh" else _dA(n, I, O))


def relu_subgradient_one_at_zero(spec, p, X, Y):
    """ReLU' taken as 1 at I = 0 (torch and the contract take 0)."""
    return backprop(spec, p, X, Y, dA=lambda n, I, O: (I >= 0).astype(I.dtype) if n == "relu" else _dA(n, I, O))


def bias_gradient_from_first_example(spec, p, X, Y):
    """grad b = delta of the first example only, not summed over the batch."""
    return backprop(spec, p, X, Y, grad_b=lambda d: d[0])


def bias_gradient_averaged(spec, p, X, Y):
    """grad b = mean of delta over the batch instead of the sum."""
    return backprop(spec, p, X, Y, grad_b=lambda d: d.mean(axis=0))


def softmax_jacobian_taken_diagonal(spec, p, X, Y):
    """Softmax treated elementwise, A' = O (1 - O), for non-canonical softmax outputs."""
    def out(s, I, O, Y):
        if s.activations[-1] == "softmax" and not s.canonical:
            return _g(s.loss, O, Y) * O * (1 - O)
        return _output_delta(s, I, O, Y)
    return backprop(spec, p, X, Y, output_delta=out)


def shortcut_applied_to_every_pair(spec, p, X, Y):
    """delta^(L) = y* - y used for every output/loss pair, not only the canonical ones."""
    return backprop(spec, p, X, Y, output_delta=lambda s, I, O, Y: O - Y)


def output_derivative_applied_twice(spec, p, X, Y):
    """For sigmoid+bce, delta = (y* - y) ⊙ y*(1 - y*): the derivative the loss already cancelled."""
    def out(s, I, O, Y):
        if s.canonical and s.activations[-1] == "sigmoid":
            return (O - Y) * O * (1 - O)
        return _output_delta(s, I, O, Y)
    return backprop(spec, p, X, Y, output_delta=out)


def weight_gradient_from_layer_output(spec, p, X, Y):
    """grad W^(l) = O^(l)^T delta^(l): the layer's output where its input u^(l) belongs."""
    return backprop(spec, p, X, Y, grad_W=lambda u, d, O: O.T @ d)


def zero_bias_gradients(spec, p, X, Y):
    """Biases left out of the derivation: their gradients returned as zeros."""
    return backprop(spec, p, X, Y, grad_b=lambda d: np.zeros(d.shape[1]))


def ce_on_sigmoid_without_division(spec, p, X, Y):
    """ce with sigmoid outputs: dL/dy* = -y (the 1/y* dropped)."""
    def out(s, I, O, Y):
        if s.loss == "ce" and s.activations[-1] == "sigmoid":
            return -Y * _dA("sigmoid", I, O)
        return _output_delta(s, I, O, Y)
    return backprop(spec, p, X, Y, output_delta=out)


WRONG_GRADIENTS = [
    missing_hidden_activation_derivative, sign_flipped_output_delta, forgot_half_in_squared_loss,
    mean_not_divided_by_N, mean_divided_by_N_times_J, transposed_weight_gradient, W_instead_of_W_transpose,
    sigmoid_derivative_on_I, tanh_derivative_without_square, relu_subgradient_one_at_zero,
    bias_gradient_from_first_example, bias_gradient_averaged, softmax_jacobian_taken_diagonal,
    shortcut_applied_to_every_pair, output_derivative_applied_twice, weight_gradient_from_layer_output,
    zero_bias_gradients, ce_on_sigmoid_without_division,
]


def step_adds_gradient(spec, p, X, Y, lr):
    """w + xi grad: the update climbs."""
    g = manual.gradients(spec, p, X, Y)
    return Params([W + lr * G for W, G in zip(p.weights, g.weights)],
                  None if p.biases is None else [b + lr * G for b, G in zip(p.biases, g.biases)])


def step_updates_layers_in_turn(spec, p, X, Y, lr):
    """Each layer's delta computed from weights the step already updated (output layer first)."""
    weights, biases = list(p.weights), None if p.biases is None else list(p.biases)
    for l in range(spec.depth - 1, -1, -1):
        g = manual.gradients(spec, Params(weights, biases), X, Y)
        weights[l] = weights[l] - lr * g.weights[l]
        if biases is not None:
            biases[l] = biases[l] - lr * g.biases[l]
    return Params(weights, biases)


def step_forgets_biases(spec, p, X, Y, lr):
    """Weights stepped, biases returned unchanged."""
    g = manual.gradients(spec, p, X, Y)
    return Params([W - lr * G for W, G in zip(p.weights, g.weights)], p.biases)


WRONG_UPDATES = [step_adds_gradient, step_updates_layers_in_turn, step_forgets_biases]


# ------------------------------------------------------------------------------------------ right

def one_example_at_a_time_column_vectors(spec, p, X, Y):
    """Per example, column vectors and (out, in) weights: I = W u, delta = A' ⊙ (W_next^T delta_next)."""
    Ws = [W.T for W in p.weights]  # (out, in)
    bs = [np.zeros((W.shape[0], 1)) for W in Ws] if p.biases is None else [b.reshape(-1, 1) for b in p.biases]
    gW = [np.zeros_like(W) for W in Ws]
    gb = [np.zeros_like(b) for b in bs]
    N = X.shape[0]
    for n in range(N):
        u = [X[n].reshape(-1, 1)]
        Is, Os = [], []
        for W, b, name in zip(Ws, bs, spec.activations):
            Is.append(W @ u[-1] + b)
            Os.append(_act(name, Is[-1].T).T)
            u.append(Os[-1])
        y = Y[n].reshape(-1, 1)
        d = _output_delta(spec, Is[-1].T, Os[-1].T, y.T).T
        if spec.reduction == "mean":
            d = d / N
        for l in range(spec.depth - 1, -1, -1):
            gW[l] += d @ u[l].T
            gb[l] += d
            if l:
                d = _dA(spec.activations[l - 1], Is[l - 1], Os[l - 1]) * (Ws[l].T @ d)
    return Params([g.T for g in gW], None if p.biases is None else [g[:, 0] for g in gb])


def derivatives_from_I(spec, p, X, Y):
    """A' evaluated from I: sigmoid(I)(1 - sigmoid(I)), 1 - tanh(I)^2, [I > 0]."""
    def dA(n, I, O):
        if n == "sigmoid":
            s = _sigmoid(I)
            return s * (1 - s)
        if n == "tanh":
            return 1 - np.tanh(I) ** 2
        return _dA(n, I, O)
    return backprop(spec, p, X, Y, dA=dA)


def general_output_delta_everywhere(spec, p, X, Y):
    """No y* - y shortcut: dL/dy* ⊙ A' (softmax by its VJP) for every pair."""
    return manual.gradients(spec, p, X, Y, simplified=False)


def explicit_softmax_jacobian(spec, p, X, Y):
    """Softmax outputs through the full Jacobian diag(p) - p p^T, built per example."""
    def out(s, I, O, Y):
        if s.activations[-1] != "softmax" or s.canonical:
            return _output_delta(s, I, O, Y)
        g = _g(s.loss, O, Y)
        return np.stack([(np.diag(o) - np.outer(o, o)) @ gn for o, gn in zip(O, g)])
    return backprop(spec, p, X, Y, output_delta=out)


RIGHT_GRADIENTS = [one_example_at_a_time_column_vectors, derivatives_from_I, general_output_delta_everywhere,
                   explicit_softmax_jacobian, manual.gradients]
