r"""The built-in activations, one :class:`~manual.activation.Activation` entry each.

The slides' three (slide "Activation function": sigmoid, tanh, ReLU), the identity, softmax for a
probability output, and the modern ones, each with torch's own conventions so that it agrees with
torch's function to rounding: ``leaky_relu`` (negative slope 0.01), ``elu`` (alpha 1), ``softplus``
(beta 1, linear above 20 as torch's), ``silu`` and ``gelu`` (the tanh approximation). Derivatives are
written through the output O where the slides do so (sigmoid :math:`O(1 - O)`, slide "Looking
backwards: first layer"), which is also what torch's backward formulas use, so saturated outputs
give the same zeros both ways.

Functions are module-level (not lambdas) so entries pickle by reference.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np

from ._xp import Array, device
from .activation import Activation

__all__ = ["BUILTIN_ACTIVATIONS", "softmax_vjp"]


def _identity(I: Array, xp: Any) -> Array:
    return I


def _ones(I: Array, O: Array, xp: Any) -> Array:
    return xp.ones_like(I)


def _identity_times(d: Array, I: Array, O: Array, xp: Any) -> None:
    pass  # A' = 1: nothing to multiply


def _sigmoid(I: Array, xp: Any) -> Array:
    r""":math:`A(z) = 1 / (1 + \exp(-z))` (slide "Sigmoid"); torch's fused kernel where there is one.

    Below about -709 (float64) ``exp(-z)`` overflows to inf and ``1 / (1 + inf)`` gives 0, the
    correct limit; NumPy's overflow warning for that is silenced.
    """
    if hasattr(xp, "sigmoid"):
        return xp.sigmoid(I)
    with np.errstate(over="ignore"):
        return 1 / (1 + xp.exp(-I))


def _tanh(I: Array, xp: Any) -> Array:
    return xp.tanh(I)  # slide "tanh": (exp(z) - exp(-z)) / (exp(z) + exp(-z))


def _relu(I: Array, xp: Any) -> Array:
    return xp.relu(I) if hasattr(xp, "relu") else xp.clip(I, min=0)  # slide "ReLU": max(z, 0)


def _relu_derivative(I: Array, O: Array, xp: Any) -> Array:
    # O > 0 exactly where I > 0: the subgradient 0 at I = 0, as torch's threshold_backward
    return xp.where(O > 0, xp.ones_like(O), xp.zeros_like(O))


def _sigmoid_derivative(I: Array, O: Array, xp: Any) -> Array:
    return O * (1 - O)


def _tanh_derivative(I: Array, O: Array, xp: Any) -> Array:
    return 1 - O * O


def _sigmoid_times(d: Array, I: Array, O: Array, xp: Any) -> None:
    if hasattr(d, "addcmul_"):
        d.mul_(O)  # the same product as d *= O, called directly (this runs once per layer and step)
        d.addcmul_(d, O, value=-1)  # d O (1 - O) = d O - (d O) O, no temporary
    else:
        d *= O
        d *= 1 - O


def _tanh_times(d: Array, I: Array, O: Array, xp: Any) -> None:
    if hasattr(d, "addcmul_"):
        # d (1 - O^2) = d - d O^2; O is not needed after this, so O^2 overwrites it (no temporary)
        O.mul_(O)
        d.addcmul_(d, O, value=-1)
    else:
        d *= 1 - O * O


def _relu_times(d: Array, I: Array, O: Array, xp: Any) -> None:
    # sign(O) is 1 where I > 0 and 0 elsewhere: a float array (a boolean mask costs a conversion)
    if hasattr(O, "sign_"):
        # torch's own sign, in place (O is not needed after this, as times_derivative allows), one
        # pass and no temporary: array-api-compat's adds two passes (a NaN mask and a scatter) to
        # give sign(NaN) = NaN where torch gives 0. The two differ only where O is NaN and d is not;
        # O = relu(I) is NaN only where I is, and a NaN in I^(l) reaches every entry of that
        # example's delta from above through NaN-propagating layers above (every built-in), so d is
        # NaN there too; only a user's activation above that maps NaN to a number sees 0 for NaN
        d.mul_(O.sign_())
    else:
        d *= xp.sign(O)


def _softmax(I: Array, xp: Any) -> Array:
    r""":math:`A(I)_j = \exp(I_j) / \sum_k \exp(I_k)` over the last axis; the row maximum is subtracted
    first, which changes nothing mathematically and avoids overflow."""
    if hasattr(xp, "softmax"):
        return xp.softmax(I, dim=-1)  # torch spells the axis ``dim``
    e = xp.exp(I - xp.max(I, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def softmax_vjp(O: Array, h: Array, xp: Any) -> Array:
    r"""The vector-Jacobian product of softmax, :math:`\delta_j = O_j (g_j - \sum_k g_k O_k)`, evaluated
    from :math:`h = O \odot g` (:attr:`manual.Loss.times_output`, where the factor O is cancelled
    before evaluation) as :math:`\delta_j = h_j \sum_{k \ne j} O_k - O_j \sum_{k \ne j} h_k`, which is
    :math:`h - O \sum_k h_k` with :math:`1 - O_j` summed from the other outputs: no subtraction of
    two large terms where O_j rounds to 1 and h_j is large (bce, issue 21).

    ``O`` and ``h`` have shape ``(N, J)``; the Jacobian ``diag(O) - O O^T`` of each row is applied
    without being formed.
    """
    J = O.shape[-1]
    others = xp.ones((J, J), dtype=O.dtype, device=device(O)) - xp.eye(J, dtype=O.dtype, device=device(O))
    return h * (O @ others) - O * (h @ others)


_LEAKY_SLOPE = 0.01  # torch's default negative_slope


def _leaky_relu(I: Array, xp: Any) -> Array:
    return xp.where(I > 0, I, _LEAKY_SLOPE * I)


def _leaky_relu_derivative(I: Array, O: Array, xp: Any) -> Array:
    # torch's leaky_relu_backward: 1 where I > 0, the slope elsewhere (also at 0)
    return xp.where(I > 0, xp.ones_like(I), xp.full_like(I, _LEAKY_SLOPE))


def _elu(I: Array, xp: Any) -> Array:
    return xp.where(I > 0, I, xp.expm1(xp.clip(I, max=0)))


def _elu_derivative(I: Array, O: Array, xp: Any) -> Array:
    # torch's elu_backward on the input: exp(I) for I <= 0 (1 at 0, so alpha = 1 leaves no kink)
    return xp.where(I > 0, xp.ones_like(I), xp.exp(xp.clip(I, max=0)))


_SOFTPLUS_THRESHOLD = 20.0  # torch's Softplus(beta=1, threshold=20) returns I itself above it


def _softplus(I: Array, xp: Any) -> Array:
    return xp.where(I > _SOFTPLUS_THRESHOLD, I, xp.log1p(xp.exp(xp.clip(I, max=_SOFTPLUS_THRESHOLD))))


def _softplus_derivative(I: Array, O: Array, xp: Any) -> Array:
    # torch's softplus_backward: 1 above the threshold, z / (1 + z) with z = exp(I) below
    z = xp.exp(xp.clip(I, max=_SOFTPLUS_THRESHOLD))
    return xp.where(I > _SOFTPLUS_THRESHOLD, xp.ones_like(I), z / (1 + z))


def _silu(I: Array, xp: Any) -> Array:
    return I * _sigmoid(I, xp)


def _silu_derivative(I: Array, O: Array, xp: Any) -> Array:
    s = _sigmoid(I, xp)
    return s * (1 + I * (1 - s))  # torch's silu_backward


_GELU_BETA = math.sqrt(2 / math.pi)
_GELU_KAPPA = 0.044715


def _gelu(I: Array, xp: Any) -> Array:
    return 0.5 * I * (1 + xp.tanh(_GELU_BETA * (I + _GELU_KAPPA * I * I * I)))


def _gelu_derivative(I: Array, O: Array, xp: Any) -> Array:
    # torch's gelu_backward with approximate="tanh"
    t = xp.tanh(_GELU_BETA * (I + _GELU_KAPPA * I * I * I))
    return 0.5 * (1 + t) + 0.5 * I * (1 - t * t) * _GELU_BETA * (1 + 3 * _GELU_KAPPA * I * I)


# ------------------------------------------------------------ second derivatives (for manual.hvp)


def _zeros(I: Array, O: Array, xp: Any) -> Array:
    # identity; ReLU and leaky ReLU: A'' = 0 everywhere, the kink included (torch's double backward)
    return xp.zeros_like(I)


def _sigmoid_second(I: Array, O: Array, xp: Any) -> Array:
    return O * (1 - O) * (1 - 2 * O)  # d/dI O(1 - O) = O'(1 - 2 O)


def _tanh_second(I: Array, O: Array, xp: Any) -> Array:
    return -2 * O * (1 - O * O)  # d/dI (1 - O^2) = -2 O O'


def _elu_second(I: Array, O: Array, xp: Any) -> Array:
    # exp(I) below 0; 0 at 0 and above (torch's double backward takes the positive side at 0)
    return xp.where(I >= 0, xp.zeros_like(I), xp.exp(xp.clip(I, max=0)))


def _softplus_second(I: Array, O: Array, xp: Any) -> Array:
    # s (1 - s), s = z / (1 + z); 0 from the threshold on (torch's double backward is 0 at I = 20 too)
    z = xp.exp(xp.clip(I, max=_SOFTPLUS_THRESHOLD))
    return xp.where(I >= _SOFTPLUS_THRESHOLD, xp.zeros_like(I), z / ((1 + z) * (1 + z)))


def _silu_second(I: Array, O: Array, xp: Any) -> Array:
    s = _sigmoid(I, xp)
    return s * (1 - s) * (2 + I * (1 - 2 * s))  # d/dI s (1 + I (1 - s))


def _gelu_second(I: Array, O: Array, xp: Any) -> Array:
    # with v = beta (I + kappa I^3), t = tanh(v): A' = (1 + t)/2 + I (1 - t^2) v'/2, so
    # A'' = (1 - t^2) (v' - I t v'^2 + 3 beta kappa I^2)
    t = xp.tanh(_GELU_BETA * (I + _GELU_KAPPA * I * I * I))
    v1 = _GELU_BETA * (1 + 3 * _GELU_KAPPA * I * I)
    return (1 - t * t) * (v1 - I * t * v1 * v1 + 3 * _GELU_BETA * _GELU_KAPPA * I * I)


def _terms_one(I: Array, xp: Any) -> Array:
    # every term of the derivative formula is at most 1 in size (O(1 - O), 1 - O^2, exp(I) for
    # I <= 0, z / (1 + z), the constants of leaky ReLU), a couple of them added
    return xp.full_like(I, 2.0)


def _size_of(forward: Any, I: Array, xp: Any) -> Array:
    """forward_terms of a function evaluated to a few units of its own size (no cancellation)."""
    return xp.abs(forward(I, xp))


def _gelu_forward_terms(I: Array, xp: Any) -> Array:
    return xp.abs(I)  # I/2 (1 + tanh(.)): I/2 times terms of size up to 2


def _silu_terms(I: Array, xp: Any) -> Array:
    s = _sigmoid(I, xp)
    return s + xp.abs(I) * s * (1 + s)  # s (1 + I (1 - s)) on absolute values


def _gelu_terms(I: Array, xp: Any) -> Array:
    # 0.5 (1 + t) + 0.5 I (1 - t^2) beta (1 + 3 kappa I^2) on absolute values, |t| <= 1: the second
    # term cancels the first where tanh is near -1, with a factor growing like I^3
    return 1 + xp.abs(I) * _GELU_BETA * (1 + 3 * _GELU_KAPPA * I * I)


def _in_place_sigmoid(I: Array) -> Array:
    return I.sigmoid_()


def _in_place_tanh(I: Array) -> Array:
    return I.tanh_()


def _in_place_relu(I: Array) -> Array:
    return I.relu_()


BUILTIN_ACTIVATIONS: tuple[Activation, ...] = (
    Activation(
        "identity",
        _identity,
        _ones,
        exact=True,
        times_derivative=_identity_times,
        second_derivative=_zeros,
        description="A(I) = I, A' = 1",
    ),
    Activation(
        "sigmoid",
        _sigmoid,
        _sigmoid_derivative,
        through_output=True,
        in_place=_in_place_sigmoid,
        times_derivative=_sigmoid_times,
        forward_terms=partial(_size_of, _sigmoid),
        derivative_terms=_terms_one,
        second_derivative=_sigmoid_second,
        description="A(I) = 1 / (1 + exp(-I)), A' = O (1 - O) (slide 'Sigmoid')",
    ),
    Activation(
        "tanh",
        _tanh,
        _tanh_derivative,
        through_output=True,
        in_place=_in_place_tanh,
        times_derivative=_tanh_times,
        forward_terms=partial(_size_of, _tanh),
        derivative_terms=_terms_one,
        second_derivative=_tanh_second,
        description="A(I) = tanh(I), A' = 1 - O^2 (slide 'tanh')",
    ),
    Activation(
        "relu",
        _relu,
        _relu_derivative,
        kinks=(0.0,),
        exact=True,
        through_output=True,
        in_place=_in_place_relu,
        times_derivative=_relu_times,
        second_derivative=_zeros,
        description="A(I) = max(I, 0), A' = 1 where I > 0 else 0 (the subgradient 0 at 0, as torch) (slide 'ReLU')",
    ),
    Activation(
        "softmax",
        _softmax,
        None,
        vjp=softmax_vjp,
        description="A(I)_j = exp(I_j) / sum_k exp(I_k) over the J outputs; output layer only",
    ),
    Activation(
        "leaky_relu",
        _leaky_relu,
        _leaky_relu_derivative,
        kinks=(0.0,),
        forward_terms=partial(_size_of, _leaky_relu),
        derivative_terms=_terms_one,
        second_derivative=_zeros,
        description="A(I) = I where I > 0 else 0.01 I, A' = 1 where I > 0 else 0.01 (0.01 at 0, as torch)",
    ),
    Activation(
        "elu",
        _elu,
        _elu_derivative,
        forward_terms=partial(_size_of, _elu),
        derivative_terms=_terms_one,
        second_derivative=_elu_second,
        description="A(I) = I where I > 0 else exp(I) - 1 (alpha 1), A' = 1 where I > 0 else exp(I)",
    ),
    Activation(
        "softplus",
        _softplus,
        _softplus_derivative,
        kinks=(_SOFTPLUS_THRESHOLD,),
        forward_terms=partial(_size_of, _softplus),
        derivative_terms=_terms_one,
        second_derivative=_softplus_second,
        description="A(I) = log(1 + exp(I)), and I itself above 20 (torch's threshold); "
        "A' = exp(I) / (1 + exp(I)), 1 above 20",
    ),
    Activation(
        "silu",
        _silu,
        _silu_derivative,
        forward_terms=partial(_size_of, _silu),
        derivative_terms=_silu_terms,
        second_derivative=_silu_second,
        description="A(I) = I sigmoid(I), A' = s (1 + I (1 - s)), s = sigmoid(I)",
    ),
    Activation(
        "gelu",
        _gelu,
        _gelu_derivative,
        forward_terms=_gelu_forward_terms,
        derivative_terms=_gelu_terms,
        second_derivative=_gelu_second,
        description="the tanh approximation: A(I) = I/2 (1 + tanh(sqrt(2/pi) (I + 0.044715 I^3))), "
        "as torch's gelu(approximate='tanh')",
    ),
)
