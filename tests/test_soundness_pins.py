"""Issue 21's pins for second order, data-parallel and the other first-order quantities: every
bound tested from both sides (a right result just inside passes, one a few times beyond fails), in
both dtypes, and the wrong derivations confined to one allowance's regime (saturated outputs, one
shard) fail."""

from dataclasses import replace

import adversaries_pins as adv  # module-level functions: the data-parallel ranks import them
import numpy as np
import pytest

import manual
from torch_ref import DerivationMismatch, check_data_parallel, check_gnvp, check_gnvp_case, check_hvp, check_hvp_case
from torch_ref.first_order.quantities import _per_example_tolerance, classify_kind, per_example_reference
from torch_ref.numerics.tolerance import tolerance
from torch_ref.strategies import case_from
from torch_ref.twin.reference import reference

DTYPES = ["float64", "float32"]
SO = {
    "hvp": (check_hvp, adv.hvp_just_inside, adv.hvp_beyond),
    "gnvp": (check_gnvp, adv.gnvp_just_inside, adv.gnvp_beyond),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["hvp", "gnvp"])
def test_the_second_order_bound_is_pinned_from_both_sides(kind, dtype):
    """Half the documented bound in every entry passes on every drawn case; 4 times it fails."""
    check, inside, beyond = SO[kind]
    assert check(inside, max_examples=12, seed=0, dtype=dtype).examples == 12
    with pytest.raises(DerivationMismatch):
        check(beyond, max_examples=12, seed=0, dtype=dtype)


def _saturated(spec, dtype, logit):
    """A case whose every output logit is about ``logit`` (the bias of the output layer moved)."""
    case = case_from(spec, N=3, seed=1, dtype=dtype)
    I = manual.forward(spec, case.params, case.X).I[-1]
    b = [np.array(v, copy=True) for v in case.params.biases]
    b[-1] = (b[-1] + (logit - I[0])).astype(dtype)
    return replace(case, params=manual.Params(case.params.weights, b))


# float64: y*(1 - y*) about 6e-6, every loss; float32: about 6.6e-3 (float32 sigmoid + bce left out:
# its bound covers the general output formula's cancellation, which no float32 formula avoids there).
# The bound once weighted a product of two factors' errors as one error (A' and H_L at a saturated
# y*) and accepted the sign flip in float64 bce, float32 ce and float32 squared (issue 21); it now
# carries each factor's error to first order, P(0) + (P(u) - P(0))/u
SATURATION = [
    ("float64", 12.0, "bce"),
    ("float64", 12.0, "ce"),
    ("float64", 12.0, "squared"),
    ("float32", 5.0, "ce"),
    ("float32", 5.0, "squared"),
]


@pytest.mark.parametrize("model", ["as checked", "absolute values alone"])
@pytest.mark.parametrize(("dtype", "logit", "loss"), SATURATION)
def test_a_wrong_product_confined_to_saturated_rows_fails(monkeypatch, dtype, logit, loss, model):
    """Sign flipped only in rows with y*(1 - y*) < 1e-2: judged (not "not judged") and a mismatch,
    for HV and the Gauss-Newton product; the right products pass on the same case. "absolute values
    alone": without the running error bound (what a cancelled form the error forms cannot run leaves),
    the first-order error propagation P(0) + (P(u) - P(0))/u still rejects the flip."""
    if model == "absolute values alone":
        import torch_ref.second_order.tolerance as T

        monkeypatch.setattr(T, "radius", lambda *args, **kwargs: None)
    spec = manual.Spec((2, 2), ("sigmoid",), loss, bias=True)
    case = _saturated(spec, np.dtype(dtype), logit)
    O = manual.forward(spec, case.params, case.X).O[-1].astype(np.float64)
    assert np.all(O * (1 - O) < adv.SATURATED)
    for check_case, right, wrong in (
        (check_hvp_case, manual.hvp, adv.hvp_saturated_rows_flipped),
        (check_gnvp_case, manual.gnvp, adv.gnvp_saturated_rows_flipped),
    ):
        assert " agrees with torch's " in check_case(right, case)
        report = check_case(wrong, case)
        assert " disagrees with torch's " in report, report


# ------------------------------------------------------------------------------- data-parallel


def test_the_data_parallel_bound_is_the_runs_dtype_and_pinned_from_both_sides():
    """float32 run: 4x float64's bound passes, half float32's passes, 4x float32's fails; float64
    run: half passes, 4x fails, a float32-rounded gradient fails. One pool of 2 gloo ranks."""
    small = dict(max_examples=4, seed=0, batch=(3, 5), depths=(1, 2), widths=(1, 3))
    for fn in (adv.dp_float64_bound_beyond, adv.dp_just_inside):
        assert check_data_parallel(fn, dtype="float32", **small).examples == 4
    assert check_data_parallel(adv.dp_just_inside, dtype="float64", **small).examples == 4
    for fn, dtype in ((adv.dp_beyond, "float32"), (adv.dp_beyond, "float64"), (adv.dp_rounded_to_float32, "float64")):
        with pytest.raises(DerivationMismatch, match="disagrees with autograd's gradient of the whole batch"):
            check_data_parallel(fn, dtype=dtype, **small)


