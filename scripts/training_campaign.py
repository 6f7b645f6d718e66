"""Training campaign: manual's optimizers against torch.optim on many random cases, none of which may
part beyond the derived trajectory bound (:mod:`torch_ref.training.trajectory`).

For each optimizer setting (SGD with momentum, dampening, Nesterov and weight decay; Adam; Adam with
L2; AdamW; other betas and eps) and each dtype, ``torch_ref.check_training`` runs
``manual.Trainer`` / ``manual.AdamTrainer`` with that setting against the same ``torch.optim``
optimizer on ``--cases`` random networks (plus the oracle's coverage cases), ``--steps`` steps each.
It prints, per setting, the examples checked, the cases not judged (torch's trajectory outside the
dtype's range at step 1, or an entry with no finite bound; never counted as passes), the largest
share of the bound used (of what each step adds to the bound, beyond the difference carried from
the step before) and the time, and exits 1 on any failure (with its report), a run where most cases
were not judged included.

    python scripts/training_campaign.py [--cases 300] [--steps 5] [--seed 0] [--json PATH] [--html PATH]

``--html PATH`` writes every setting's check on one standalone page (:func:`torch_ref.pages.write_html`):
a failing setting's trajectory, heat maps and diagnosis first, then what each passing one covered.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import time
from pathlib import Path

import torch

import manual
import torch_ref
from torch_ref.engine.record import summary_record
from torch_ref.pages import write_html

SETTINGS = {
    "sgd-momentum": ("sgd", dict(momentum=0.9)),
    "sgd-dampening": ("sgd", dict(momentum=0.9, dampening=0.3)),
    "sgd-nesterov-decay": ("sgd", dict(momentum=0.9, nesterov=True, weight_decay=0.01)),
    "sgd-decay": ("sgd", dict(weight_decay=0.1)),
    "adam": ("adam", dict()),
    "adam-l2": ("adam", dict(weight_decay=0.1)),
    "adamw": ("adamw", dict(weight_decay=0.1)),
    "adam-betas-eps": ("adam", dict(betas=(0.8, 0.99), eps=1e-6)),
}


def _pair(kind: str, options: dict) -> tuple:
    if kind == "sgd":
        return functools.partial(manual.Trainer, **options), functools.partial(torch.optim.SGD, **options)
    if kind == "adam":
        return functools.partial(manual.AdamTrainer, **options), functools.partial(torch.optim.Adam, **options)
    return (
        functools.partial(manual.AdamTrainer, decoupled=True, **options),
        functools.partial(torch.optim.AdamW, **options),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300, help="random cases per setting and dtype")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtypes", default="float64,float32", help="comma-separated (default both)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    parser.add_argument("--html", type=Path, help="write every setting's check on one HTML page")
    args = parser.parse_args(argv)
    rows, failed, records = [], 0, []
    start = time.perf_counter()
    for dtype in args.dtypes.split(","):
        for name, (kind, options) in SETTINGS.items():
            trainer, optimizer = _pair(kind, options)
            t = time.perf_counter()
            try:
                s = torch_ref.check_training(
                    trainer, optimizer=optimizer, steps=args.steps, max_examples=args.cases, seed=args.seed, dtype=dtype
                )
            except torch_ref.DerivationMismatch as exc:
                failed += 1
                print(f"{dtype} {name}: FAILED\n{exc}", flush=True)
                rows.append({"setting": name, "dtype": dtype, "passed": False})
                records.append({"title": f"{dtype} {name}", **exc.record})
                continue
            records.append({"title": f"{dtype} {name}", **summary_record(s)})
            row = {
                "setting": name,
                "dtype": dtype,
                "passed": True,
                "examples": s.examples,
                "not_judged": s.not_judged,
                "largest_share": round(s.worst_share, 4),
                "seconds": round(time.perf_counter() - t, 1),
            }
            rows.append(row)
            print(
                f"{dtype} {name}: {row['examples']} examples, {row['not_judged']} not judged, largest share of what "
                f"a step adds to the bound {row['largest_share']}, {row['seconds']} s",
                flush=True,
            )
    total = round(time.perf_counter() - start, 1)
    print(
        f"{len(rows) - failed} of {len(rows)} settings passed in {total} s ({platform.processor() or platform.machine()})"
    )
    if args.html:
        write_html(
            records, args.html, f"Training campaign: manual's optimizers against torch.optim ({args.cases} cases)"
        )
    if args.json:
        record = {
            "cases": args.cases,
            "steps": args.steps,
            "seed": args.seed,
            "seconds": total,
            "cpu": platform.processor() or platform.machine(),
            "rows": rows,
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
