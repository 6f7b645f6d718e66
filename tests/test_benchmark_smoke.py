"""The benchmark's bookkeeping (FLOP count, JSON shape) and that its implementations take the same
step; speed itself is measured by the benchmark, never asserted here."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from impls import BUILDERS, IMPLS, _objective
from peak import step_flops
from train_step import _cpu_name

import manual
from torch_ref.strategies import data_for, params_for


def test_step_flops_counts_the_matrix_products():
    spec = manual.Spec((3, 4, 2), ("tanh", "sigmoid"), "bce")
    # layer 1: forward 2*N*3*4 + grad 2*N*3*4 + update 2*3*4; layer 2 adds delta W^T 2*N*4*2
    N = 5
    assert step_flops(spec, N) == (2 * N * 12 * 2 + 2 * 12) + (2 * N * 8 * 3 + 2 * 8)


@pytest.mark.parametrize(
    "spec",
    [
        manual.Spec((3, 4, 2), ("tanh", "softmax"), "ce", bias=True, reduction="mean"),
        manual.Spec((3, 4, 2), ("relu", "tanh"), "squared", bias=True),
        manual.Spec((2, 2, 1), ("sigmoid", "sigmoid"), "bce", bias=True, reduction="mean"),
    ],
    ids=str,
)
def test_functional_objective_is_the_reference_objective(spec):
    import torch_ref
    from torch_ref import assert_agree, compare

    rng = np.random.default_rng(0)
    params = params_for(spec, rng)
    X, Y = data_for(spec, 4, rng)
    weights = [torch.from_numpy(W.T.copy()) for W in params.weights]
    biases = [torch.from_numpy(b) for b in params.biases]
    ours = _objective(spec, weights, biases, torch.from_numpy(X), torch.from_numpy(Y)).item()
    tol = torch_ref.tolerance(spec, params, X, Y)
    assert_agree(
        compare(
            ["objective"], [np.array(ours)], [np.array(float(torch_ref.objective(spec, params, X, Y)))], [tol.objective]
        )
    )


@pytest.mark.parametrize(
    "spec",
    [
        manual.Spec((3, 4, 2), ("relu", "softmax"), "ce", bias=True, reduction="mean"),
        manual.Spec((3, 5, 2), ("tanh", "sigmoid"), "bce", bias=True),
        manual.Spec((2, 3, 3), ("sigmoid", "identity"), "squared"),
    ],
    ids=str,
)
@pytest.mark.parametrize("impl", IMPLS)
def test_every_implementation_takes_the_sgd_step(impl, spec):
    """The timed step is the step: its weights after one step agree with torch.optim.SGD's."""
    from torch_ref import assert_agree
    from torch_ref.frontends.crosscheck import crosscheck_update

    rng = np.random.default_rng(0)
    params = params_for(spec, rng)
    X, Y = data_for(spec, 4, rng)
    step = BUILDERS[impl](spec, params, X, Y, 0.1, "cpu")
    step()
    assert_agree(crosscheck_update(spec, params, X, Y, 0.1, updated=step.params()))


def _no_peak(dtype, device, sizes, **_):
    """A stand-in for the GEMM-peak measurement in the tests of the scripts' bookkeeping (the peak
    is measured by the scripts, not asserted)."""
    return {"torch": 100.0, "peak": 100.0}


def test_quick_run_writes_the_documented_json(tmp_path, monkeypatch):
    import train_step

    monkeypatch.setattr(train_step, "CASES", train_step.CASES[:1])
    monkeypatch.setattr(train_step, "BLOCK_S", {"quick": 0.002, "full": 0.002})
    monkeypatch.setattr(train_step, "gemm_peak", _no_peak)
    out = tmp_path / "bench.json"
    argv = ["--quick", "--dtypes", "float64", "--rounds", "3", "--no-oracle", "--json", str(out)]
    assert train_step.main(argv) == 0
    data = json.loads(out.read_text())
    assert {"records", "gemm_peak_gflops", "settings", "machine"} <= set(data)
    assert {r["impl"] for r in data["records"]} == {*IMPLS, "gemm_floor"}
    keys = {"case", "dtype", "device", "impl", "median_s", "ratio", "rounds", "fraction_of_peak", "peak_bytes"}
    assert all(keys <= set(r) for r in data["records"])
    for r in data["records"]:
        q = r["ratio"]
        assert q["min"] <= q["lo"] <= q["median"] <= q["hi"] <= q["max"]
        if r["impl"] == "autograd_module":
            assert q["median"] == q["lo"] == q["hi"] == 1.0
        # every step is measured for memory; the GEMM floor (not a step) is not
        assert (r["peak_bytes"] is None) == (r["impl"] == "gemm_floor")
    assert data["records"][0]["case"] == "2-2-1/b1"
    assert data["settings"]["OPENBLAS_THREAD_TIMEOUT"] is not None


