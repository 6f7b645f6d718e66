"""The slides' own networks and random points (weights, inputs, target, learning rate) on them.

Networks, by the sizes the slides' indices imply: ``single`` 3-1 (inputs x_1..x_D, D = 3),
``two`` 2-2-1 (w_22^(1), z_1, z_2), ``three`` 2-2-2-1 (z^(1)_{1,2}, z^(2)_{1,2}), ``vector`` 3-4-1
(the vector form with general D and H). All sigmoid, binary cross-entropy, one example (N = 1), no
bias, float64.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from manual import Params, Spec

__all__ = ["NETWORKS", "Point", "draw_point", "points"]

NETWORKS: dict[str, tuple[int, ...]] = {"single": (3, 1), "two": (2, 2, 1), "three": (2, 2, 2, 1), "vector": (3, 4, 1)}
_BOUND = 2.0  # weights and inputs in [-2, 2]: |I| <= 8 on the 2-input layers, no saturation


def spec_of(net: str) -> Spec:
    sizes = NETWORKS[net]
    return Spec(sizes, ("sigmoid",) * (len(sizes) - 1), "bce")


@dataclass(frozen=True)
class Point:
    """Weights (slides' layout, ``(in, out)``), one input row ``x`` ``(1, D)``, target ``y`` ``(1, 1)``
    and learning rate ``xi`` for network ``net``."""

    net: str
    weights: tuple[np.ndarray, ...]
    x: np.ndarray
    y: np.ndarray
    xi: float

    @property
    def spec(self) -> Spec:
        return spec_of(self.net)

    @property
    def params(self) -> Params:
        return Params(self.weights)


def draw_point(net: str, rng: np.random.Generator) -> Point:
    """A point with entries uniform in [-2, 2], y from {0, 1, uniform(0, 1)}, xi uniform in [0.01, 1]."""
    sizes = NETWORKS[net]
    weights = tuple(rng.uniform(-_BOUND, _BOUND, size=s) for s in itertools.pairwise(sizes))
    x = rng.uniform(-_BOUND, _BOUND, size=(1, sizes[0]))
    y = np.array([[[0.0, 1.0, rng.uniform()][rng.integers(3)]]])
    return Point(net, weights, x, y, float(rng.uniform(0.01, 1.0)))


@st.composite
def points(draw: st.DrawFn, net: str) -> Point:
    """The same distribution as :func:`draw_point`, every number drawn by Hypothesis."""
    sizes = NETWORKS[net]
    value = st.floats(-_BOUND, _BOUND, allow_nan=False)

    def matrix(rows: int, cols: int) -> np.ndarray:
        return np.array(draw(st.lists(st.lists(value, min_size=cols, max_size=cols), min_size=rows, max_size=rows)))

    weights = tuple(matrix(i, o) for i, o in itertools.pairwise(sizes))
    x = matrix(1, sizes[0])
    y = np.array([[draw(st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0, 1)))]])
    return Point(net, weights, x, y, draw(st.floats(0.01, 1.0)))
