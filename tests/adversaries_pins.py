"""Wrong (and just-right) derivations for issue 21's pins of second order, data-parallel and the
other first-order quantities, as plain module-level functions (the data-parallel ranks import them
by name). Each docstring says which allowance's regime it hides in.

The "moved" ones return the float64 reference plus ``c`` times the bound the model documents,
per entry with a sign from an explicit Generator: ``c = 1/2`` is a right result just inside,
``c = 4`` one a few times beyond. The bound is written out here from its documented formula, not
read from the checker, so that a checker whose bound was loosened cannot loosen the test with it.
"""

import numpy as np

import manual
from torch_ref.numerics.tolerance import tolerance
from torch_ref.second_order.products import gnvp_reference, hvp_reference, parts
from torch_ref.second_order.r_pass import r_pass
from torch_ref.second_order.tolerance import _at, _values_and_errors
from torch_ref.twin.reference import reference

INSIDE, BEYOND = 0.5, 4.0


def _signs(shape, seed=0):
    return np.random.default_rng(seed).choice([-1.0, 1.0], size=shape)


def as_params(spec, named):
    """``Params`` from ``{"W1": ..., "b1": ...}`` (``Params.arrays()`` names, in any order)."""
    L = spec.depth
    return manual.Params(
        [named[f"W{l}"] for l in range(1, L + 1)], [named[f"b{l}"] for l in range(1, L + 1)] if spec.bias else None
    )


def so_bound(spec, params, X, Y, V, kind):
    r"""The second-order bound as documented: :math:`2\varepsilon\kappa_2 M + \kappa_2\,tiny`, with
    :math:`\kappa_2 = (\max(\text{sizes}, N) + 5)(2L + 2)`, :math:`u = 2\varepsilon\kappa_2` and
    :math:`M = P(0) + (P(u) - P(0))/u + (\varepsilon_w/\varepsilon) P(u)`, P(t) the R-passes on the
    factors' sizes plus t times their errors
    (:func:`torch_ref.second_order.tolerance._values_and_errors`), the difference in long double."""
    from torch_ref.second_order.running_error import radius

    eps, tiny = float(np.finfo(X.dtype).eps), float(np.finfo(X.dtype).tiny)
    kappa2 = (max(*spec.sizes, X.shape[0]) + 5) * (2 * spec.depth + 2)
    u = 2 * eps * kappa2
    values, errors = _values_and_errors(parts(spec, params, X, Y), spec, params, X, Y)
    absV = V.map(np.abs)
    with np.errstate(all="ignore"):
        P0, Pu = (
            [m for _, m in r_pass(_at(values, errors, t), absV, absolute=True, gauss_newton=kind == "gnvp").arrays()]
            for t in (0.0, u)
        )
        w = np.longdouble
        M = [a + np.maximum(c - a, 0) / w(u) + w(np.finfo(w).eps / eps) * c for a, c in zip(P0, Pu)]
    wide = [np.asarray(u * m + kappa2 * tiny, dtype=np.float64) for m in M]
    # and the running error bound where the pair has no cancelled form: the smaller of the two, the
    # float64 reference's own radius added as (1 + eps_64 / eps) r (torch_ref.second_order.running_error)
    p = parts(spec, params, X, Y)
    with np.errstate(all="ignore"):
        r = radius(p, errors, V, kind, eps, max(*spec.sizes, X.shape[0]) + 5)
    if r is None:
        return wide
    both = 1 + float(np.finfo(np.float64).eps) / eps
    return [np.fmin(a, both * e + kappa2 * tiny) for a, e in zip(wide, r)]


def _so_moved(spec, params, X, Y, V, kind, c):
    ref = (hvp_reference if kind == "hvp" else gnvp_reference)(spec, params, X, Y, V)
    bound = so_bound(spec, params, X, Y, V, kind)
    floor = (max(*spec.sizes, X.shape[0]) + 5) * (2 * spec.depth + 2) * float(np.finfo(X.dtype).tiny)
    # entries with nothing to round (M = 0, the bound its underflow floor alone) stay inside: the
    # pin is of the rounding term, which a loosened bound would widen
    return as_params(
        spec,
        {n: a + np.where(t > floor, c, INSIDE) * _signs(a.shape) * t for (n, a), t in zip(ref.arrays(), bound)},
    )


