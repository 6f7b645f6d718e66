r"""The rounding model of a layer: how far a right forward and backward, computed in a dtype, may
lie from the exact values. Derived from the reference's own structure, the same for every layer,
built-in or the user's.

The reference's forward and autograd's backward of it are traced once into one graph of aten
operations (``make_fx``, compound operations decomposed: layer and batch norm, softmax, attention's
math path, the variance). Every operation of that graph rounds its result; the standard error
bounds (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §2.2 and §3.1) give the
size of that rounding, in units of the unit roundoff u:

- an elementwise operation (+, −, ×, ÷, √, 1/√, reciprocal): ``|ŷ − y| ≤ u |y|``; a transcendental
  one (exp, log, tanh, sigmoid, pow, erf) 2 ulp: ``≤ 4u |y|`` (libm and Sleef keep to 1 ulp, twice
  that here for the vectorised variants);
- a sum of n terms, a matrix product with inner size n, a convolution, a pooling's or an
  embedding's scatter-add: ``≤ γ_n · op(|a|, |b|)``, γ_n = n u / (1 − n u), the same operation on
  the absolute values of its operands (every term's size, so cancellation is accounted for), n
  the most terms any entry of the result adds up (one n for the whole operation);
- a selection, a view, a comparison, a negation, max/min, a mask: exact;
- and every rounding may also be off by η absolutely, half the smallest subnormal, where its result
  underflows below the normal range (a softmax's e^-90 in float32): the same sensitivities, summed
  over every entry that rounds, times η.

Each rounding is an error introduced at one node, which the rest of the graph carries to the
outputs linearly: ``|ĝ_i − g_i| ≤ Σ_k |∂g_i/∂y_k| · r_k``, with ``r_k`` the bound above at node k
(first order in u; Higham §3.3's running error analysis). The sensitivities ``∂g/∂y_k`` come from
autograd through the traced graph in float64, one pass for every output entry at once. The bound
of one output entry is then ``(u_dtype + u_float64) · S_i``: the user's rounding in the checked
dtype, and the reference's own in float64.

The bound is that of the reference's algorithm; a right implementation of the same derivation
adds up terms of the same sizes (a different order or grouping changes the constant, not the
scale). The allowance is ``ALGORITHMS`` = 2 times that worst case (every rounding at its largest,
all of one sign): another right algorithm's roundings are those terms rounded once more each.
Compound elementwise functions (GELU, sigmoid, softplus) are traced in their textbook formulas, so
that the cancellations a formula written that way meets are in the model. The campaigns
(``docs/campaigns.md``) measure how much of the allowance right layers of several styles use.

An operation the tables below do not know is refused (``ValueError`` naming it), never guessed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch._decomp import core_aten_decompositions, get_decompositions
from torch.fx.experimental.proxy_tensor import make_fx
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = ["ALGORITHMS", "Traced", "UnknownOperation", "trace", "underflow", "unit_roundoff"]

# A right backward computed another way than the reference's graph rounds other intermediates: a fused
# operation where the graph has several (torch.sigmoid for 1/(1 + exp(-x))), another order of a sum. Its
# worst case is not the graph's; it is allowed twice the graph's worst case, the same terms rounded
# once more each. The campaigns (docs/campaigns.md) measure what right code of several styles uses.
ALGORITHMS = 2.0

aten = torch.ops.aten
prims = torch.ops.prims


class UnknownOperation(ValueError):
    """The reference uses an operation the rounding model has no rule for."""


def unit_roundoff(dtype: Any) -> float:
    """u = eps / 2 of ``dtype`` (float32: 2^-24, float64: 2^-53); a torch or NumPy dtype, or a name."""
    if isinstance(dtype, torch.dtype):
        return float(torch.finfo(dtype).eps) / 2
    return float(np.finfo(np.dtype(dtype)).eps) / 2


def underflow(dtype: Any) -> float:
    """η, the absolute error a rounding may add under gradual underflow: half the smallest subnormal
    (float32: 2^-150, float64: 2^-1075; Higham §2.1, where a result below the normal range keeps
    fewer digits than u promises)."""
    name = str(dtype).removeprefix("torch.")
    smallest = float(np.finfo(np.dtype(name)).smallest_subnormal)
    return smallest / 2 or smallest  # float64's half is below its own range: the whole one


def _overload_names(*packets: Any) -> set[str]:
    return {f"{p._qualified_op_name}" for p in packets}


# the operations that never round (views, selections, comparisons, masks, negation, max/min)
_EXACT = {
    "aten::alias",
    "aten::view",
    "aten::_unsafe_view",
    "aten::reshape",
    "aten::expand",
    "aten::permute",
    "aten::transpose",
    "aten::t",
    "aten::unsqueeze",
    "aten::squeeze",
    "aten::clone",
    "aten::_to_copy",
    "aten::full",
    "aten::full_like",
    "aten::scalar_tensor",
    "aten::empty",
    "aten::zeros",
    "aten::zeros_like",
    "aten::ones",
    "aten::ones_like",
    "aten::where",
    "aten::eq",
    "aten::ne",
    "aten::lt",
    "aten::le",
    "aten::gt",
    "aten::ge",
    "aten::logical_not",
    "aten::logical_and",
    "aten::logical_or",
    "aten::logical_xor",
    "aten::any",
    "aten::all",
    "aten::neg",
    "aten::abs",
    "aten::gather",
    "aten::scatter",
    "aten::index",
    "aten::embedding",
    "aten::select",
    "aten::slice",
    "aten::cat",
    "aten::stack",
    "aten::amax",
    "aten::amin",
    "aten::max",
    "aten::min",
    "aten::maximum",
    "aten::minimum",
    "aten::relu",
    "aten::sign",
    "aten::constant_pad_nd",
    "aten::copy",
    "aten::detach",
    "aten::lift_fresh_copy",
    "aten::masked_fill",
    "aten::bitwise_and",
    "aten::bitwise_or",
    "aten::bitwise_not",
    "aten::arange",
    "aten::index_select",
    "aten::split",
    "aten::split_with_sizes",
    "aten::unbind",
    "aten::flip",
    "aten::roll",
    "aten::max_pool2d_with_indices",
    "aten::clamp",
    "aten::isinf",
    "aten::isnan",
    "aten::pad",
    "aten::tril",
    "aten::triu",
    "aten::slice_scatter",
    "aten::select_scatter",
    "aten::new_zeros",
    "aten::new_full",
    "aten::new_empty",
    "aten::fill",
    "aten::diagonal",
    "aten::unfold",
    "aten::as_strided",
    "aten::squeeze_copy",
    "aten::unsqueeze_copy",
    "aten::view_copy",
    "aten::permute_copy",
    "aten::expand_copy",
    "aten::sort",
    "aten::argmax",
    "aten::argmin",
    "aten::topk",
    "aten::le_",
    "aten::empty_like",
    "aten::rand_like",
    "aten::threshold_backward",
    "aten::sym_size",
    "aten::sym_numel",
    "aten::sym_stride",
    "prims::broadcast_in_dim",
    "prims::squeeze",
    "prims::view_of",
    "prims::convert_element_type",
    "prims::neg",
    "prims::abs",
    "prims::where",
    "prims::maximum",
    "prims::minimum",
    "prims::eq",
    "prims::ne",
    "prims::lt",
    "prims::le",
    "prims::gt",
    "prims::ge",
    "prims::sign",
}
# elementwise operations correctly rounded by IEEE 754 (≤ u |y|), and the transcendental ones (≤ 4u |y|)
_BASIC = {"aten::add", "aten::sub", "aten::mul", "aten::div", "aten::reciprocal", "aten::sqrt", "aten::rsqrt",
          "aten::rsub", "aten::square", "aten::addcmul", "aten::addcdiv",
          "prims::add", "prims::sub", "prims::mul", "prims::div", "prims::sqrt", "prims::rsqrt",
          "prims::reciprocal"}  # fmt: skip
_TRANSCENDENTAL = {"aten::exp", "aten::log", "aten::tanh", "aten::sigmoid", "aten::pow", "aten::expm1",
                   "aten::log1p", "aten::erf", "aten::exp2", "aten::log2", "aten::sin", "aten::cos",
                   "aten::tanh_backward", "aten::sigmoid_backward", "aten::gelu", "aten::softplus",
                   "prims::exp", "prims::log", "prims::tanh", "prims::pow", "prims::erf", "prims::expm1",
                   "prims::log1p", "prims::sin", "prims::cos", "prims::erfc", "aten::erfc"}  # fmt: skip
_TRANSCENDENTAL_ULPS = 4.0
# sums: γ_n · op(|a|, ...); multilinear in their floating operands with coefficients 1 (or 1/area)
_SUMS = {"aten::sum", "prims::sum", "aten::mean", "aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm",
         "aten::matmul", "aten::convolution", "aten::convolution_backward", "aten::avg_pool2d",
         "aten::avg_pool2d_backward", "aten::max_pool2d_with_indices_backward", "aten::embedding_dense_backward",
         "aten::index_put", "aten::_unsafe_index_put", "aten::scatter_add", "aten::index_add", "aten::cumsum",
         "aten::dot", "aten::mv", "aten::einsum", "aten::linear"}  # fmt: skip

_DECOMPOSE = get_decompositions(
    [
        aten.native_layer_norm, aten.native_layer_norm_backward, aten.native_batch_norm,
        aten.native_batch_norm_backward, aten._native_batch_norm_legit, aten._native_batch_norm_legit_functional,
        aten._native_batch_norm_legit_no_training, aten._softmax, aten._softmax_backward_data, aten._log_softmax,
        aten._log_softmax_backward_data, aten.logsumexp, aten.rms_norm, aten.linalg_vector_norm,
        aten.native_dropout_backward, aten.gelu_backward, aten.silu, aten.silu_backward, aten.hardtanh_backward,
        # compound elementwise functions in their textbook formulas, so that the model sees the terms a
        # right implementation written that way adds up (GELU's 1 + erf(x/√2) cancels where erf is -1)
        aten.gelu, aten.elu, aten.elu_backward,
        aten.softplus, aten.softplus_backward, aten.mish, aten.hardswish, aten.log_sigmoid_forward,
        aten.leaky_relu, aten.leaky_relu_backward,
    ]
)  # fmt: skip


def _var_mean(x: torch.Tensor, dim: Any = None, *, correction: Any = None, keepdim: bool = False) -> Any:
    """The two-pass variance (Higham §1.9), in sums, so that each step has its own rule."""
    c = 1 if correction is None else correction
    dims = list(range(x.dim())) if dim is None else [d % x.dim() for d in ([dim] if isinstance(dim, int) else dim)]
    n = math.prod(x.shape[d] for d in dims)
    m = aten.sum.dim_IntList(x, dims, True) / n
    dev = x - m
    v = aten.sum.dim_IntList(dev * dev, dims, keepdim) / max(n - c, 0)
    return v, (m if keepdim else aten.squeeze.dims(m, dims))


@functools.cache
def _decompositions() -> dict[Any, Callable[..., Any]]:
    table = {**core_aten_decompositions(), **_DECOMPOSE}
    table[aten.var_mean.correction] = _var_mean
    table[aten.var.correction] = lambda *a, **k: _var_mean(*a, **k)[0]
    # the forward of layer norm decomposes through torch._refs into prims.var; ours keeps it in sums
    table[aten.native_layer_norm.default] = _layer_norm
    # textbook formulas in aten operations (torch._decomp's go to prims, which autograd cannot follow)
    table[aten.sigmoid.default] = lambda x: aten.reciprocal.default(
        aten.add.Tensor(aten.exp.default(aten.neg.default(x)), 1)
    )
    table[aten.sigmoid_backward.default] = lambda g, y: aten.mul.Tensor(aten.mul.Tensor(g, y), aten.rsub.Scalar(y, 1))
    table[aten.tanh_backward.default] = lambda g, y: aten.mul.Tensor(g, aten.rsub.Scalar(aten.mul.Tensor(y, y), 1))
    return table


def _layer_norm(x: torch.Tensor, shape: Sequence[int], weight: Any, bias: Any, eps: float) -> Any:
    dims = list(range(x.dim() - len(shape), x.dim()))
    var, mean = _var_mean(x, dims, correction=0, keepdim=True)
    rstd = aten.rsqrt.default(var + eps)
    out = (x - mean) * rstd
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out, mean, rstd


@dataclass(frozen=True)
class Traced:
    """A reference's forward and backward on one case, exactly (float64) and with its rounding model.

    Attributes:
        out: the forward's value (float64).
        grads: autograd's gradient of each differentiated array by name (float64).
        terms: by ``"out"`` and each gradient's name, ``S``: the bound of a right computation in a dtype of
            unit roundoff u is ``u · S`` (entrywise, same shape as the value).
        ops: the aten operations of the traced graph, by name and count (for reports).
    """

    out: torch.Tensor
    grads: Mapping[str, torch.Tensor]
    terms: Mapping[str, torch.Tensor]
    ops: Mapping[str, int]
    fixed: Mapping[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    underflows: Mapping[str, torch.Tensor] = dataclasses.field(default_factory=dict)

    def bound(self, name: str, dtype: Any) -> torch.Tensor:
        """The allowance of ``name``'s entries in ``dtype``: the checked dtype's rounding and float64's,
        ``ALGORITHMS`` times the reference algorithm's (and a fixed part where the reference is not exact:
        finite differences' error)."""
        rounding = ALGORITHMS * (unit_roundoff(dtype) + unit_roundoff(torch.float64)) * self.terms[name]
        if name in self.underflows:  # gradual underflow: each rounding may be off by η absolutely
            rounding = rounding + ALGORITHMS * (underflow(dtype) + underflow(torch.float64)) * self.underflows[name]
        return rounding + self.fixed[name] if name in self.fixed else rounding