def test_scaling_map_runs_and_skips_over_the_cap(tmp_path, monkeypatch):
    import scaling

    monkeypatch.setattr(scaling, "gemm_peak", _no_peak)
    out = tmp_path / "scaling.json"
    argv = ["--widths", "4,64", "--batches", "2,8", "--max-gflop", "1e-4", "--rounds", "3", "--block", "0.002"]
    assert scaling.main([*argv, "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    run = {(c["width"], c["N"]) for c in data["cells"]}
    skipped = {(c["width"], c["N"]) for c in data["skipped"]}
    # 64-64-64 on 8 examples is 10 N w^2 + 4 w^2 FLOPs = 344,064 > 1e5: skipped; 4-4-4 on 2: 384, run
    assert (4, 2) in run and (64, 8) in skipped and run.isdisjoint(skipped) and len(run | skipped) == 4
    assert all(c["ratio"]["lo"] <= c["ratio"]["median"] <= c["ratio"]["hi"] for c in data["cells"])


@pytest.mark.parametrize("model, widths", [("transformer", "4,8"), ("cnn", "2,4")])
def test_network_scaling_map_checks_the_step_and_skips_over_the_cap(model, widths, tmp_path, monkeypatch, capsys):
    """--model transformer|cnn on tiny sizes: every cell run checks manual's AdamW step against torch's,
    the cap skips the largest cell (FLOPs by torch's flop counter: 491,520 and 950,208 > 480,000)."""
    import scaling

    monkeypatch.setattr(scaling, "gemm_peak", _no_peak)
    out = tmp_path / "scaling.json"
    argv = ["--model", model, "--widths", widths, "--batches", "1,2", "--max-gflop", "4.8e-4", "--rounds", "3"]
    assert scaling.main([*argv, "--block", "0.002", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    small, large = (int(w) for w in widths.split(","))
    assert {(c["width"], c["N"]) for c in data["skipped"]} == {(large, 2)}
    assert {(c["width"], c["N"]) for c in data["cells"]} == {(small, 1), (small, 2), (large, 1)}
    assert data["settings"]["model"] == model
    for c in data["cells"]:
        assert set(c["median_s"]) == {"manual_step", "autograd_step"}
        assert c["ratio"]["lo"] <= c["ratio"]["median"] <= c["ratio"]["hi"]
        assert c["grad_agree_rel"] < 1000 * float(np.finfo(np.float32).eps)
        assert c["step_agree_rel_float64"] < 1e5 * 1000 * float(np.finfo(np.float64).eps)
    assert "manual_step / autograd_step" in capsys.readouterr().out
    if model == "transformer":  # 4 heads: a width they do not divide is refused before measuring
        with pytest.raises(SystemExit):
            scaling.main(["--model", model, "--widths", "6"])
        assert "--widths 6: the transformer's D must be a multiple of its 4 heads" in capsys.readouterr().err


def test_rounds_alternate_their_order_and_ratios_pair_rounds():
    from rounds import Spread, interleaved, ratios

    calls = []
    clock = iter(range(1, 100))

    def fake(name):
        def run():
            calls.append(name)
            return float(next(clock))

        return run

    times = interleaved({n: fake(n) for n in "ABC"}, rounds=3)
    assert calls == list("ABCCBAABC")
    assert times["A"] == [1.0, 6.0, 7.0]
    assert ratios(times, "B")["A"] == [1.0 / 2.0, 6.0 / 5.0, 7.0 / 8.0]
    s = Spread.of([1.0, 2.0, 3.0, 4.0, 100.0])
    assert (s.median, s.lo, s.hi, s.min, s.max) == (3.0, 2.0, 4.0, 1.0, 100.0)


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_peak_bytes_counts_the_temporaries_and_not_what_existed_before(library):
    from memory import peak_bytes

    xp = np if library == "numpy" else torch
    kept = xp.ones(1_000_000, dtype=xp.float64)  # 8 MB that exist before the step: not the step's

    def two_temporaries_at_once():
        a = kept * 2.0  # 8 MB
        b = a + 1.0  # 8 MB more while a lives
        del a, b

    def in_place():
        kept[:10] += 1.0

    held = peak_bytes(two_temporaries_at_once, "cpu", library=library)
    assert 16_000_000 <= held <= 16_100_000  # the two buffers, plus a few small objects at most
    assert peak_bytes(in_place, "cpu", library=library) <= 100_000
    with pytest.raises(ValueError, match="library must be 'torch' or 'numpy', got 'jax'"):
        peak_bytes(in_place, "cpu", library="jax")


def test_the_in_place_manual_step_needs_less_memory_than_autograd():
    """The benchmark's memory claim on a case small enough for a test: the in-place step allocates
    no gradient buffers; autograd's step holds the saved activations and a gradient per parameter."""
    from memory import peak_bytes

    spec = manual.Spec((64, 128, 128, 10), ("tanh", "tanh", "softmax"), "ce", bias=True, reduction="mean")
    rng = np.random.default_rng(0)
    params = params_for(spec, rng)
    X, Y = data_for(spec, 32, rng)
    peaks = {}
    for impl in ("manual_torch", "autograd_module"):
        step = BUILDERS[impl](spec, params, X, Y, 0.1, "cpu")
        peaks[impl] = peak_bytes(step, "cpu", release=getattr(step, "release", None))
    gradient_bytes = 8 * sum(a.size for _, a in params.arrays())
    assert peaks["autograd_module"] >= gradient_bytes
    assert peaks["manual_torch"] < peaks["autograd_module"] - gradient_bytes // 2


def test_progress_is_plain_lines_in_a_log(capsys):
    """Redirected (pytest captures stderr, as a file would): one plain line per item, no carriage returns."""
    import train_step

    for k in range(1, 4):
        train_step.progress(k, 3, f"item {k}")
    err = capsys.readouterr().err
    assert "\r" not in err and err.splitlines() == ["[1/3] item 1", "[2/3] item 2", "[3/3] item 3"]


def test_layers_benchmark_times_every_variant_and_writes_the_documented_json(tmp_path, monkeypatch):
    """Tiny sizes, one round: the bookkeeping and the agreement of what is timed, not the speed."""
    import layers

    monkeypatch.setattr(layers, "BLOCK_S", {"quick": 0.002, "full": 0.002})
    out = tmp_path / "layers.json"
    assert layers.main(["--sizes", "small", "--rounds", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert {"records", "settings", "machine"} <= set(data)
    assert data["machine"]["device"] == _cpu_name()
    assert [(r["layer"], r["variant"]) for r in data["records"]] == [
        (name, v) for name in layers.LAYER_NAMES for v in layers.VARIANTS
    ]
    keys = {"layer", "size", "shape", "dtype", "device", "variant", "baseline", "median_s", "time_s", "ratio"}
    # the largest entry's share of float32 rounding: these layers sum at most a few hundred terms
    agree = 1000 * float(np.finfo(np.float32).eps)
    for r in data["records"]:
        assert keys | {"rounds", "peak_bytes", "agree_rel"} <= set(r)
        assert (r["dtype"], r["device"], r["size"], r["rounds"]) == ("float32", "cpu", "small", 1)
        q = r["ratio"]
        assert q["min"] <= q["lo"] <= q["median"] <= q["hi"] <= q["max"]
        if r["variant"] == r["baseline"]:
            assert q["median"] == 1.0
        assert r["variant"].startswith("manual") == (r["baseline"] != r["variant"])
        assert r["peak_bytes"] >= 0 and r["median_s"] > 0
        assert r["agree_rel"] < agree, (r["layer"], r["agree_rel"])


@pytest.mark.parametrize(
    "argv, message",
    [
        pytest.param(["--layers", "conv3d"], "argument --layers: unknown ['conv3d']; choose from", id="unknown-layer"),
        pytest.param(["--sizes", "huge"], "argument --sizes: unknown ['huge']; choose from", id="unknown-size"),
        pytest.param(["--rounds", "0"], "--rounds must be at least 1, got 0", id="no-rounds"),
        pytest.param(["--threads", "0"], "--threads must be at least 1, got 0", id="no-threads"),
    ],
)
def test_layers_benchmark_refuses_a_bad_option_before_measuring(argv, message, capsys):
    import layers

    with pytest.raises(SystemExit) as exc:
        layers.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_networks_benchmark_takes_the_same_step_and_writes_the_documented_json(tmp_path, monkeypatch):
    """A tiny transformer block and CNN, one round: the bookkeeping and that the timed steps are the same
    step (manual's AdamW step against torch.optim.AdamW's), not the speed."""
    import networks

    tiny = [networks.transformer(16, 16, 2, 8, 2, "small"), networks.cnn(1, 8, 2, 4, 3, 4, "small")]
    monkeypatch.setattr(networks, "CASES", tiny)
    monkeypatch.setattr(networks, "BLOCK_S", {"quick": 0.002, "full": 0.002})
    out = tmp_path / "networks.json"
    assert networks.main(["--sizes", "small", "--rounds", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert {"records", "settings", "machine"} <= set(data)
    assert [(r["network"], r["variant"]) for r in data["records"]] == [
        (name, v) for name in networks.NETWORK_NAMES for v in networks.VARIANTS
    ]
    # float32 gradients: a few thousand terms per sum at most; float64 steps: Adam's first step divides
    # by |g| + eps, which magnifies a gradient's rounding by up to lr / eps = 1e5
    bounds = {
        "grad_agree_rel": 1000 * float(np.finfo(np.float32).eps),
        "grad_agree_rel_float64": 1000 * float(np.finfo(np.float64).eps),
        "step_agree_rel_float64": 1e5 * 1000 * float(np.finfo(np.float64).eps),
    }
    for r in data["records"]:
        assert (r["dtype"], r["device"], r["size"], r["rounds"]) == ("float32", "cpu", "small", 1)
        q = r["ratio"]
        assert q["min"] <= q["lo"] <= q["median"] <= q["hi"] <= q["max"]
        assert r["variant"].startswith("manual") == (r["baseline"] != r["variant"])
        assert r["peak_bytes"] > 0 and r["median_s"] > 0 and r["parameters"] > 0
        for key, bound in bounds.items():
            assert r[key] < bound, (r["network"], key, r[key])
