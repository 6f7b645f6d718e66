"""The wheel holds every subpackage: a non-editable install can run the slide check."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_every_subpackage(tmp_path):
    # built from a clean copy: a build/ folder left by an earlier build would hide a missing package
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis", ".pytest_cache", "benchmarks", "tests"
        ),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("backprop_crosscheck-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("manual", "manual/slides", "torch_ref", "torch_ref/slides"):
        local = {str(p.relative_to(ROOT)) for p in (ROOT / package).glob("*.py")}
        assert local and local <= names, f"{package}: missing {sorted(local - names)}"
