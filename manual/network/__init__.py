"""Networks of layers: nodes built like torch's modules, residual blocks, a loss head, the backward by
the δ recursion through every node's hand-derived backward, and trainers (SGD, Adam, AdamW)."""

from .attention import SELF_ATTENTION
from .entries import (
    FLATTEN,
    activation,
    avg_pool2d,
    batch_norm,
    conv2d,
    dropout,
    embedding,
    entry,
    flatten,
    layer_norm,
    linear,
    max_pool2d,
    rms_norm,
    self_attention,
)
from .head import CROSS_ENTROPY, Head
from .network import Network, NetworkForward
from .node import Node
from .residual import Residual

__all__ = [
    "CROSS_ENTROPY",
    "FLATTEN",
    "SELF_ATTENTION",
    "Head",
    "Network",
    "NetworkForward",
    "Node",
    "Residual",
    "activation",
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "dropout",
    "embedding",
    "entry",
    "flatten",
    "layer_norm",
    "linear",
    "max_pool2d",
    "rms_norm",
    "self_attention",
]