def hvp_just_inside(spec, params, X, Y, V):
    """Right: torch's HV moved by half the documented bound in every entry."""
    return _so_moved(spec, params, X, Y, V, "hvp", INSIDE)


def hvp_beyond(spec, params, X, Y, V):
    """Wrong by 4 times the documented bound in every entry: hides in a bound loosened by 4x or more."""
    return _so_moved(spec, params, X, Y, V, "hvp", BEYOND)


def gnvp_just_inside(spec, params, X, Y, V):
    """Right: the Gauss-Newton product moved by half the documented bound in every entry."""
    return _so_moved(spec, params, X, Y, V, "gnvp", INSIDE)


def gnvp_beyond(spec, params, X, Y, V):
    """Wrong by 4 times the documented bound: hides in a bound loosened by 4x or more."""
    return _so_moved(spec, params, X, Y, V, "gnvp", BEYOND)


SATURATED = 1e-2  # y*(1 - y*) below this: the rows where the general output formula cancels


def _rows_flipped(fn, spec, params, X, Y, V):
    product = fn(spec, params, X, Y, V)
    O = np.asarray(manual.forward(spec, params, X).O[-1], dtype=np.float64)
    rows = np.any(O * (1 - O) < SATURATED, axis=-1)
    if not rows.any():
        return product
    summed = manual.Spec(spec.sizes, spec.activations, spec.loss, bias=spec.bias, reduction="sum")
    part = fn(summed, params, X[rows], Y[rows], V)
    scale = 1 / X.shape[0] if spec.reduction == "mean" else 1
    return manual.Params(
        [a - 2 * scale * b for a, b in zip(product.weights, part.weights)],
        None if product.biases is None else [a - 2 * scale * b for a, b in zip(product.biases, part.biases)],
    )


def hvp_saturated_rows_flipped(spec, params, X, Y, V):
    """HV with the contribution of every row whose output is saturated (y*(1 - y*) < 1e-2) taken
    with the wrong sign, right elsewhere: a "stable branch" for large logits written wrong. Hides in
    the second-order saturation allowance (A' and H_L far less accurate than their size there)."""
    return _rows_flipped(manual.hvp, spec, params, X, Y, V)


def gnvp_saturated_rows_flipped(spec, params, X, Y, V):
    """The Gauss-Newton product with the saturated rows' contribution of the wrong sign (as above)."""
    return _rows_flipped(manual.gnvp, spec, params, X, Y, V)


# ----------------------------------------------------------------- data-parallel (module level)


def _dp_moved(spec, params, X_all, Y_all, c, dtype):
    """The whole batch's float64 gradient moved by c times the first-order bound of ``dtype``."""
    p64 = params.map(lambda a: np.asarray(a, dtype=np.float64))
    whole = reference(spec, p64, X_all.astype(np.float64), Y_all.astype(np.float64)).grads
    tol = tolerance(spec, params, X_all, Y_all, dtype=dtype).grads
    return as_params(spec, {n: a + c * _signs(a.shape) * t for (n, a), (_, t) in zip(whole.arrays(), tol.arrays())})


def _whole_batch(X, Y, allreduce):
    """Every rank gathers the whole batch (rank order) through the all-reduce: each rank puts its
    shard into its own slot of a zero array."""
    sizes, rank = _sizes(X, allreduce)
    n, start = int(sizes.sum()), int(sizes[:rank].sum())
    Xs = np.zeros((n, X.shape[1]))
    Ys = np.zeros((n, Y.shape[1]))
    Xs[start : start + X.shape[0]] = X
    Ys[start : start + Y.shape[0]] = Y
    return allreduce(Xs).astype(X.dtype), allreduce(Ys).astype(Y.dtype)


