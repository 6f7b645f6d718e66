"""Layers with hand-derived backwards (the slides' δ recursion, one layer at a time): one
:class:`Layer` entry per built-in, in array-API code, collected in :data:`LAYERS` by name.

One module per family: :mod:`.dense` (linear, residual), :mod:`.norms` (layer_norm, rms_norm,
batch_norm), :mod:`.lookup` (embedding, dropout), :mod:`.softmax` (softmax, log_softmax,
softmax_cross_entropy), :mod:`.conv` (conv2d), :mod:`.pooling` (max_pool2d, avg_pool2d),
:mod:`.attention` (scaled_dot_product_attention).
"""

from .layer import Layer
from .registry import LAYERS, layer

__all__ = ["LAYERS", "Layer", "layer"]
