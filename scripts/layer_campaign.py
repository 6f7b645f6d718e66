"""Layers campaigns: right backwards on many drawn cases (false alarms), and every published mistake on
cases of its regime (adversarial).

``false-alarms``: manual's backward of every built-in layer (:data:`manual.LAYERS`), and the right styles
of ``tests/layer_styles.py`` where that file exists, on ``--cases-per-layer`` cases per layer and dtype,
drawn by the built-in's own draw (``torch_ref.layers.table.infos()[name].draw``). Every case is judged
with :func:`torch_ref.layers.judge.judge`, the judge ``check_layer`` calls, so that every case is counted
(``check_layer`` stops at the first failure). A right backward must end as ``agree`` or ``not judged``;
a ``mismatch`` (or a crash) is a false alarm, printed with the Python that rebuilds its case.

``adversarial``: every mistake of the catalogue (``infos()[name].mistakes``) on ``--cases-per-mistake``
cases per dtype, confined to the mistake's regime (``draw(dtype).filter(lambda c: regime in
c.regimes)``). A wrong backward passing a case (``agree``) is ``ACCEPTED``; ``not judged`` is counted
apart (never a pass); everything else is caught.

Cases are drawn through Hypothesis: a ``@given`` function called directly, generate phase only, no
database, one seed per chunk of cases (from ``--seed``, the subject, the dtype and the chunk), so a run
is reproducible and the chunks are dealt to ``--workers`` processes. Exit status 1 on any false alarm,
any accepted mistake, or any subject that drew no case.

    python scripts/layer_campaign.py false-alarms [--cases-per-layer 3600] [--dtypes float64 float32] \
        [--workers 2] [--seed 0] [--layer NAME ...] [--json PATH]
    python scripts/layer_campaign.py adversarial [--cases-per-mistake 300] [--dtypes ...] [--workers 2] \
        [--seed 0] [--layer NAME ...] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

TESTS = Path(__file__).resolve().parents[1] / "tests"
DTYPES = ("float64", "float32")
CHUNK = 900  # cases per job: small enough for two workers to share the slow layers evenly
SAVED = 10  # failures kept with their case per (subject, dtype); all are counted
RIGHT = {"agree", "not judged"}  # what a right backward may end as


@dataclass(frozen=True)
class Subject:
    """One backward put to the campaign: which layer, under which label, where it comes from."""

    layer: str
    label: str  # "manual", a style's name, or a mistake's name
    source: str  # "manual", "style" or "mistake"
    index: int = 0  # the style's or the mistake's index
    regime: str | None = None  # the regime the cases are confined to (a mistake's)


def _styles() -> list[tuple[str, str, Callable[..., Any], dict[str, Any]]]:
    """The right styles of tests/layer_styles.py as ``(layer, label, backward, check_layer options)``;
    empty where the file is absent."""
    if not (TESTS / "layer_styles.py").exists():
        return []
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    module = importlib.import_module("layer_styles")
    entries: Any = getattr(module, "RIGHT_STYLES", None) or getattr(module, "STYLES", ())
    out = []
    for entry in entries.values() if isinstance(entries, Mapping) else entries:
        layer = getattr(entry, "layer", None)
        backward = getattr(entry, "backward", None)
        if not isinstance(layer, str) or not callable(backward):
            raise TypeError(f"tests/layer_styles.py: a style needs .layer (str) and .backward, got {entry!r}")
        options = dict(getattr(entry, "options", None) or {})
        if getattr(entry, "forward", None) is not None:
            options["forward"] = entry.forward
        out.append((layer, str(getattr(entry, "name", layer)), backward, options))
    return out


def subjects(mode: str, layers: list[str]) -> list[Subject]:
    """Every backward the mode puts to the campaign, for ``layers``."""
    import manual
    from torch_ref.layers.table import infos

    if mode == "adversarial":
        return [
            Subject(name, m.name, "mistake", i, m.regime)
            for name in layers
            for i, m in enumerate(infos()[name].mistakes)
        ]
    found = [Subject(name, "manual", "manual") for name in layers if name in manual.LAYERS]
    found += [Subject(layer, label, "style", i) for i, (layer, label, _, _) in enumerate(_styles()) if layer in layers]
    return found


def _setup(subject: Subject, dtype: np.dtype) -> Any:
    """The subject's check_layer setup in ``dtype``, as ``check_layer(backward, layer, **options)`` makes it."""
    import manual
    from torch_ref.layers.setup import resolve
    from torch_ref.layers.table import infos

    options: dict[str, Any] = {}
    forward: Any = subject.layer
    if subject.source == "manual":
        backward = manual.LAYERS[subject.layer].backward
    elif subject.source == "mistake":
        backward = infos()[subject.layer].mistakes[subject.index].backward
    else:
        _, _, backward, options = _styles()[subject.index]
        options = dict(options)
        forward = options.pop("forward", forward)
    return resolve(backward, forward, options, dtype)


