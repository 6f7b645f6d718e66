"""Wrong derivations written to hide inside one first-order allowance each (issue 21). Every one is
a ``grad_fn(spec, params, X, Y)`` on NumPy, right everywhere except in the regime its docstring
names; the oracle must never accept any of them."""

from __future__ import annotations

import derivations as D
import numpy as np

# y*(1 - y*) < 1e-12 (torch's bce floor, float64) from |I| = 27.63 on
FLOOR_LOGIT = 27.63


def _with_output_delta(spec, p, X, Y, wrong):
    """Backprop whose output delta is the right one with ``wrong(I, O, Y, delta)`` applied."""
    return D.backprop(spec, p, X, Y, output_delta=lambda s, I, O, Y: wrong(I, O, Y, D._exact_output_delta(s, I, O, Y)))


def stable_branch_wrong_sign_past_floor(spec, p, X, Y):
    """bce floor (float64): a "stable branch" for large logits, delta = -(exact) where
    y*(1 - y*) < 1e-12 (|I| > 27.6), right everywhere else. Hid in the floor's symmetric band
    (|g - torch| <= |exact - torch|) and was never reached by the strategies (issue 21 items 2, 3)."""
    return _with_output_delta(spec, p, X, Y, lambda I, O, Y, d: np.where(np.abs(I) > FLOOR_LOGIT, -d, d))


def exact_times_1p5_past_floor(spec, p, X, Y):
    """bce floor (float64): the exact delta times 1.5 in the floored rows only; between torch's and
    the exact value it is not, and it is no rounding (issue 21 item 2)."""
    return _with_output_delta(spec, p, X, Y, lambda I, O, Y, d: np.where(np.abs(I) > FLOOR_LOGIT, 1.5 * d, d))


def wrong_branch_where_y_star_rounds_to_one(spec, p, X, Y):
    """float32 saturated outputs: delta = -(y* - y) where y* rounds to exactly 1 (or 0) in the
    checked dtype, right elsewhere: the float32 undetermined rows' allowance (issue 21 items 1, 3)."""
    return _with_output_delta(spec, p, X, Y, lambda I, O, Y, d: np.where((O == 1) | (O == 0), -d, d))


def everything_times_1p5(spec, p, X, Y):
    """float32 undetermined rows: every gradient 1.5x autograd's (the output delta scaled); hid in
    the undetermined allowance that reached every weight through u^T (issue 21 item 1)."""
    return _with_output_delta(spec, p, X, Y, lambda I, O, Y, d: 1.5 * d)


def wrong_sign_x3_past_logit_15(spec, p, X, Y):
    """Saturated rows (both dtypes): delta = -3 (y* - y) where |I| > 15, a finite wrong value; was
    called "unstable ... its evaluation overflows" (issue 21 items 1, 6). The branch is taken in both
    dtypes, so the other dtype's re-run shows the same error: a mismatch."""
    return _with_output_delta(spec, p, X, Y, lambda I, O, Y, d: np.where(np.abs(I) > 15, -3 * d, d))


FIRST_ORDER_ADVERSARIES = [
    stable_branch_wrong_sign_past_floor,
    exact_times_1p5_past_floor,
    wrong_branch_where_y_star_rounds_to_one,
    everything_times_1p5,
    wrong_sign_x3_past_logit_15,
]
