"""The examples of README.md and docs/*.md run as part of the test suite (sybil parses the pages).

- ```python blocks run in one namespace per page, in order; a block that starts with ``>>>`` is a
  doctest whose printed output is compared (``...`` matches anything: times, run-dependent numbers).
- A ```python block whose first line is ``# file: NAME`` is not run: it is written to the page's
  own temporary folder as NAME, for the ```console blocks that follow to use.
- A ```console block holds ``$ command`` lines, each followed by the output it must print (stdout
  and stderr together, compared as a doctest's, ``...`` included); each command runs in bash in the
  page's temporary folder, with this interpreter's ``python`` first on PATH.
- Blocks of any other language (```bash for campaigns and benchmarks that take minutes, ```text for
  measured output) are shown, never run.

Each page is one test item, so that its examples run in order in one process also under
``pytest -n`` (xdist hands items to workers one by one, and a page's later examples need its earlier
ones' names).
"""

from __future__ import annotations

import doctest
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sybil import Example, Sybil
from sybil.example import SybilFailure
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser

ROOT = Path(__file__).parent
PAGES = ("README.md", "docs/*.md")
OPTIONS = doctest.ELLIPSIS
FILE_MARK = "# file: "
WORKDIR = "__docs_workdir__"  # the page's temporary folder, in the page's namespace
COMMAND_TIMEOUT_S = 300


def _workdir(example: Example) -> Path:
    return example.namespace[WORKDIR]


def _write_file(example: Example) -> None:
    """A ```python block headed ``# file: NAME``: written to the page's folder, not run."""
    text = str(example.parsed)
    name = text.splitlines()[0].removeprefix(FILE_MARK).strip()
    (_workdir(example) / name).write_text(text)


class _PythonBlocks(PythonCodeBlockParser):
    """sybil's Python blocks and doctests, except that a block headed ``# file: NAME`` is a file."""

    def __call__(self, document: Any) -> Iterator[Any]:
        for region in super().__call__(document):
            if isinstance(region.parsed, str) and region.parsed.startswith(FILE_MARK):
                region.evaluator = _write_file
            yield region


def _commands(text: str) -> Iterator[tuple[str, str]]:
    """(command, expected output) for each ``$ `` line of a console block."""
    command, want = None, []
    for line in text.splitlines():
        if line.startswith("$ "):
            if command is not None:
                yield command, "".join(want)
            command, want = line[2:], []
        elif command is None:
            raise ValueError(f"a console block must start with a '$ ' command line, got {line!r}")
        else:
            want.append(line + "\n")
    if command is not None:
        yield command, "".join(want)


def _run_console(example: Example) -> str | None:
    """Runs each command of a ```console block; the first whose output differs is the failure."""
    # a user's shell: none of the variables pytest-xdist sets in its workers (a pytest run inside one
    # would take itself for an xdist worker, and pytest-benchmark would say so on its first line)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    checker = doctest.OutputChecker()
    for command, want in _commands(str(example.parsed)):
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=_workdir(example),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
        if not checker.check_output(want, done.stdout, OPTIONS):
            return f"$ {command}\n" + checker.output_difference(doctest.Example(command, want), done.stdout, OPTIONS)
    return None


SYBIL = Sybil(
    parsers=[_PythonBlocks(doctest_optionflags=OPTIONS), CodeBlockParser("console", _run_console)],
    patterns=list(PAGES),
    path=str(ROOT),
)


class _Page(pytest.Item):
    """Every example of one page, run in order in one namespace."""

    def runtest(self) -> None:
        document = SYBIL.parse(self.path)
        with tempfile.TemporaryDirectory(prefix="docs-") as workdir:
            document.namespace[WORKDIR] = Path(workdir)
            for example in document.examples():
                example.evaluate()

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """An output that differs: the example's place and the difference, without sybil's frames."""
        if isinstance(excinfo.value, SybilFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"the examples of {self.path.relative_to(ROOT)}"


class _PageFile(pytest.File):
    """A page; one item if it has examples to run (a page of prose and measured tables has none)."""

    def collect(self) -> Iterator[_Page]:
        if any(True for _ in SYBIL.parse(self.path).examples()):
            yield _Page.from_parent(self, name="examples")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> _PageFile | None:
    if SYBIL.should_parse(file_path):
        return _PageFile.from_parent(parent, path=file_path)
    return None