@dataclass
class Tally:
    """How one subject's cases in one dtype ended."""

    layer: str
    label: str
    dtype: str
    regime: str | None = None
    cases: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    worst_share: float = 0.0  # the largest share of the bound used by a case that passed its comparison
    worst_case: str = ""
    regimes: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def merge(self, other: Tally) -> None:
        self.cases += other.cases
        for k, n in other.kinds.items():
            self.kinds[k] = self.kinds.get(k, 0) + n
        for k, n in other.regimes.items():
            self.regimes[k] = self.regimes.get(k, 0) + n
        if other.worst_share > self.worst_share:
            self.worst_share, self.worst_case = other.worst_share, other.worst_case
        self.failures += other.failures[: max(0, SAVED - len(self.failures))]
        self.seconds += other.seconds

    def count(self, *kinds: str) -> int:
        return sum(self.kinds.get(k, 0) for k in kinds)


def _failure(draw: Any, outcome: Any, chunk_seed: int) -> dict[str, Any]:
    return {
        "kind": outcome.kind,
        "case": repr(draw),
        "rebuild": draw.rebuild(),
        "dout_seed": draw.seed,
        "chunk_seed": chunk_seed,
        "detail": outcome.detail,
        "comparison": str(outcome.comparison) if outcome.comparison is not None else "",
    }


def run_job(job: tuple[str, Subject, str, int, int]) -> Tally:
    """``count`` cases of one subject in one dtype, drawn with Hypothesis under ``chunk_seed``."""
    mode, subject, dtype, chunk_seed, count = job
    import torch
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis import strategies as st
    from hypothesis.errors import Unsatisfiable

    from torch_ref.layers.judge import LayerDraw, judge

    torch.set_num_threads(1)
    np.seterr(all="ignore")
    setup = _setup(subject, np.dtype(dtype))
    strategy = setup.strategy
    if subject.regime is not None:
        regime = subject.regime
        strategy = strategy.filter(lambda c: regime in c.regimes)
    tally = Tally(subject.layer, subject.label, dtype, subject.regime)
    bad = (lambda kind: kind not in RIGHT) if mode == "false-alarms" else (lambda kind: kind == "agree")

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(chunk_seed)
    @given(st.builds(LayerDraw, strategy, st.integers(0, 2**32 - 1)))
    def campaign(draw: LayerDraw) -> None:
        tally.cases += 1
        for r in draw.case.regimes:
            tally.regimes[r] = tally.regimes.get(r, 0) + 1
        try:
            outcome = judge(setup, draw, "numpy", "cpu", dtype)
        except Exception as exc:  # the oracle could not judge the case (its reference failed): counted, shown
            tally.kinds["error"] = tally.kinds.get("error", 0) + 1
            if len(tally.failures) < SAVED:
                tally.failures.append(
                    {"kind": "error", "case": repr(draw), "rebuild": draw.rebuild(), "detail": repr(exc)}
                )
            return
        tally.kinds[outcome.kind] = tally.kinds.get(outcome.kind, 0) + 1
        if outcome.comparison is not None and outcome.kind in RIGHT:
            share = outcome.comparison.worst_share
            if share > tally.worst_share:
                tally.worst_share, tally.worst_case = share, repr(draw)
        if bad(outcome.kind) and len(tally.failures) < SAVED:
            tally.failures.append(_failure(draw, outcome, chunk_seed))

    start = time.perf_counter()
    try:
        campaign()
    except Unsatisfiable:  # the regime was never met: the subject drew no case (reported as such)
        pass
    tally.seconds = time.perf_counter() - start
    return tally


