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
import hashlib
import importlib
import json
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

TESTS = Path(__file__).resolve().parents[1] / "tests"
DTYPES = ("float64", "float32")
CHUNK = 900  # cases per job: small enough for two workers to share the slow layers evenly
SAVED = 10  # failures of each kind kept with their case per (subject, dtype); all are counted
RIGHT = {"agree", "not judged"}  # what a right backward may end as


@dataclass(frozen=True)
class Subject:
    """One backward put to the campaign: which layer, under which label, where it comes from."""

    layer: str
    label: str  # "manual", a style's name, or a mistake's name
    source: str  # "manual", "style" or "mistake"
    index: int = 0  # the style's or the mistake's index
    regime: str | None = None  # the regime the cases are confined to (a mistake's)


@dataclass(frozen=True)
class Style:
    """A right backward of tests/layer_styles.py and the options its test checks it with."""

    layer: str  # the built-in it implements (for --layer), or what it is
    label: str
    check: str  # "layer" (check_layer) or "function" (check_function)
    backward: Any  # the backward (check_layer) or the autograd.Function (check_function)
    options: dict[str, Any]


def _style_table() -> list[Style]:
    """The right styles of tests/layer_styles.py with the options tests/test_layer_styles.py gives
    them (its RIGHT list, mirrored here since its entries are closures over check_layer); empty where
    the file is absent."""
    if not (TESTS / "layer_styles.py").exists():
        return []
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    S = importlib.import_module("layer_styles")
    nd = {"x": "N D", "gamma": "D", "beta": "D"}
    bn = {
        "forward": S.batchnorm_forward,
        "reference": S.batchnorm_reference,
        "convention": "cache",
        "shapes": nd,
        "dims": {"N": (2, 6), "D": (1, 5)},  # torch's batch norm refuses N = 1 in training
        "constants": {"bn_param": S.BN_PARAM},
    }
    ln = {"forward": S.layernorm, "reference": "layer_norm", "names": {"gamma": "weight", "beta": "bias"}}
    ln_shapes = {
        "forward": S.layernorm,
        "reference": S.layer_norm_reference,
        "shapes": nd,
        "dims": {"N": (1, 5), "D": (1, 6)},
    }
    affine = {
        "forward": S.affine_forward,
        "reference": S.affine_reference,
        "convention": "cache",
        "shapes": {"x": "N H W", "w": "D M", "b": "M"},
        "dims": {"N": (1, 5), "H": 2, "W": 3, "D": 6, "M": (1, 5)},
    }
    silu = {"shapes": {"x": "N D"}, "dims": {"N": (1, 4), "D": (1, 5)}}
    ln_fn = {
        "shapes": {"x": "N D", "weight": "D", "bias": "D"},
        "dims": {"N": (1, 4), "D": (1, 5)},
        "constants": {"eps": 1e-5},
    }
    return [
        Style("batch_norm", "style: cache, staged", "layer", S.batchnorm_backward, bn),
        Style("batch_norm", "style: cache, one line", "layer", S.batchnorm_backward_alt, bn),
        Style("layer_norm", "style: names, built-in", "layer", S.layernorm_backward, ln),
        Style("layer_norm", "style: shapes, reference", "layer", S.layernorm_backward, ln_shapes),
        Style("softmax", "style: s(g - Σ g s)", "layer", S.softmax_backward, {"forward": "softmax"}),
        Style("softmax", "style: Jacobian", "layer", S.softmax_backward_jacobian, {"forward": "softmax"}),
        Style("linear", "style: affine, cache", "layer", S.affine_backward, affine),
        Style("silu", "style: Function, fd", "function", S.SiLU, silu),
        Style("silu", "style: Function, ref", "function", S.SiLU, {**silu, "reference": S.silu_reference}),
        Style("layer_norm", "style: Function, fd", "function", S.LayerNormFunction, ln_fn),
        Style(
            "layer_norm",
            "style: Function, ref",
            "function",
            S.LayerNormFunction,
            {**ln_fn, "reference": S.layer_norm_function_reference},
        ),
    ]


