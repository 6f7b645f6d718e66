"""The slide-by-slide check: every formula of :mod:`manual.slides` against autograd, against the
general :mod:`manual` implementation and, for derivation steps, symbolically with sympy."""

from .catalog import FORMULAS, Formula
from .check import Outcome, check_all, check_formula
from .points import NETWORKS, Point, draw_point, points
from .report import render

__all__ = [
    "FORMULAS",
    "NETWORKS",
    "Formula",
    "Outcome",
    "Point",
    "check_all",
    "check_formula",
    "draw_point",
    "points",
    "render",
]