def _chunk_seed(seed: int, subject: Subject, dtype: str, chunk: int) -> int:
    """A seed per chunk, from the run's seed and what the chunk draws (stable across runs and orders)."""
    key = [seed, *subject.layer.encode(), *subject.label.encode(), DTYPES.index(dtype) if dtype in DTYPES else 9, chunk]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def campaign(mode: str, chosen: list[Subject], dtypes: list[str], cases: int, seed: int, workers: int) -> list[Tally]:
    """Every subject in every dtype, ``cases`` cases each, in chunks dealt to ``workers`` processes."""
    jobs = [
        (mode, s, d, _chunk_seed(seed, s, d, c), min(CHUNK, cases - start))
        for s in chosen
        for d in dtypes
        for c, start in enumerate(range(0, cases, CHUNK))
    ]
    totals = {(s, d): Tally(s.layer, s.label, d, s.regime) for s in chosen for d in dtypes}
    done = 0
    if workers == 1:
        results: Any = map(run_job, jobs)
        pool = None
    else:
        pool = Pool(workers, maxtasksperchild=20)
        results = pool.imap_unordered(run_job, jobs)
    try:
        for tally in results:
            key = next(k for k in totals if (k[0].layer, k[0].label, k[1]) == (tally.layer, tally.label, tally.dtype))
            totals[key].merge(tally)
            done += 1
            sys.stderr.write(f"\r{done}/{len(jobs)} chunks")
            sys.stderr.flush()
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    sys.stderr.write("\n")
    return list(totals.values())


def _regime_text(t: Tally) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(t.regimes.items(), key=lambda kv: (-kv[1], kv[0]))) or "-"


def report_false_alarms(tallies: list[Tally]) -> list[str]:
    lines = [
        f"{'layer':<30} {'backward':<10} {'dtype':<8} {'cases':>6} {'agree':>6} {'not judged':>10} "
        f"{'mismatch':>8} {'crash':>5} {'largest share':>13}"
    ]
    for t in tallies:
        crash = t.count("crash", "type", "shape", "error")
        lines.append(
            f"{t.layer:<30} {t.label:<10} {t.dtype:<8} {t.cases:>6} {t.count('agree'):>6} "
            f"{t.count('not judged'):>10} {t.count('mismatch'):>8} {crash:>5} {t.worst_share:>13.4g}"
        )
    lines.append("")
    lines.append("regimes met (cases):")
    lines += [f"  {t.layer} {t.dtype}: {_regime_text(t)}" for t in tallies if t.label == "manual"]
    return lines


