"""Networks of layers: nodes built like torch's modules, residual blocks, a loss head, the backward by
the δ recursion through every node's hand-derived backward, and trainers (SGD, Adam, AdamW)."""

from .attention import SELF_ATTENTION
from .data_parallel import data_parallel_gradients
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
from .trainer import OPTIMIZERS, NetworkTrainer

__all__ = [
    "CROSS_ENTROPY",
    "FLATTEN",
    "OPTIMIZERS",
    "SELF_ATTENTION",
    "Head",
    "Network",
    "NetworkForward",
    "NetworkTrainer",
    "Node",
    "Residual",
    "activation",
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "data_parallel_gradients",
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
