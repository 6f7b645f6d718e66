"""manual_numpy timed in a process of its own, so that the timing process never calls NumPy's BLAS.

The parent starts ``python numpy_worker.py CASE DTYPE BLOCK_S``; the child builds the same case
(same seed, so the same weights and batch as the parent), calibrates its block and answers each line
``run`` on stdin with the seconds per call of one block on stdout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


class NumpyWorker:
    """The child process; :attr:`block` is a :data:`rounds.Block` that runs one block there."""

    def __init__(self, spec_case: str | object, N: int | None = None, dtype: str = "float64", block_s: float = 0.05):
        name = spec_case if isinstance(spec_case, str) else _case_name(spec_case, N)
        self._proc = subprocess.Popen(
            [sys.executable, str(HERE / "numpy_worker.py"), name, dtype, str(block_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        line = self._proc.stdout.readline() if self._proc.stdout else ""
        if line.strip() != "ready":
            self.close()
            raise RuntimeError(f"numpy_worker for {name} {dtype} did not start (said {line!r})")

    def block(self) -> float:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write("run\n")
        self._proc.stdin.flush()
        return float(self._proc.stdout.readline())

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)


def _case_name(spec: object, N: int | None) -> str:
    from train_step import CASES

    return next(c.name for c in CASES if c.spec == spec and c.N == N)


def _serve(name: str, dtype: str, block_s: float) -> None:
    import numpy as np
    from impls import BUILDERS
    from rounds import block
    from train_step import CASES

    from torch_ref.strategies import data_for, params_for

    case = next(c for c in CASES if c.name == name)
    rng = np.random.default_rng(0)
    params = params_for(case.spec, rng, dtype=np.dtype(dtype))
    X, Y = data_for(case.spec, case.N, rng, dtype=np.dtype(dtype))
    run = block(BUILDERS["manual_numpy"](case.spec, params, X, Y, 0.01, "cpu"), block_s=block_s)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "run":
            print(repr(run()), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    _serve(sys.argv[1], sys.argv[2], float(sys.argv[3]))