@pytest.mark.parametrize(
    ("fn", "options"),
    [
        (adv.dp_smallest_shard_flipped, dict(batch=(3, 6))),
        (adv.dp_empty_shard_padded, dict(batch=(1, 1))),
        (adv.dp_own_mean_when_uneven, dict(batch=(3, 6), reductions=("mean",))),
    ],
    ids=["smallest-shard", "empty-shard", "uneven-shards"],
)
def test_a_wrong_derivation_confined_to_one_shards_regime_fails(fn, options):
    with pytest.raises(DerivationMismatch, match="disagrees with autograd's gradient of the whole batch"):
        check_data_parallel(fn, max_examples=6, seed=0, depths=(1, 2), widths=(1, 3), **options)


# ------------------------------------------------------------------- deltas, input, per-example


def _moved(kind, c):
    """fn(spec, params, X, Y) -> autograd's quantity moved by c times its bound in the run's dtype
    (per-example: each row's bound is that of its one-example batch, as documented)."""

    def fn(spec, params, X, Y):
        p64 = params.map(lambda a: np.asarray(a, dtype=np.float64))
        ref = reference(spec, p64, X.astype(np.float64), Y.astype(np.float64))
        tol = tolerance(spec, params, X, Y, dtype=X.dtype)
        if kind == "deltas":
            return [d + c * adv._signs(d.shape) * t for d, t in zip(ref.delta, tol.deltas)]
        if kind == "input":
            return ref.input + c * adv._signs(ref.input.shape) * tol.input
        summed = manual.Spec(spec.sizes, spec.activations, spec.loss, bias=spec.bias, reduction="sum")
        rows = [tolerance(summed, params, X[n : n + 1], Y[n : n + 1], dtype=X.dtype).grads for n in range(len(X))]
        want = per_example_reference(spec, params, X, Y)
        bound = {name: np.stack([dict(r.arrays())[name] for r in rows]) for name, _ in want.arrays()}
        return adv.as_params(spec, {n: a + c * adv._signs(a.shape) * bound[n] for n, a in want.arrays()})

    return fn


KIND_CASES = [
    manual.Spec((3, 4, 2), ("tanh", "softmax"), "ce", bias=True, reduction="mean"),
    manual.Spec((2, 3, 3, 1), ("gelu", "elu", "sigmoid"), "bce"),
    manual.Spec((2, 3, 2), ("relu", "identity"), "squared", bias=True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["deltas", "input", "per-example"])
def test_deltas_input_and_per_example_bounds_are_pinned_from_both_sides(kind, dtype):
    for seed, spec in enumerate(KIND_CASES):
        case = case_from(spec, N=4, seed=seed, dtype=np.dtype(dtype))
        inside = classify_kind(kind, _moved(kind, adv.INSIDE), case)
        assert inside.kind == "agree", (spec, str(inside))
        beyond = classify_kind(kind, _moved(kind, adv.BEYOND), case)
        assert beyond.kind == "mismatch", (spec, str(beyond))


def test_per_example_bound_is_each_rows_own():
    """The documented per-example bound: row n's is that of the one-example batch X[n:n+1]."""
    case = case_from(KIND_CASES[0], N=3, seed=0, dtype=np.float32)
    got = _per_example_tolerance(case, case.X.dtype)
    summed = manual.Spec(case.spec.sizes, case.spec.activations, case.spec.loss, bias=True, reduction="sum")
    for n in range(3):
        one = tolerance(summed, case.params, case.X[n : n + 1], case.Y[n : n + 1]).grads
        for name, b in one.arrays():
            np.testing.assert_array_equal(dict(got.arrays())[name][n], b)


def test_a_data_parallel_run_that_judges_too_little_fails(monkeypatch):
    """Every case's bound made infinite at one entry: no case is judged, so the run raises NotJudged
    (how many and why) instead of returning a summary; a right derivation is never "passed" on nothing."""
    import torch_ref.data_parallel.check as DP
    from torch_ref import NotJudged

    monkeypatch.setattr(DP, "tolerance", adv.unbounded_at_one_entry(DP.tolerance))
    with pytest.raises(NotJudged, match=r"was not judged: none of the 3 drawn cases could be judged"):
        check_data_parallel(manual.data_parallel_gradients, max_examples=3, seed=0, batch=(2, 4), depths=(1, 1))
