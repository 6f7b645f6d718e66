"""Hand-derived backpropagation with explicit delta formulas, on any array-API library.

The slides' notation throughout: ``u`` (layer input), ``I`` (pre-activation), ``O`` (output),
``delta`` (dObjective/dI), ``W`` of shape ``(in, out)`` with ``I = u @ W (+ b)``, ``xi`` (learning
rate). The same code runs on NumPy arrays and torch tensors (any device); it never imports torch
and never uses autograd.

:class:`Network` (:mod:`manual.network`) chains layers, residual blocks and a loss head; its
backward is the same δ recursion through every layer's hand-derived backward.

Every activation and loss is one registry entry (:class:`Activation`, :class:`Loss`;
:data:`ACTIVATIONS`, :data:`LOSSES` by name); every function reads the entry, and a user's own entry
goes wherever a name does.
"""

from . import layers, network, optim
from .activation import Activation
from .backward import deltas, gradients, input_gradient, output_delta
from .data_parallel import data_parallel_gradients
from .forward import Forward, forward
from .layers import LAYERS, Layer
from .loss import TARGETS, Loss
from .network import Network, NetworkTrainer, Residual
from .objective import objective
from .params import Params, init_params
from .per_example import per_example_gradients
from .registry import ACTIVATIONS, LOSSES
from .second_order import gnvp, hvp
from .sgd import sgd_step
from .spec import REDUCTIONS, Spec
from .trainer import AdamTrainer, Trainer

__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "LOSSES",
    "REDUCTIONS",
    "TARGETS",
    "Activation",
    "AdamTrainer",
    "Forward",
    "Layer",
    "Loss",
    "Network",
    "NetworkTrainer",
    "Params",
    "Residual",
    "Spec",
    "Trainer",
    "data_parallel_gradients",
    "deltas",
    "forward",
    "gnvp",
    "gradients",
    "hvp",
    "init_params",
    "input_gradient",
    "layers",
    "network",
    "objective",
    "optim",
    "output_delta",
    "per_example_gradients",
    "sgd_step",
]
