"""The failing and passing checks the HTML report is shown on, each written as a user would write it
(not taken from the oracle's catalogues): the records that ``tests/test_report_pages.py`` opens in a
browser and whose screenshots illustrate docs/reports.md.

- a fully connected gradient with its weight gradient transposed (δᵀu, nn.Linear's layout, where the
  slides' (in, out) layout is δ's transpose of that);
- a batch norm backward that treats the batch's mean and variance as constants;
- a hand-written Adam that leaves out the bias correction;
- a residual network whose backward drops the skip's δ in one block (``tests/network_mistakes.py``);
- one GPT block whose attention backward leaves out the causal mask;
- a data-parallel gradient whose ranks return their own shard's mean;
- a passing run of manual's own gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import network_mistakes
import numpy as np

import manual
import torch_ref
from manual.network import Network, Residual, embedding, layer_norm, linear, self_attention


def failure(run: Callable[[], Any]) -> dict[str, Any]:
    """The record of a check that must fail; ``AssertionError`` where it passes."""
    try:
        run()
    except torch_ref.DerivationMismatch as exc:
        return exc.record
    raise AssertionError("the check passed where it must fail")


def transposed_weight_grads(spec: manual.Spec, params: manual.Params, X: Any, Y: Any) -> manual.Params:
    """The slides' backprop, but each weight gradient returned as δᵀ u (out, in) and transposed back
    only in shape: reshaped, not transposed, so a square layer passes its shape check."""
    g = manual.gradients(spec, params, X, Y)
    weights = [np.reshape(np.transpose(W), W.shape) for W in g.weights]
    return manual.Params(weights, g.biases)


def transposed_weight() -> dict[str, Any]:
    return failure(
        lambda: torch_ref.check_derivation(
            transposed_weight_grads,
            activations=("tanh", "sigmoid"),
            losses=("squared",),
            widths=(3, 4),
            depths=(2, 2),
            max_examples=20,
            seed=1,
        )
    )


def batch_norm_constants_backward(
    dout: Any,
    x: Any,
    weight: Any,
    bias: Any,
    running_mean: Any,
    running_var: Any,
    *,
    training: bool = True,
    eps: float = 1e-5,
) -> dict[str, Any]:
    """Batch norm's backward with the batch's μ and σ taken as constants: δ_x = γ δ_out / σ (right in
    eval mode, where the running statistics are constants indeed)."""
    mu = x.mean(axis=0) if training else running_mean
    var = ((x - mu) ** 2).mean(axis=0) if training else running_var
    sigma = np.sqrt(var + eps)
    xhat = (x - mu) / sigma
    return {
        "x": dout * weight / sigma,
        "weight": (dout * xhat).sum(axis=0),
        "bias": dout.sum(axis=0),
        "running_mean": None,
        "running_var": None,
    }


def batch_norm_constants() -> dict[str, Any]:
    """Against torch's batch norm (the built-in reference, its catalogue diagnosing), on batches of 4 to 6
    rows and 3 to 5 columns: the minimal case of the built-in's own draw is 2 x 1, too small a heat map
    to show a pattern."""
    shapes = {"x": "N D", "weight": "D", "bias": "D", "running_mean": "D", "running_var": "D"}
    return failure(
        lambda: torch_ref.check_layer(
            batch_norm_constants_backward,
            manual.LAYERS["batch_norm"].forward,
            reference="batch_norm",
            shapes=shapes,
            dims={"N": (4, 6), "D": (3, 5)},
            constants={"training": True, "eps": 1e-5},
            max_examples=20,
            seed=0,
        )
    )


class AdamWithoutBiasCorrection:
    """Adam written by hand, its moments never divided by 1 - β^t."""

    def __init__(self, spec: manual.Spec, params: manual.Params, lr: float) -> None:
        self.spec, self.lr = spec, lr
        self.W = [np.array(W) for W in params.weights]
        self.b = None if params.biases is None else [np.array(b) for b in params.biases]
        arrays = self.W + (self.b or [])
        self.m = [np.zeros_like(a) for a in arrays]
        self.v = [np.zeros_like(a) for a in arrays]

    @property
    def params(self) -> manual.Params:
        return manual.Params(self.W, self.b)

    def step(self, X: Any, Y: Any) -> None:
        g = manual.gradients(self.spec, self.params, X, Y)
        grads = list(g.weights) + list(g.biases or [])
        for a, d, m, v in zip(self.W + (self.b or []), grads, self.m, self.v, strict=True):
            m[...] = 0.9 * m + 0.1 * d
            v[...] = 0.999 * v + 0.001 * d * d
            a -= self.lr * m / (np.sqrt(v) + 1e-8)


def adam_without_bias_correction() -> dict[str, Any]:
    import torch

    return failure(
        lambda: torch_ref.check_training(
            AdamWithoutBiasCorrection, optimizer=torch.optim.Adam, steps=5, widths=(2, 3), max_examples=20, seed=0
        )
    )


def residual_network() -> dict[str, Any]:
    net = Network([linear(3, 4), Residual([layer_norm(4), linear(4, 4), "tanh"]), linear(4, 2)], "cross_entropy")
    grad_fn = network_mistakes.residual_not_added(1)
    return failure(lambda: torch_ref.check_derivation(grad_fn, networks=(net, (3, 3)), max_examples=5, seed=0))


def causal_attention() -> dict[str, Any]:
    """One GPT block (embedding, causal self-attention in a residual, a linear head) whose attention
    backward leaves out the causal mask (``tests/network_mistakes.py``)."""
    net = Network([embedding(5, 4), Residual([layer_norm(4), self_attention(4, 1)]), linear(4, 5)], "cross_entropy")
    grad_fn = network_mistakes.attention_mask_left_out(1)
    return failure(lambda: torch_ref.check_derivation(grad_fn, networks=(net, (2, 4)), max_examples=5, seed=0))


def own_shard_mean(spec: manual.Spec, params: manual.Params, X: Any, Y: Any, allreduce: Any) -> manual.Params:
    """Each rank returns the mean over its own shard, never all-reduced across the ranks (an empty
    shard's: zeros)."""
    if X.shape[0] == 0:
        return params.map(np.zeros_like)
    return manual.gradients(spec, params, X, Y)


def data_parallel() -> dict[str, Any]:
    return failure(
        lambda: torch_ref.check_data_parallel(
            own_shard_mean, reductions=("mean",), world_size=2, max_examples=3, seed=0, depths=(1, 2), widths=(2, 3)
        )
    )


def passing_run() -> dict[str, Any]:
    from torch_ref.engine.record import summary_record

    return summary_record(torch_ref.check_derivation(manual.gradients, max_examples=30, seed=0))


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "transposed_weight": transposed_weight,
    "batch_norm_constants": batch_norm_constants,
    "adam_without_bias_correction": adam_without_bias_correction,
    "residual_network": residual_network,
    "causal_attention": causal_attention,
    "data_parallel": data_parallel,
    "passing_run": passing_run,
}