def _sizes(X, allreduce):
    """Every shard's size (by rank) and this rank's index, through the all-reduce."""
    import torch.distributed as dist

    rank, W = dist.get_rank(), dist.get_world_size()
    own = np.zeros(W)
    own[rank] = X.shape[0]
    return allreduce(own), rank


def dp_float64_bound_beyond(spec, params, X, Y, allreduce):
    """Right in a float32 run: the whole batch's gradient moved by 4 times float64's bound, which
    is far inside float32's. Fails only under a float64 bound used for a float32 run."""
    Xa, Ya = _whole_batch(X, Y, allreduce)
    return _dp_moved(spec, params, Xa, Ya, BEYOND, np.dtype("float64"))


def dp_just_inside(spec, params, X, Y, allreduce):
    """Right: the whole batch's gradient moved by half the bound of the run's dtype."""
    Xa, Ya = _whole_batch(X, Y, allreduce)
    return _dp_moved(spec, params, Xa, Ya, INSIDE, X.dtype)


def dp_beyond(spec, params, X, Y, allreduce):
    """Wrong by 4 times the bound of the run's dtype: hides in a bound loosened by 4x or more."""
    Xa, Ya = _whole_batch(X, Y, allreduce)
    return _dp_moved(spec, params, Xa, Ya, BEYOND, X.dtype)


def dp_rounded_to_float32(spec, params, X, Y, allreduce):
    """Wrong in a float64 run: the right gradient rounded to float32 (float32 data-parallel code
    handed float64 data). Hides in a float32 bound used for a float64 run."""
    return manual.data_parallel_gradients(spec, params, X, Y, allreduce).map(
        lambda a: np.asarray(a, dtype=np.float32).astype(np.float64)
    )


def _shard_sum(spec, params, X, Y):
    if X.shape[0] == 0:
        return params.map(np.zeros_like)
    summed = manual.Spec(spec.sizes, spec.activations, spec.loss, bias=spec.bias, reduction="sum")
    return manual.gradients(summed, params, X, Y)


def _finish(spec, g, n):
    return g if spec.reduction == "sum" else g.map(lambda a: a / n)


def dp_smallest_shard_flipped(spec, params, X, Y, allreduce):
    """The smallest non-empty shard's sum enters the all-reduce with its sign flipped, every other
    shard right: hides where only one shard (the uneven split's first) is small."""
    sizes, rank = _sizes(X, allreduce)
    sign = -1.0 if sizes[rank] == min(s for s in sizes if s > 0) else 1.0
    g = _shard_sum(spec, params, X, Y).map(lambda a: allreduce(sign * a))
    return _finish(spec, g, sizes.sum())


def dp_empty_shard_padded(spec, params, X, Y, allreduce):
    """A rank with an empty shard pads it with one example of zeros (X = 0, Y = 0), counted in N:
    right wherever no shard is empty; hides in the empty-shard regime."""
    if X.shape[0] == 0:
        X = np.zeros((1, X.shape[1]), dtype=X.dtype)
        Y = np.zeros((1, Y.shape[1]), dtype=Y.dtype)
    N = allreduce(np.array([float(X.shape[0])]))[0]
    return _finish(spec, _shard_sum(spec, params, X, Y).map(allreduce), N)


def dp_own_mean_when_uneven(spec, params, X, Y, allreduce):
    """Each rank's own mean, averaged over the ranks (DDP's convention): the whole batch's mean
    only when the shards are equal; hides in the even-shard regime."""
    W = allreduce(np.ones(1))[0]
    g = _shard_sum(spec, params, X, Y)
    if spec.reduction == "mean":
        g = g.map(lambda a: a / max(X.shape[0], 1))
    return g.map(lambda a: allreduce(a) / (W if spec.reduction == "mean" else 1.0))


def unbounded_at_one_entry(tolerance):
    """``tolerance`` with the first weight gradient's bound made infinite at its first entry: an
    allowance that accepts anything there, which no check may count as a pass (issue 21, items 4-5)."""

    def patched(*args, **kwargs):
        tol = tolerance(*args, **kwargs)
        tol.grads.weights[0].flat[0] = np.inf
        return tol

    return patched
