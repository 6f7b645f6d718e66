"""Every kind of check is an entry of one table (torch_ref.kinds) run by one engine: the same options,
summary, failure record, command line and fixture for every kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import kind_examples as K
import numpy as np
import pytest

import manual
import torch_ref
from torch_ref.frontends.cli import main
from torch_ref.kinds import entry, names
from torch_ref.strategies import case_from

KINDS = names()
HERE = Path(__file__).parent
# small runs: the point is the shape of what every kind returns, not the draw's breadth
SMALL = {"max_examples": 3, "seed": 0, "depths": (1, 2), "widths": (1, 3)}


def _fn(role: str, kind: str):
    return getattr(K, f"{role}_{kind.replace('-', '_')}")


def _small(kind: str) -> dict:
    """SMALL, less the network options a kind of other cases (a layer's) does not take, plus its own."""
    takes = entry(kind).common
    common = SMALL if takes is None else {k: v for k, v in SMALL.items() if k in takes}
    return {**common, **K.OPTIONS.get(kind, {})}


def _cli_small(kind: str) -> tuple[str, ...]:
    return (*(CLI_SMALL if entry(kind).common is None else CLI_SMALL[:4]), *K.CLI.get(kind, ()))


def test_the_table_lists_every_kind_with_its_public_check():
    # a new kind adds its module to torch_ref.kinds and its right and wrong callables to kind_examples;
    # every test here then runs on it too
    built_in = ("gradients", "update", "training", "deltas", "input", "per-example", "hvp", "gnvp", "data-parallel")
    assert KINDS[: len(built_in)] == built_in
    for kind in KINDS:
        e = entry(kind)
        assert e.name == kind and callable(getattr(torch_ref, e.check))
        assert e.check in torch_ref.__all__ or kind not in built_in
    with pytest.raises(ValueError, match=r"kind must be one of \('gradients', .*got 'hessian'"):
        entry("hessian")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_passes_the_right_callable_with_one_summary(kind):
    summary = torch_ref.check(kind, _fn("right", kind), **_small(kind))
    record = summary.to_dict()
    assert record["passed"] is True and record["kind"] == kind
    assert record["examples"] == summary.examples >= 3 and record["networks"] >= 1
    assert 0 <= record["largest_share_of_tolerance"] <= 1
    common = set(torch_ref.Summary().to_dict())
    assert common <= set(record), common - set(record)


def _failure(kind: str) -> dict:
    with pytest.raises(torch_ref.DerivationMismatch) as caught:
        torch_ref.check(kind, _fn("wrong", kind), **_small(kind))
    return caught.value.record


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_fails_the_wrong_callable_with_one_record(kind):
    record = _failure(kind)
    assert record["passed"] is False and record["kind"] == kind and record["verdict"] == "mismatch"
    assert set(record) == set(_failure("gradients")), "every kind's failure record has the same fields"
    assert record["case"]["spec"] and record["rows"], record
    assert any(r["status"] != "ok" for r in record["rows"])
    assert record["reproduce"], "the failing case is reproduced"
    # the first failing case found, where it is not the minimal one: in the text and the record alike
    assert (record["before_shrinking"] is None) == ("Before shrinking:" not in record["report"])


def test_second_order_and_data_parallel_take_the_narrowing_options():
    seen = []

    def where(case):
        seen.append(case)
        return True

    summary = torch_ref.check_hvp(
        K.right_hvp, hidden_activations=["tanh"], targets="onehot", depths=(2, 3), where=where, max_examples=8, seed=0
    )
    assert summary.examples == 8 and seen
    for case in seen:
        assert [a.name for a in case.spec.activations[:-1]] == ["tanh"] * (case.spec.depth - 1)
        assert case.targets == "onehot" and np.isin(case.Y, (0.0, 1.0)).all()
    # the ranks raise on any case outside the narrowing, which the check would report as a failure
    summary = torch_ref.check_data_parallel(
        K.tanh_onehot_data_parallel,
        hidden_activations=["tanh"],
        targets="onehot",
        depths=(2, 3),
        max_examples=5,
        seed=0,
    )
    assert summary.examples == 5 and summary.activations >= {"tanh"}
    with pytest.raises(torch_ref.DerivationMismatch, match="narrowed to tanh"):
        torch_ref.check_data_parallel(K.tanh_onehot_data_parallel, depths=(2, 3), max_examples=5, seed=0)


def test_a_kind_refuses_an_option_it_does_not_take_and_names_what_it_takes():
    with pytest.raises(
        TypeError, match=r"check_hvp got unexpected keyword argument\(s\) \['steps'\]; accepted: .*'where'"
    ):
        torch_ref.check("hvp", K.right_hvp, steps=3)
    with pytest.raises(ValueError, match=r"check_data_parallel takes device='cpu' only"):
        torch_ref.check_data_parallel(K.right_data_parallel, device="cuda")


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "torch_ref", *args], cwd=HERE, capture_output=True, text=True, timeout=300, env=env
    )


CLI_SMALL = ("--max-examples", "3", "--seed", "0", "--depths", "1:2", "--widths", "1:3")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_through_the_command_line_with_exit_codes_and_json(kind, tmp_path, capsys, monkeypatch):
    # in this process (main() is what python -m torch_ref runs; tests/test_cli.py runs it as a
    # subprocess too): importing torch in 18 subprocesses would cost more than the checks
    monkeypatch.chdir(HERE)
    name = kind.replace("-", "_")
    passed, failed = tmp_path / "passed.json", tmp_path / "failed.json"
    status = main(["check", f"kind_examples:right_{name}", "--kind", kind, *_cli_small(kind), "--json", str(passed)])
    assert status == 0, capsys.readouterr()
    record = json.loads(passed.read_text())
    assert record["passed"] is True and record["kind"] == kind and record["covered"]["kind"] == kind
    assert capsys.readouterr().out.startswith(f"passed: {kind}: ")
    status = main(["check", f"kind_examples:wrong_{name}", "--kind", kind, *_cli_small(kind), "--json", str(failed)])
    assert status == 1
    record = json.loads(failed.read_text())
    assert record["passed"] is False and record["kind"] == kind and record["verdict"] == "mismatch"
    assert record["report"].splitlines()[0] in capsys.readouterr().out


