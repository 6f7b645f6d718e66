"""What every figure of the HTML report shares: escaping, number formatting, and the colour scale of
``|difference| / tolerance``.

The scale separates "within the bound" (share <= 1) from "beyond" twice over, so that it reads in
grey and for every colour vision: within runs from near-white to a mid blue, beyond from a deep
orange to near-black, the lightness falling all the way (a grey print keeps the order), and every
cell beyond the bound carries a hatch pattern besides its colour. An entry compared with nothing (no
finite bound) is grey with a cross; a non-finite value (``"nonfinite"`` cells) is black. Each side has its own log axis: within
from 1e-4 (and below, the lightest) to 1; beyond from 1 to ``10**high``, the largest share on the page
(at least 1e4), the darkest, so that entries beyond the bound by different amounts still differ.
"""

from __future__ import annotations

import html
import math
from typing import Any

__all__ = ["HIGH", "LOW", "NONFINITE", "colour", "esc", "fmt", "high_of", "share_value"]

LOW, HIGH = -4.0, 4.0  # log10 of the lightest share, and of the darkest at least
_WITHIN = ((247, 251, 255), (198, 219, 239), (107, 174, 214))  # light to mid blue (lightness 98% .. 67%)
_BEYOND = ((230, 85, 13), (166, 54, 3), (64, 20, 2))  # deep orange to near-black (55% .. 10%)
NO_BOUND = "#9a9a9a"
NONFINITE = "#000000"


def esc(text: Any) -> str:
    """``text`` escaped for HTML (and SVG) text and attributes."""
    return html.escape(str(text), quote=True)


def fmt(x: Any, digits: int = 3) -> str:
    """A number as the report prints it (``digits`` significant figures); strings (JSON's "inf",
    "nan") and None as they are."""
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}"


def share_value(v: Any) -> float:
    """A share as a float: JSON's strings "inf" and "nan" (and None, no bound) back to floats; a cell's
    "nonfinite" (a NaN or infinite value) as inf."""
    if v is None:
        return math.nan
    if v == "nonfinite":
        return math.inf
    return float(v)


def _mix(stops: tuple[tuple[int, int, int], ...], t: float) -> str:
    t = min(max(t, 0.0), 1.0) * (len(stops) - 1)
    i = min(int(t), len(stops) - 2)
    f = t - i
    r, g, b = (round(a + (c - a) * f) for a, c in zip(stops[i], stops[i + 1], strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def high_of(shares: Any) -> float:
    """log10 of the darkest share for a page whose cells hold ``shares``: the largest finite one,
    rounded up to a whole power of ten, and at least :data:`HIGH`."""
    finite = [share_value(v) for v in shares]
    finite = [v for v in finite if math.isfinite(v) and v > 0]
    return max(HIGH, math.ceil(math.log10(max(finite)))) if finite else HIGH


def colour(share: float, high: float = HIGH) -> str:
    """The fill of a cell whose ``|difference| / tolerance`` is ``share``, ``10**high`` the darkest
    (see the module docstring)."""
    if math.isnan(share):
        return NO_BOUND
    if math.isinf(share):  # a difference under a bound of 0: beyond, the darkest
        return _mix(_BEYOND, 1.0)
    if share <= 0.0:
        return _mix(_WITHIN, 0.0)
    s = math.log10(share)
    if share <= 1.0:
        return _mix(_WITHIN, (s - LOW) / -LOW)
    return _mix(_BEYOND, s / high)