def subjects(mode: str, layers: list[str] | None) -> list[Subject]:
    """Every backward the mode puts to the campaign, for ``layers`` (None: every one)."""
    import manual
    from torch_ref.layers.table import infos

    names = list(manual.LAYERS) if layers is None else layers
    if mode == "adversarial":
        return [
            Subject(name, m.name, "mistake", i, m.regime)
            for name in names
            for i, m in enumerate(infos()[name].mistakes)
        ]
    found = [Subject(name, "manual", "manual") for name in names]
    found += [
        Subject(s.layer, s.label, "style", i)
        for i, s in enumerate(_style_table())
        if layers is None or s.layer in layers
    ]
    return found


def _setup(subject: Subject, dtype: np.dtype) -> tuple[Any, str]:
    """The subject's setup in ``dtype``, as its check makes it, and the arrays its code gets."""
    import manual
    from torch_ref.layers.function import function_setup
    from torch_ref.layers.setup import resolve
    from torch_ref.layers.table import infos

    if subject.source == "manual":
        return resolve(manual.LAYERS[subject.layer].backward, subject.layer, {}, dtype), "numpy"
    if subject.source == "mistake":
        return resolve(infos()[subject.layer].mistakes[subject.index].backward, subject.layer, {}, dtype), "numpy"
    style = _style_table()[subject.index]
    options = dict(style.options)
    if style.check == "function":  # check_function hands a Function torch tensors
        return function_setup(style.backward, options, dtype), "torch"
    return resolve(style.backward, options.pop("forward"), options, dtype), "numpy"


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
        for f in other.failures:
            self.keep(f)
        self.seconds += other.seconds

    def keep(self, failure: dict[str, Any]) -> None:
        """Save ``failure`` unless SAVED of its kind are saved already."""
        if sum(f["kind"] == failure["kind"] for f in self.failures) < SAVED:
            self.failures.append(failure)

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


def run_job(job: tuple[str, Subject, str, int, int]) -> tuple[Subject, str, Tally]:
    """``count`` cases of one subject in one dtype, drawn with Hypothesis under ``chunk_seed``."""
    mode, subject, dtype, chunk_seed, count = job
    import torch
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis import strategies as st
    from hypothesis.errors import Unsatisfiable

    from torch_ref.layers.judge import LayerDraw, judge

    torch.set_num_threads(1)
    np.seterr(all="ignore")
    tally = Tally(subject.layer, subject.label, dtype, subject.regime)
    try:
        setup, arrays = _setup(subject, np.dtype(dtype))
    except Exception as exc:  # the subject cannot be set up (counted as no case drawn, its reason kept)
        tally.keep({"kind": "setup", "case": "", "rebuild": "", "detail": repr(exc)})
        return subject, dtype, tally
    strategy = setup.strategy
    if subject.regime is not None:
        regime = subject.regime
        strategy = strategy.filter(lambda c: regime in c.regimes)
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
    def cases(draw: LayerDraw) -> None:
        tally.cases += 1
        for r in draw.case.regimes:
            tally.regimes[r] = tally.regimes.get(r, 0) + 1
        try:
            outcome = judge(setup, draw, arrays, "cpu", dtype)
        except Exception as exc:  # the oracle could not judge the case (its reference failed): counted, shown
            tally.kinds["error"] = tally.kinds.get("error", 0) + 1
            tally.keep({"kind": "error", "case": repr(draw), "rebuild": draw.rebuild(), "detail": repr(exc)})
            return
        tally.kinds[outcome.kind] = tally.kinds.get(outcome.kind, 0) + 1
        if outcome.comparison is not None and outcome.kind in RIGHT:
            share = outcome.comparison.worst_share
            if share > tally.worst_share:
                tally.worst_share, tally.worst_case = share, repr(draw)
        if bad(outcome.kind):
            tally.keep(_failure(draw, outcome, chunk_seed))

    start = time.perf_counter()
    try:
        cases()
    except Unsatisfiable:  # the regime was never met: the subject drew no case (reported as such)
        pass
    tally.seconds = time.perf_counter() - start
    return subject, dtype, tally