def _joint(reference: Callable[..., Any], names: Sequence[str], constants: Mapping[str, Any]) -> Callable[..., Any]:
    def joint(arrays: dict[str, torch.Tensor], dout: torch.Tensor) -> Any:
        leaves = {k: (v.detach().requires_grad_(True) if k in names else v) for k, v in arrays.items()}
        out = reference(**leaves, **constants)
        grads = torch.autograd.grad(out, [leaves[k] for k in names], dout, allow_unused=True, materialize_grads=True)
        return out, list(grads)

    return joint


def _name(target: Any) -> str:
    if target is operator.getitem:
        return "getitem"
    packet = getattr(target, "_overloadpacket", None)
    return str(getattr(packet, "_qualified_op_name", target))


def _functional(target: Any) -> Any:
    """The out-of-place form of an in-place aten operation (``add_`` -> ``add``): the interpreter
    never mutates a value another node reads."""
    packet = getattr(target, "_overloadpacket", None)
    name = getattr(packet, "__name__", "")
    if packet is None or not name.endswith("_") or name.startswith("_"):
        return target
    functional = getattr(getattr(torch.ops, packet._qualified_op_name.split("::")[0]), name[:-1], None)
    return getattr(functional, target._overloadname, target) if functional is not None else target


def _count(target: Any, args: Sequence[Any], kwargs: Mapping[str, Any], out: Any) -> int:
    """n of γ_n: the most terms any output entry of a sum-like operation adds up."""
    name = _name(target)
    if name in ("aten::avg_pool2d", "aten::avg_pool2d_backward"):
        k = args[1] if name == "aten::avg_pool2d" else args[2]
        k = list(k) if isinstance(k, (list, tuple)) else [k]
        return int(math.prod(k if len(k) == 2 else k * 2)) + 1  # the window's sum, then the division
    if name == "aten::mean":  # a sum of the reduced entries, then one division
        return max(args[0].numel() // max(out.numel(), 1), 1) + 1
    # a sum of products with coefficients 1 (a bias included): the operation on ones counts its terms
    ones = [torch.ones_like(a) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
    counted = target(*ones, **kwargs)
    flat = [t for t in (counted if isinstance(counted, (tuple, list)) else [counted]) if isinstance(t, torch.Tensor)]
    most = max((float(t.max()) for t in flat if t.numel()), default=1.0)
    return max(math.ceil(most), 1)


def _abs_args(args: Sequence[Any]) -> list[Any]:
    return [a.abs() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]


def _rounding(target: Any, args: Sequence[Any], kwargs: Mapping[str, Any], out: Any) -> Any:
    """The bound of this node's own rounding in units of u (same structure as ``out``), or None (exact)."""
    name = _name(target)
    if name == "getitem" or name in _EXACT:
        return None
    if name in _BASIC:
        return out.abs()
    if name in _TRANSCENDENTAL:
        return _TRANSCENDENTAL_ULPS * out.abs()
    if name in _SUMS:
        n = _count(target, args, kwargs, out)
        with torch.no_grad():
            size = target(*_abs_args(args), **kwargs)
        if isinstance(size, (tuple, list)):
            return [None if s is None else n * s.abs() for s in size]
        return n * size.abs()
    raise UnknownOperation(
        f"the rounding model has no rule for {name} (in the reference's traced graph); every operation must be "
        f"exact, elementwise or a sum: give a reference written with torch's common operations"
    )


_GRAPHS: dict[Any, Any] = {}  # one traced graph per reference, shapes and constants (make_fx specialises on them)
_GRAPHS_KEPT = 512


def _graph(reference: Callable[..., Any], arrays: Mapping[str, torch.Tensor], names: Sequence[str],
           constants: Mapping[str, Any], dout: torch.Tensor, joint: Any = None) -> Any:  # fmt: skip
    key = (
        joint is not None,
        id(reference),
        tuple((k, tuple(v.shape), str(v.dtype)) for k, v in arrays.items()),
        tuple(names),
        repr(sorted(constants.items())),
        tuple(dout.shape),
    )
    found = _GRAPHS.get(key)
    if found is not None and found[0] is reference:
        return found[1]
    traced = (joint or _joint)(reference, names, constants)
    with sdpa_kernel(SDPBackend.MATH), _without_meta():
        graph = make_fx(traced, decomposition_table=_decompositions())(dict(arrays), dout)
    if len(_GRAPHS) >= _GRAPHS_KEPT:
        _GRAPHS.clear()
    _GRAPHS[key] = (reference, graph)
    return graph


def trace(
    reference: Callable[..., Any],
    arrays: Mapping[str, torch.Tensor],
    names: Sequence[str],
    constants: Mapping[str, Any],
    dout: torch.Tensor,
    *,
    cached: bool = True,
) -> Traced:
    """The reference's value, autograd's gradients in ``names`` and their rounding terms, on one
    case (float64 arrays; integer and boolean ones as they are). ``cached``: reuse the graph traced
    for the same reference, shapes and constants (False traces afresh)."""
    if not cached:
        _GRAPHS.clear()
    return _interpret(_graph(reference, arrays, names, constants, dout), arrays, names, dout)


@contextlib.contextmanager
def _without_meta() -> Any:
    """make_fx without its per-node metadata: in real-tensor tracing it builds a fake tensor (and a
    fake-tensor mode) for every value, most of a trace's time, and the interpreter here reads none
    of it (it runs every operation on real float64 values)."""
    from torch.fx.experimental import proxy_tensor

    kept = proxy_tensor.set_meta
    proxy_tensor.set_meta = lambda proxy, val: proxy
    try:
        yield
    finally:
        proxy_tensor.set_meta = kept


def _by_hand(algorithm: Callable[..., Any], names: Sequence[str], constants: Mapping[str, Any]) -> Callable[..., Any]:
    """The joint graph of an algorithm that computes its gradients itself (no autograd):
    ``algorithm(arrays, dout, constants) -> (out, {name: gradient})``."""

    def joint(arrays: dict[str, torch.Tensor], dout: torch.Tensor) -> Any:
        out, grads = algorithm(arrays, dout, constants)
        return out, [grads[k] for k in names]

    return joint


def trace_algorithm(
    algorithm: Callable[..., Any],
    arrays: Mapping[str, torch.Tensor],
    names: Sequence[str],
    constants: Mapping[str, Any],
    dout: torch.Tensor,
) -> Traced:
    """As :func:`trace`, for an algorithm that computes its gradients by hand,
    ``algorithm(arrays, dout, constants) -> (out, {name: gradient})`` (a built-in's own forward and
    backward): the rounding terms of that algorithm."""
    graph = _graph(algorithm, arrays, names, constants, dout, joint=lambda a, n, c: _by_hand(a, n, c))
    return _interpret(graph, arrays, names, dout)


def _interpret(graph: Any, arrays: Mapping[str, torch.Tensor], names: Sequence[str], dout: torch.Tensor) -> Traced:
    """The traced graph run in float64 with a zero perturbation after every rounding, and the
    sensitivity of every output to each."""
    flat_in = [*arrays.values(), dout]
    env: dict[Any, Any] = {}
    deltas: list[torch.Tensor] = []
    sizes: list[torch.Tensor] = []
    ops: dict[str, int] = {}
    placeholders = iter(flat_in)
    for node in graph.graph.nodes:
        if node.op == "placeholder":
            env[node] = next(placeholders)
            continue
        if node.op == "output":
            result = torch.fx.node.map_arg(node.args[0], lambda n: env[n])
            break
        if node.op == "get_attr":  # a constant the traced code made (torch.tensor(1.0)): exact
            env[node] = getattr(graph, node.target)
            continue
        args = torch.fx.node.map_arg(node.args, lambda n: env[n])
        kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n])
        target = _functional(node.target)
        if _name(target) == "aten::copy":  # autograd has no formula for copy: the value it copies
            out = args[1].to(args[0].dtype).expand_as(args[0]).clone()
        else:
            out = target(*args, **kwargs)
        name = _name(target)
        ops[name] = ops.get(name, 0) + 1
        size = _rounding(target, args, kwargs, out)
        env[node] = _perturbed(out, size, deltas, sizes)
    out_value, grads = result[0], list(result[1:])  # make_fx flattens (out, [grads]) to one list
    values = {"out": out_value, **dict(zip(names, grads))}
    terms, underflows = _sensitivities(values, deltas, sizes)
    return Traced(
        out=out_value.detach(),
        grads={k: v.detach() for k, v in zip(names, grads)},
        terms=terms,
        ops=ops,
        underflows=underflows,
    )


