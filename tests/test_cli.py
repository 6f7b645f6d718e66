"""``python -m torch_ref check``, run as a user runs it: a subprocess, its exit status, its files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from torch_ref.frontends.cli import main

DERIVATIONS = textwrap.dedent(
    """
    import functools

    import torch

    import manual


    def right(spec, params, X, Y):
        return manual.gradients(spec, params, X, Y)


    def doubled(spec, params, X, Y):
        return manual.gradients(spec, params, X, Y).map(lambda a: 2 * a)


    def momentum_trainer(spec, params, lr):
        return manual.Trainer(spec, params, lr=lr, momentum=0.9)


    def sgd_momentum(params, lr):
        return torch.optim.SGD(params, lr, momentum=0.9)


    def even_batches(case):
        return case.X.shape[0] % 2 == 0
    """
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli")
    (path / "my_backprop.py").write_text(DERIVATIONS)
    return path


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "torch_ref", "check", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_passing_check_exits_0_and_writes_its_coverage(workdir):
    out = run(
        workdir,
        "my_backprop:right",
        "--hidden-activations",
        "relu",
        "--output-activations",
        "sigmoid",
        "--losses",
        "bce",
        "--output-width",
        "1",
        "--targets",
        "onehot",
        "--where",
        "my_backprop:even_batches",
        "--max-examples",
        "10",
        "--seed",
        "0",
        "--json",
        "pass.json",
        "--markdown",
        "pass.md",
        "--html",
        "pass.html",
    )
    assert out.returncode == 0, out.stderr
    record = json.loads((workdir / "pass.json").read_text())
    assert record["passed"] is True and record["kind"] == "gradients"
    assert record["covered"]["output_loss_pairs"] == ["sigmoid+bce"] and record["covered"]["targets"] == "onehot"
    assert record["options"]["hidden_activations"] == ["relu"]
    assert (workdir / "pass.md").read_text().startswith("# backprop-crosscheck: my_backprop:right")
    assert "What the run covered" in (workdir / "pass.html").read_text()


def test_a_mismatch_exits_1_with_the_report_and_the_record(workdir):
    out = run(
        workdir,
        "my_backprop.py:doubled",
        "--max-examples",
        "10",
        "--seed",
        "0",
        "--json",
        "f.json",
        "--markdown",
        "f.md",
        "--html",
        "f.html",
    )
    assert out.returncode == 1, out.stderr
    html = (workdir / "f.html").read_text()
    assert html.startswith("<!doctype html>") and 'class="heatmap"' in html and "Reproduce" in html
    assert "disagrees with autograd" in out.stdout
    record = json.loads((workdir / "f.json").read_text())
    assert record["passed"] is False and record["verdict"] == "mismatch" and record["layer"] == 1
    assert record["case"]["spec"] and record["rows"][0]["status"] == "MISMATCH"
    assert any("times 2" in d or "factor" in d.lower() for d in record["diagnosis"]), record["diagnosis"]
    assert record["blame"] and record["reproduce"] and record["report"] == out.stdout.strip()
    md = (workdir / "f.md").read_text()
    assert "**Failed**" in md and "| W1 | MISMATCH |" in md and "```python" in md


def test_training_with_an_optimizer_from_the_module(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    monkeypatch.syspath_prepend(str(workdir))
    ok = main(
        [
            "check",
            "my_backprop:momentum_trainer",
            "--kind",
            "training",
            "--optimizer",
            "my_backprop:sgd_momentum",
            "--steps",
            "4",
            "--losses",
            "squared",
            "--max-examples",
            "5",
            "--seed",
            "0",
        ]
    )
    assert ok == 0
    wrong = main(["check", "my_backprop:momentum_trainer", "--kind", "training", "--losses", "squared"])
    assert wrong == 1 and "momentum 0.9 where the optimizer has none" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no_such_module:f"], "cannot import module"),
        (["my_backprop:nope"], "has no 'nope'"),
        (["my_backprop"], "must be MODULE:NAME"),
        (["my_backprop:right", "--widths", "0"], "widths must be"),
        (["my_backprop:right", "--kind", "sideways"], "invalid choice"),
        (["my_backprop:right", "--hidden-activations", "softmax"], "not elementwise"),
        (["my_backprop:right", "--lr", "0.1"], "--lr applies to"),
        (["my_backprop:right", "--activations", "my_backprop:missing"], "has no 'missing'"),
        (["my_backprop:right", "--steps", "3"], "--steps applies to --kind training"),
        (["my_backprop:right", "--json", "no/such/folder/x.json"], "no folder"),
        (["my_backprop:right", "--markdown", "."], "is a directory"),
        (["my_backprop:right", "--where", "my_backprop:right"], "where must take one argument"),
        (
            ["my_backprop:momentum_trainer", "--kind", "training", "--optimizer", "my_backprop:right"],
            "optimizer(params, lr)",
        ),
    ],
    ids=[
        "module",
        "function",
        "no-colon",
        "widths",
        "kind",
        "softmax-hidden",
        "lr",
        "entry",
        "steps",
        "json-folder",
        "markdown-dir",
        "where-arity",
        "optimizer-not-factory",
    ],
)
def test_usage_errors_exit_2(workdir, args, message, capsys, monkeypatch):
    """In process (the subprocess test below shows the status reaches the shell)."""
    monkeypatch.chdir(workdir)
    monkeypatch.syspath_prepend(str(workdir))
    assert main(["check", *args]) == 2
    assert message in capsys.readouterr().err


def test_a_usage_error_exits_2_in_a_subprocess(workdir):
    out = run(workdir, "my_backprop:nope")
    assert out.returncode == 2 and "has no 'nope'" in out.stderr


def test_reproduce_lines_of_a_file_in_a_subfolder_run_from_here(workdir, monkeypatch):
    """The check in process; its Reproduce lines replayed in a fresh interpreter."""
    (workdir / "sub" / "deep").mkdir(parents=True, exist_ok=True)
    (workdir / "sub" / "deep" / "netfile.py").write_text(DERIVATIONS)
    monkeypatch.chdir(workdir)
    args = ["check", "sub/deep/netfile.py:doubled", "--max-examples", "5", "--seed", "0", "--json", "sub.json"]
    assert main(args) == 1
    code = "\n".join(json.loads((workdir / "sub.json").read_text())["reproduce"])
    assert "sys.path.insert(0, 'sub/deep')" in code
    replay = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert replay.returncode == 0 and "grad_fn disagrees with autograd" in replay.stdout, replay.stderr


def test_no_stale_json_survives_a_run_that_ends_otherwise(workdir, tmp_path):
    # a passing record from an earlier run must never be read as this run's outcome
    path = tmp_path / "out.json"
    (workdir / "exits.py").write_text(
        "import sys\n\n\ndef grad(spec, params, X, Y):\n    return None\n\n\nsys.exit(0)\n"
    )
    path.write_text('{"passed": true}')
    done = run(workdir, "exits.py:grad", "--json", str(path))
    assert done.returncode == 2 and "ran sys.exit(0)" in done.stderr, done.stderr
    assert json.loads(path.read_text())["verdict"] == "usage error"
    (workdir / "exits_in_call.py").write_text("import sys\n\n\ndef grad(spec, params, X, Y):\n    sys.exit(0)\n")
    path.write_text('{"passed": true}')
    done = run(workdir, "exits_in_call.py:grad", "--max-examples", "3", "--seed", "0", "--json", str(path))
    assert done.returncode == 1 and "raised SystemExit" in done.stdout, done.stdout + done.stderr
    assert json.loads(path.read_text())["verdict"] == "crash"
