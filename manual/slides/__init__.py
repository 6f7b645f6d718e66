"""Every formula of the backpropagation slides, transcribed as written, one function each.

A transcription is never corrected in place: where a formula as written is wrong, a
``..._corrected`` function sits beside it. Modules follow the slides: :mod:`.losses` ("Training a
neural network"), :mod:`.activations` ("Sigmoid", "tanh", "ReLU"), :mod:`.single_layer`,
:mod:`.two_layer`, :mod:`.three_layer`, :mod:`.vector_form`. The functions accept Python or NumPy
scalars, NumPy arrays, torch tensors and sympy expressions, so one transcription serves the
numeric, the autograd and the symbolic checks.
"""

from . import activations, losses, single_layer, three_layer, two_layer, vector_form

__all__ = ["activations", "losses", "single_layer", "three_layer", "two_layer", "vector_form"]