def _perturbed(out: Any, size: Any, deltas: list[torch.Tensor], sizes: list[torch.Tensor]) -> Any:
    """``out + δ`` with δ a zero leaf whose sensitivity is read later, where ``size`` is a rounding."""
    if size is None:
        return out
    if isinstance(out, (tuple, list)):
        return type(out)(_perturbed(o, s, deltas, sizes) for o, s in zip(out, size))
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        return out
    size = torch.where(torch.isfinite(out) & torch.isfinite(size), size, 0.0)  # a mask's -inf is exact
    if not bool((size != 0).any()):
        return out
    delta = torch.zeros_like(out, requires_grad=True)
    deltas.append(delta)
    sizes.append(size.detach())
    return out + delta


def _sensitivities(
    values: Mapping[str, torch.Tensor], deltas: Sequence[torch.Tensor], sizes: Sequence[torch.Tensor]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``S_i = Σ_k |∂g_i/∂δ_k| r_k`` for every entry i of every value, and ``E_i = Σ_k |∂g_i/∂δ_k|``
    over the entries that round (each may underflow by η), by one batched backward."""
    flat = torch.cat([v.reshape(-1) for v in values.values()])
    terms = torch.zeros_like(flat, dtype=torch.float64)
    underflows = torch.zeros_like(flat, dtype=torch.float64)
    live = [k for k, d in enumerate(deltas) if d.grad_fn is None]  # leaves (all are)
    if flat.numel() and live and flat.requires_grad:
        basis = torch.eye(flat.numel(), dtype=flat.dtype)
        rows = torch.autograd.grad(flat, [deltas[k] for k in live], basis, is_grads_batched=True, allow_unused=True)
        for k, row in zip(live, rows):
            if row is None:  # a rounding no output depends on
                continue
            share = torch.where(sizes[k] == 0, 0.0, row.abs() * sizes[k])  # 0 * inf (a masked entry) is 0
            terms = terms + share.reshape(flat.numel(), -1).sum(dim=1)
            reach = torch.where(sizes[k] == 0, 0.0, row.abs())
            underflows = underflows + reach.reshape(flat.numel(), -1).sum(dim=1)
    out: dict[str, torch.Tensor] = {}
    under: dict[str, torch.Tensor] = {}
    start = 0
    for name, v in values.items():
        out[name] = terms[start : start + v.numel()].reshape(v.shape)
        under[name] = underflows[start : start + v.numel()].reshape(v.shape)
        start += v.numel()
    return out, under