def _chunk_seed(seed: int, subject: Subject, dtype: str, chunk: int) -> int:
    """A seed per chunk, from the run's seed and what the chunk draws (stable across runs and orders)."""
    key = [seed, *subject.layer.encode(), *subject.label.encode(), DTYPES.index(dtype), chunk]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def campaign(mode: str, asked: Mapping[Subject, int], dtypes: list[str], seed: int, workers: int) -> list[Tally]:
    """Every subject in every dtype, ``asked[subject]`` cases each, in chunks dealt to ``workers`` processes."""
    jobs = [
        (mode, s, d, _chunk_seed(seed, s, d, c), min(CHUNK, n - start))
        for s, n in asked.items()
        for d in dtypes
        for c, start in enumerate(range(0, n, CHUNK))
    ]
    totals = {(s, d): Tally(s.layer, s.label, d, s.regime) for s in asked for d in dtypes}
    pool = Pool(workers, maxtasksperchild=20) if workers > 1 else None
    results = map(run_job, jobs) if pool is None else pool.imap_unordered(run_job, jobs)
    try:
        for done, (subject, dtype, tally) in enumerate(results, 1):
            totals[subject, dtype].merge(tally)
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
        f"{'layer':<28} {'backward':<24} {'dtype':<8} {'cases':>6} {'agree':>6} {'not judged':>10} "
        f"{'mismatch':>8} {'crash':>5} {'largest share':>13}"
    ]
    for t in tallies:
        crash = t.count("crash", "type", "shape", "error")
        lines.append(
            f"{t.layer:<28} {t.label:<24} {t.dtype:<8} {t.cases:>6} {t.count('agree'):>6} "
            f"{t.count('not judged'):>10} {t.count('mismatch'):>8} {crash:>5} {t.worst_share:>13.4g}"
        )
    lines.append("")
    lines.append("regimes met (cases):")
    lines += [f"  {t.layer} ({t.label}) {t.dtype}: {_regime_text(t)}" for t in tallies if t.regimes]
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


def _provenance() -> dict[str, Any]:
    """The code the run judged with: the commit, the files changed since, and a hash of that change
    (the oracle is code under work; a figure means something only with the state that gave it)."""
    root = TESTS.parent

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return ""

    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    return {
        "commit": git("rev-parse", "HEAD").strip(),
        "changed_files": changed,
        "diff_sha256": hashlib.sha256(git("diff", "HEAD").encode()).hexdigest() if changed else "",
    }


def main(argv: list[str] | None = None) -> int:
    import manual
    import torch_ref.layers.function
    import torch_ref.layers.judge
    import torch_ref.layers.setup  # noqa: F401
    from torch_ref.layers.table import infos

    infos()  # every module imported before the workers fork: the whole run judges with one state of the code

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("mode", choices=("false-alarms", "adversarial"))
    parser.add_argument("--cases-per-layer", type=int, default=3600, help="false-alarms: cases per layer and dtype")
    parser.add_argument(
        "--cases-per-style",
        type=int,
        default=None,
        help="false-alarms: cases per right style and dtype (default: per layer)",
    )
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
    per_style = cases if args.cases_per_style is None else args.cases_per_style
    if min(cases, per_style, args.workers) < 1:
        parser.error(f"cases and --workers must be >= 1, got {cases}, {per_style} and {args.workers}")
    known = list(manual.LAYERS)
    unknown = [n for n in args.layer or () if n not in known]
    if unknown:
        parser.error(f"unknown layer {unknown}; known: {', '.join(known)}")
    asked = {s: per_style if s.source == "style" else cases for s in subjects(args.mode, args.layer or None)}
    if args.mode == "false-alarms" and not (TESTS / "layer_styles.py").exists():
        print("tests/layer_styles.py is absent: manual's backwards only")
    provenance = _provenance()
    start = time.perf_counter()
    tallies = campaign(args.mode, asked, args.dtypes, args.seed, args.workers)
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
    empty = [
        f"{t.layer}/{t.label}/{t.dtype}" + "".join(f" ({f['detail']})" for f in t.failures if f["kind"] == "setup")
        for t in tallies
        if t.cases == 0
    ]
    wanted = {(s.layer, s.label): n for s, n in asked.items()}
    short = [f"{t.layer}/{t.label}/{t.dtype} ({t.cases})" for t in tallies if 0 < t.cases < wanted[t.layer, t.label]]
    lines += ["", f"{summary}; {seconds:.0f} s with {args.workers} workers"]
    state = f"commit {provenance['commit'][:12]}"
    if provenance["changed_files"]:
        state += (
            f" + changes to {len(provenance['changed_files'])} files (diff sha256 {provenance['diff_sha256'][:12]})"
        )
    lines.append(f"code: {state}")
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
            "cases_per_style_and_dtype": per_style if args.mode == "false-alarms" else None,
            "dtypes": args.dtypes,
            "seed": args.seed,
            "workers": args.workers,
            "seconds": round(seconds, 1),
            **provenance,
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
