"""pytest plugin (entry point ``pytest11``): the ``derivation_oracle`` fixture and its options.

    def test_my_backprop(derivation_oracle):
        derivation_oracle.check_derivation(my_grad_fn, activations=("sigmoid",), losses=("bce",))
        derivation_oracle.check("hvp", my_hvp, hidden_activations=("tanh",))  # any kind, by name

Options: ``--oracle-device`` (default cpu), ``--oracle-dtype`` (float64 or float32),
``--oracle-examples`` (default 100), ``--oracle-seed N``, ``--oracle-report PATH`` (the JSON of every
check in the run), ``--oracle-html PATH`` (every check of the run on one standalone HTML page, failures
first: :mod:`torch_ref.pages`). Keyword arguments given in the test win over the options.

The seed: without ``--oracle-seed``, every check of a run draws from one seed, chosen afresh for
each run and shown in pytest's header ("oracle seed: 1234 (drawn for this run; --oracle-seed 1234
repeats it)"), so a red run can be repeated; under CI (as Hypothesis detects it), or where the
Hypothesis profile derandomizes (as this project's own suite does), the seed is 0, so that a red
CI run is a red local run. Bad values are usage errors at start-up
(torch is imported then only to check a device other than the CPU); otherwise torch_ref (and torch)
is imported only when a test asks for the fixture. A failing check shows its report, not the
oracle's frames. Every check's outcome (what a passing one covered) is listed in pytest's terminal
summary, also under pytest-xdist (the records travel as the test's ``user_properties``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

_KEY = "backprop_oracle"
_RECORDS = pytest.StashKey[list]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("backprop-crosscheck", "derivation oracle (torch_ref.check_derivation)")
    group.addoption("--oracle-device", default="cpu", help="device the derivation receives tensors on (default cpu)")
    group.addoption(
        "--oracle-dtype",
        default="float64",
        choices=("float64", "float32"),
        help="dtype of the drawn networks (default float64)",
    )
    group.addoption("--oracle-examples", type=int, default=100, help="random networks per check (default 100)")
    group.addoption(
        "--oracle-seed",
        type=int,
        default=None,
        help="seed of every check's draw (default: 0 under CI, else drawn afresh and shown in the header)",
    )
    group.addoption("--oracle-report", type=Path, default=None, help="write the JSON of every check in the run to PATH")
    group.addoption(
        "--oracle-html",
        type=Path,
        default=None,
        help="write every check of the run to PATH as one standalone HTML page, failures first",
    )


_SEED = pytest.StashKey[tuple[int, str]]()


def _fixed() -> str | None:
    """Why every run must draw the same networks, or None: under CI (as Hypothesis detects it), or
    where the Hypothesis profile in force derandomizes (this project's own "ci" profile does)."""
    from hypothesis import settings

    try:
        from hypothesis._settings import is_in_ci
    except ImportError:  # a Hypothesis without it: the variable every CI service sets
        import os

        def is_in_ci() -> bool:
            return os.environ.get("CI", "").lower() not in ("", "0", "false")

    if is_in_ci():
        return "CI: every run draws the same networks; --oracle-seed N draws others"
    if settings.default is not None and settings.default.derandomize:
        return "the Hypothesis profile derandomizes: every run draws the same networks; --oracle-seed N draws others"
    return None


def _seed(config: pytest.Config) -> tuple[int, str]:
    """(the seed, how it was chosen); an xdist worker takes the controller's, so that one run draws
    from one seed whichever worker runs a test."""
    given = config.getoption("--oracle-seed")
    if given is not None:
        return given, "--oracle-seed"
    worker = getattr(config, "workerinput", None)
    if worker is not None and "oracle_seed" in worker:
        seed, how = worker["oracle_seed"]
        return int(seed), str(how)
    why = _fixed()
    if why is not None:
        return 0, why
    import secrets

    seed = secrets.randbelow(2**32)
    return seed, f"drawn for this run; --oracle-seed {seed} repeats it"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: each worker gets the controller's seed."""
    node.workerinput["oracle_seed"] = list(node.config.stash[_SEED])


def pytest_report_header(config: pytest.Config) -> str:
    seed, how = config.stash[_SEED]
    return f"oracle seed: {seed} ({how})"


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SEED] = _seed(config)
    for option in ("--oracle-report", "--oracle-html"):
        report = config.getoption(option)
        if report is not None and (report.is_dir() or not report.parent.is_dir()):
            raise pytest.UsageError(f"{option} {report}: not a file path in an existing folder")
    config.stash[_RECORDS] = []
    config.pluginmanager.register(_Collector(config.stash[_RECORDS]), "backprop-oracle-collector")
    examples = config.getoption("--oracle-examples")
    if examples < 1:
        raise pytest.UsageError(f"--oracle-examples must be >= 1, got {examples}")
    device = config.getoption("--oracle-device")
    if device != "cpu":
        import torch

        try:
            torch.empty(0, device=device)
        except (RuntimeError, AssertionError, ValueError) as exc:
            raise pytest.UsageError(f"--oracle-device {device!r} is not available here: {exc}") from None


