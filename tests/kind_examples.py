"""A right and a wrong callable for every kind of check, importable by name (the command line and
the data-parallel ranks import them): the wrong one is the right one's result times 2."""

from __future__ import annotations

import torch

import manual
from manual.network import NetworkTrainer
from manual.network import data_parallel_gradients as network_data_parallel_gradients


def _doubled(p):
    return p.map(lambda a: 2 * a)


def right_gradients(spec, params, X, Y):
    return manual.gradients(spec, params, X, Y)


def wrong_gradients(spec, params, X, Y):
    return _doubled(manual.gradients(spec, params, X, Y))


def right_update(spec, params, X, Y, lr):
    return manual.sgd_step(spec, params, X, Y, lr)


def wrong_update(spec, params, X, Y, lr):
    return manual.sgd_step(spec, params, X, Y, 2 * lr)


def right_training(spec, params, lr):
    return manual.Trainer(spec, params, lr=lr)


def wrong_training(spec, params, lr):
    return manual.Trainer(spec, params, lr=2 * lr)


def right_deltas(spec, params, X, Y):
    return manual.deltas(spec, params, X, Y)


def wrong_deltas(spec, params, X, Y):
    return [2 * d for d in manual.deltas(spec, params, X, Y)]


def right_input(spec, params, X, Y):
    return manual.input_gradient(spec, params, X, Y)


def wrong_input(spec, params, X, Y):
    return 2 * manual.input_gradient(spec, params, X, Y)


def right_per_example(spec, params, X, Y):
    return manual.per_example_gradients(spec, params, X, Y)


def wrong_per_example(spec, params, X, Y):
    return _doubled(manual.per_example_gradients(spec, params, X, Y))


def right_hvp(spec, params, X, Y, V):
    return manual.hvp(spec, params, X, Y, V)


def wrong_hvp(spec, params, X, Y, V):
    return _doubled(manual.hvp(spec, params, X, Y, V))


def right_gnvp(spec, params, X, Y, V):
    return manual.gnvp(spec, params, X, Y, V)


def wrong_gnvp(spec, params, X, Y, V):
    return _doubled(manual.gnvp(spec, params, X, Y, V))


def right_data_parallel(spec, params, X, Y, allreduce):
    return manual.data_parallel_gradients(spec, params, X, Y, allreduce)


def wrong_data_parallel(spec, params, X, Y, allreduce):
    return _doubled(manual.data_parallel_gradients(spec, params, X, Y, allreduce))


def tanh_onehot_data_parallel(spec, params, X, Y, allreduce):
    """Right, on the cases a narrowed check hands out; raises on any other (the ranks report it)."""
    hidden = [a.name for a in spec.activations[:-1]]
    if any(name != "tanh" for name in hidden):
        raise AssertionError(f"handed hidden activations {hidden}, narrowed to tanh")
    if not ((Y == 0) | (Y == 1)).all():
        raise AssertionError("handed soft targets, narrowed to onehot")
    return manual.data_parallel_gradients(spec, params, X, Y, allreduce)


def right_layer(dout, x, weight, bias):
    return manual.LAYERS["linear"].backward(dout, x, weight, bias)


def wrong_layer(dout, x, weight, bias):
    grads = right_layer(dout, x, weight, bias)
    return {**grads, "weight": 2 * grads["weight"]}


class right_function(torch.autograd.Function):
    """tanh(x @ w) with its backward derived by hand."""

    @staticmethod
    def forward(ctx, x, w):
        O = torch.tanh(x @ w)
        ctx.save_for_backward(x, w, O)
        return O

    @staticmethod
    def backward(ctx, dout):
        x, w, O = ctx.saved_tensors
        delta = dout * (1 - O * O)
        return delta @ w.T, x.T @ delta


class wrong_function(right_function):
    @staticmethod
    def backward(ctx, dout):
        dx, dw = right_function.backward(ctx, dout)
        return dx, 2 * dw


def function_inputs(rng):
    """The Function's arguments: x (N, D) and w (D, K)."""
    return rng.standard_normal((3, 4)), {"w": rng.standard_normal((4, 2))}


# what each kind needs beyond the common options, as keywords and on the command line
def right_network(net, params, X, Y, masks=None):
    return net.gradients(params, X, Y, masks=masks)


def wrong_network(net, params, X, Y, masks=None):
    return {k: 2 * g for k, g in right_network(net, params, X, Y, masks).items()}


def right_network_training(net, params, lr):
    return NetworkTrainer(net, params, lr=lr)


def wrong_network_training(net, params, lr):
    return NetworkTrainer(net, params, lr=2 * lr)


def right_network_per_example(net, params, X, Y, masks=None):
    return net.per_example_gradients(params, X, Y, masks=masks)


def wrong_network_per_example(net, params, X, Y, masks=None):
    return {k: 2 * g for k, g in right_network_per_example(net, params, X, Y, masks).items()}


def right_network_data_parallel(net, params, X, Y, allreduce, masks=None):
    return network_data_parallel_gradients(net, params, X, Y, allreduce, masks=masks)


def wrong_network_data_parallel(net, params, X, Y, allreduce, masks=None):
    return {k: 2 * g for k, g in right_network_data_parallel(net, params, X, Y, allreduce, masks).items()}


_NETWORKS = {"networks": "mlp", "max_examples": 6}  # a kink within reach leaves a case not judged
OPTIONS = {
    "layer": {"forward": "linear"},
    "function": {"inputs": function_inputs},
    "network": _NETWORKS,
    "network-training": _NETWORKS,
    "network-per-example": _NETWORKS,
    "network-data-parallel": _NETWORKS,
}
CLI = {
    "layer": ("--forward", "linear"),
    "function": ("--inputs", "kind_examples:function_inputs"),
    **dict.fromkeys(
        ("network", "network-training", "network-per-example", "network-data-parallel"), ("--networks", "mlp")
    ),
}