def test_the_command_line_lists_the_kinds_and_refuses_an_option_of_another_kind(tmp_path):
    listing = _cli("kinds")
    assert listing.returncode == 0
    for kind in KINDS:
        assert f"{kind}  (torch_ref.{entry(kind).check})" in listing.stdout
    path = tmp_path / "usage.json"
    run = _cli("check", "kind_examples:right_hvp", "--kind", "hvp", "--steps", "2", "--json", str(path))
    assert run.returncode == 2 and "--steps applies to --kind training or network-training, not hvp" in run.stderr
    assert json.loads(path.read_text())["verdict"] == "usage error"
    run = _cli("check", "kind_examples:right_gradients", "--world-size", "2")
    assert (
        run.returncode == 2
        and "--world-size applies to --kind data-parallel or network-data-parallel, not gradients" in run.stderr
    )


def test_the_fixture_offers_every_kind(pytester):
    pytester.syspathinsert(HERE)
    pytester.makepyfile(
        """
        import pytest
        import kind_examples as K
        from torch_ref.kinds import entry, names

        @pytest.mark.parametrize("kind", names())
        def test_kind(derivation_oracle, kind):
            fn = getattr(K, "right_" + kind.replace("-", "_"))
            by_name = getattr(derivation_oracle, entry(kind).check)
            options = K.OPTIONS.get(kind, {"depths": (1, 2), "widths": (1, 3)})
            assert by_name(fn, **options).examples >= 2
            assert derivation_oracle.check(kind, fn, **options).kind == kind
        """
    )
    report = pytester.path / "oracle.json"
    result = pytester.runpytest(
        "-p", "no:randomly", "--oracle-examples", "2", "--oracle-seed", "0", f"--oracle-report={report}"
    )
    result.assert_outcomes(passed=len(KINDS))
    records = json.loads(report.read_text())
    assert sorted({r["kind"] for r in records}) == sorted(KINDS) and all(r["passed"] for r in records)


@pytest.mark.parametrize("kind", ["hvp", "gnvp"])
def test_a_product_callable_with_the_wrong_signature_is_refused_before_any_draw(kind):
    with pytest.raises(TypeError, match=rf"{kind}_fn must accept 5 positional arguments \(spec, params, X, Y, V\)"):
        torch_ref.check(kind, K.right_gradients)


@pytest.mark.parametrize("kind", ["hvp", "gnvp"])
def test_a_second_order_failure_records_the_layer_the_backward_r_pass_reaches_first(kind):
    record = _failure(kind)
    line = next(x for x in record["report"].splitlines() if x.startswith("Layers whose blocks differ"))
    assert record["parts"] == line and f"reaches layer {record['layer']} " in line


_SEED_ALONE = """
import importlib, sys
import manual, torch_ref

seen = []


def where(case):
    seen.append(repr(case))
    return True


def draw():
    seen.clear()
    torch_ref.check_hvp(manual.hvp, max_examples=30, seed=0, where=where)
    return list(seen)


before = draw()
sys.path.insert(0, sys.argv[1])
importlib.import_module("constants_of_mine")  # a module of the user's, full of literal numbers
print(before == draw(), len(before))
"""


def test_the_seed_alone_decides_the_draw_not_the_numbers_in_the_users_source(tmp_path):
    # Hypothesis mixes literal constants of local modules into its draws; the oracle's draw must not
    # change because the user's script (or one more import) holds other numbers
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "constants_of_mine.py").write_text("VALUES = [150, 12, 60, 1024, 7, 0.001, 1e-300, 1e300, 4096, 31]\n")
    done = subprocess.run(
        [sys.executable, "-c", _SEED_ALONE, str(folder)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    same, drawn = done.stdout.split()
    assert same == "True" and int(drawn) >= 30


def test_a_where_that_lets_few_cases_through_is_said():
    rare = lambda case: zlib.crc32(case.X.tobytes()) % 1000 == 0  # about one drawn case in a thousand
    with pytest.warns(UserWarning, match=r"let only \d+ of the 40 drawn cases asked for through"):
        torch_ref.check_hvp(K.right_hvp, where=rare, max_examples=40, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch_ref.check_hvp(K.right_hvp, where=lambda case: True, max_examples=10, seed=0)


class _Unconvertible:
    """An array-like (shape, dtype) whose conversion raises something other than TypeError."""

    shape, dtype = (1, 1), "float64"

    def __array__(self, *args, **kwargs):
        raise KeyError("no array here")


def test_a_result_whose_conversion_raises_anything_is_a_wrong_return_not_an_internal_error():
    spec = manual.Spec((1, 1), ("identity",), "squared", bias=False)
    case = case_from(spec, N=1, seed=0)
    verdict = torch_ref.check_case(lambda spec, params, X, Y: manual.Params([_Unconvertible()]), case)
    assert verdict.kind == "type" and "KeyError" in verdict.detail
    verdict = torch_ref.check_case(lambda spec, params, X, Y: _Unconvertible(), case, kind="input")
    assert verdict.kind == "type" and "KeyError" in verdict.detail