class Oracle:
    """Every kind of check (:mod:`torch_ref.kinds`) with the command line's defaults: ``check(kind, fn,
    **options)``, or the kind's own name (``check_derivation``, ``check_hvp``, ``check_data_parallel``,
    ...). Each outcome is recorded for the terminal summary and ``--oracle-report``."""

    def __init__(self, device: str, dtype: str, examples: int, node: Any = None, seed: int | None = None) -> None:
        self.defaults = {"device": device, "dtype": dtype, "max_examples": examples, "seed": seed}
        self.node = node

    def check(self, kind: str, fn: Callable, *args: Any, **options: Any) -> Any:
        """Run the check of ``kind`` on ``fn`` (and the check's own positional arguments: a layer's
        forward); the options given here win over the command line's."""
        __tracebackhide__ = True
        import torch_ref
        from torch_ref.engine.record import summary_record
        from torch_ref.kinds import entry

        fixed = entry(kind).fixed  # a kind that takes one value of an option (data-parallel: the CPU)
        defaults = {k: v for k, v in self.defaults.items() if k not in fixed}
        try:
            summary = getattr(torch_ref, entry(kind).check)(fn, *args, **{**defaults, **options})
        except torch_ref.DerivationMismatch as exc:
            self._record(exc.record)
            raise
        self._record(summary_record(summary))
        return summary

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """``check_derivation``, ``check_hvp``, ...: the check of the kind whose public function has that name."""
        if name.startswith("check_"):
            from torch_ref.kinds import entry, names

            for kind in names():
                if entry(kind).check == name:
                    return partial(self.check, kind)
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        from torch_ref.kinds import entry, names

        return sorted({*super().__dir__(), *(entry(k).check for k in names())})

    def _record(self, record: dict[str, Any]) -> None:
        if self.node is not None:
            self.node.user_properties.append((_KEY, json.loads(json.dumps(record))))


@pytest.fixture
def derivation_oracle(request: pytest.FixtureRequest) -> Oracle:
    """The derivation oracle, configured by ``--oracle-device``, ``--oracle-dtype``, ``--oracle-examples``
    and ``--oracle-seed`` (see the module docstring for the seed without it)."""
    config = request.config
    return Oracle(
        config.getoption("--oracle-device"),
        config.getoption("--oracle-dtype"),
        config.getoption("--oracle-examples"),
        request.node,
        config.stash[_SEED][0],
    )


class _Collector:
    """Collects the records of every finished test (run here, or sent over by an xdist worker)."""

    def __init__(self, records: list) -> None:
        self.records = records

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for key, record in report.user_properties:
            if key == _KEY and isinstance(record, dict):
                self.records.append({"test": report.nodeid, **record})


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    records = config.stash.get(_RECORDS, [])
    if not records:
        return
    terminalreporter.section("derivation oracle")
    for r in records:
        if r["passed"]:
            terminalreporter.write_line(f"{r['test']}: check passed; {r['report']}")
        else:
            case = r.get("case")  # a run that judged too little has none
            where = f" on {case['spec']}, N={case['N']}" if case else ""
            parts = [f"{r['test']}: check failed ({r['kind']}: {r['verdict']}){where}"]
            parts += [r["parts"]] if r.get("parts") else []
            parts += [f"Diagnosis: {d}" for d in r.get("diagnosis", ())]  # a run that judged too little has none
            terminalreporter.write_line("; ".join(parts))
    for option, what in (("--oracle-report", "oracle report"), ("--oracle-html", "oracle HTML report")):
        path = config.getoption(option)
        if path is not None:
            terminalreporter.write_line(f"{what}: {path}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput"):  # written once, by the controller
        return
    records = config.stash.get(_RECORDS, [])
    path = config.getoption("--oracle-report")
    if path is not None:
        Path(path).write_text(json.dumps(records, indent=2) + "\n")
    html = config.getoption("--oracle-html")
    if html is not None:
        from torch_ref.pages import write_html

        write_html(records, html, f"Derivation checks of a pytest run ({len(records)})")
