"""Cross-check manual (hand-derived deltas) against torch_ref (autograd) on random networks.

Prints one line per case: the network, N, dtype, and for the gradients, the deltas and one SGD step
the share of the derived tolerance used (<= 1 passes). Exit status 1 if any case fails.

    python scripts/crosscheck.py [--cases 24] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import manual
import torch_ref
from manual import Spec
from torch_ref.frontends.crosscheck import crosscheck_deltas, crosscheck_gradients, crosscheck_update
from torch_ref.strategies import data_for, params_for, random_spec


def _relative_error(spec: Spec, params, X, Y) -> float:
    """max over arrays of max|manual - autograd| / max|autograd| (0 where the gradient is all 0)."""
    ours, theirs = manual.gradients(spec, params, X, Y), torch_ref.gradients(spec, params, X, Y)
    worst = 0.0
    for (_, a), (_, e) in zip(ours.arrays(), theirs.arrays()):
        scale = float(np.abs(e).max())
        if scale > 0:
            worst = max(worst, float(np.abs(a.astype(np.float64) - e).max()) / scale)
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=24, help="number of random networks (default 24)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the numpy Generator (default 0)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"{'network':<52} {'N':>2} {'dtype':<8} {'grads':>8} {'deltas':>8} {'sgd':>8}  result")
    failures = 0
    worst_share, worst_rel = 0.0, {"float32": 0.0, "float64": 0.0}
    for _ in range(args.cases):
        spec = random_spec(rng)
        dtype = np.float64 if rng.integers(2) else np.float32
        N = int(rng.integers(1, 9))
        params = params_for(spec, rng, dtype=dtype)
        X, Y = data_for(spec, N, rng, dtype=dtype)
        checks = [
            crosscheck_gradients(spec, params, X, Y),
            crosscheck_deltas(spec, params, X, Y),
            crosscheck_update(spec, params, X, Y, 0.1),
        ]
        ok = all(c.ok for c in checks)
        worst_share = max(worst_share, *(c.worst_share for c in checks))
        dt = np.dtype(dtype).name
        worst_rel[dt] = max(worst_rel[dt], _relative_error(spec, params, X, Y))
        failures += not ok
        shares = " ".join(f"{c.worst_share:8.2g}" for c in checks)
        print(f"{spec!s:<52} {N:>2} {np.dtype(dtype).name:<8} {shares}  {'ok' if ok else 'MISMATCH'}")
        for c in checks:
            if not c.ok:
                print(c)
    print(
        f"\n{args.cases - failures} of {args.cases} cases agree (columns: share of the derived tolerance used, <= 1 passes)"
    )
    print(f"largest share of the tolerance used: {worst_share:.3g}")
    print(
        "largest relative gradient error, |manual - autograd| / max|autograd| per array: "
        + ", ".join(f"{k} {v:.2g}" for k, v in worst_rel.items())
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