def report_adversarial(tallies: list[Tally]) -> list[str]:
    lines = [
        f"{'layer':<29} {'mistake':<60} {'dtype':<8} {'cases':>5} {'caught':>6} {'not judged':>10} "
        f"{'ACCEPTED':>8}  caught as"
    ]
    for t in tallies:
        caught = {k: n for k, n in sorted(t.kinds.items()) if k not in ("agree", "not judged")}
        kinds = ", ".join(f"{k} {n}" for k, n in caught.items()) or "-"
        lines.append(
            f"{t.layer:<29} {t.label[:60]:<60} {t.dtype:<8} {t.cases:>5} {sum(caught.values()):>6} "
            f"{t.count('not judged'):>10} {t.count('agree'):>8}  {kinds}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    import manual

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("mode", choices=("false-alarms", "adversarial"))
    parser.add_argument("--cases-per-layer", type=int, default=3600, help="false-alarms: cases per layer and dtype")
    parser.add_argument("--cases-per-mistake", type=int, default=300, help="adversarial: cases per mistake and dtype")
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=DTYPES)
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument(
        "--seed", type=int, default=0, help="the run's seed; every chunk's Hypothesis seed derives from it"
    )
    parser.add_argument("--layer", nargs="*", default=None, help="only these built-in layers")
    parser.add_argument("--json", type=Path, default=None, help="write the counts and the failures here as JSON")
    args = parser.parse_args(argv)
    cases = args.cases_per_layer if args.mode == "false-alarms" else args.cases_per_mistake
    if cases < 1 or args.workers < 1:
        parser.error(f"cases and --workers must be >= 1, got {cases} and {args.workers}")
    known = list(manual.LAYERS)
    unknown = [n for n in args.layer or () if n not in known]
    if unknown:
        parser.error(f"unknown layer {unknown}; known: {', '.join(known)}")
    chosen = subjects(args.mode, args.layer or known)
    if args.mode == "false-alarms" and not (TESTS / "layer_styles.py").exists():
        print("tests/layer_styles.py is absent: manual's backwards only")
    start = time.perf_counter()
    tallies = campaign(args.mode, chosen, args.dtypes, cases, args.seed, args.workers)
    seconds = time.perf_counter() - start
    if args.mode == "false-alarms":
        lines = report_false_alarms(tallies)
        failed = [t for t in tallies if t.cases - t.count(*RIGHT)]
        total = sum(t.cases - t.count(*RIGHT) for t in tallies)
        summary = f"{sum(t.cases for t in tallies)} cases judged; {total} false alarms (mismatch or crash)"
    else:
        lines = report_adversarial(tallies)
        failed = [t for t in tallies if t.count("agree")]
        total = sum(t.count("agree") for t in tallies)
        caught = sum(t.cases - t.count("agree", "not judged") for t in tallies)
        summary = f"{sum(t.cases for t in tallies)} wrong backwards judged; {caught} caught, {total} accepted"
    empty = [f"{t.layer}/{t.label}/{t.dtype}" for t in tallies if t.cases == 0]
    short = [f"{t.layer}/{t.label}/{t.dtype} ({t.cases})" for t in tallies if 0 < t.cases < cases]
    lines += ["", f"{summary}; {seconds:.0f} s with {args.workers} workers"]
    if short:
        lines.append(f"fewer cases than asked (the regime is rare in the draw): {', '.join(short)}")
    if empty:
        lines.append(f"no case drawn: {', '.join(empty)}")
    for t in failed:
        for f in t.failures:
            lines += ["", f"{t.layer} / {t.label} / {t.dtype}: {f['kind']} on {f['case']}", f"  {f['rebuild']}"]
            lines += [f"  {line}" for line in (f.get("comparison") or f.get("detail", "")).splitlines()]
    print("\n".join(lines))
    if args.json is not None:
        record = {
            "mode": args.mode,
            "cases_per_subject_and_dtype": cases,
            "dtypes": args.dtypes,
            "seed": args.seed,
            "workers": args.workers,
            "seconds": round(seconds, 1),
            "styles": sorted({t.label for t in tallies if t.label != "manual"}) if args.mode == "false-alarms" else [],
            "failing": total,
            "subjects": [
                {
                    "layer": t.layer,
                    "backward": t.label,
                    "regime": t.regime,
                    "dtype": t.dtype,
                    "cases": t.cases,
                    "verdicts": dict(sorted(t.kinds.items())),
                    "largest_share_of_bound": t.worst_share,
                    "largest_share_case": t.worst_case,
                    "regimes_met": dict(sorted(t.regimes.items())),
                    "seconds_in_worker": round(t.seconds, 1),
                    "failures": t.failures,
                }
                for t in tallies
            ],
        }
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 1 if total or empty else 0


if __name__ == "__main__":
    sys.exit(main())
