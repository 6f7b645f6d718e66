"""The reference: the networks of :mod:`manual` built from torch modules and differentiated by
autograd, and the comparison that checks one against the other."""

from .autograd import deltas, gradients, input_gradient, objective, sgd_step
from .build import Network, build
from .compare import Comparison, Row, assert_agree, compare
from .tolerance import Tolerance, tolerance

__all__ = [
    "Comparison",
    "Network",
    "Row",
    "Tolerance",
    "assert_agree",
    "build",
    "compare",
    "deltas",
    "gradients",
    "input_gradient",
    "objective",
    "sgd_step",
    "tolerance",
]
