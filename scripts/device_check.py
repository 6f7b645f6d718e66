"""The oracle on an accelerator: what ``--oracle-device cuda`` (or ``device=...``) gives a user.

Checks, on the device named (default ``cuda``): the right derivation ``manual.gradients`` and the
update rule ``manual.sgd_step`` pass, given torch tensors there, in float64 and float32; a wrong
one is caught and its Reproduce lines run as printed; a NumPy-only derivation handed tensors on the
device is told so; ``manual.Trainer`` on device tensors that require grad records no graph and takes
torch.optim.SGD's step. Prints one line per check and the device's name; exit status 1 if any fails.

    python scripts/device_check.py [--device cuda] [--examples 50]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time

import numpy as np
import torch

import manual
from torch_ref import DerivationMismatch, assert_agree, check_derivation, check_update
from torch_ref.frontends.crosscheck import crosscheck_update
from torch_ref.strategies import case_from


def doubled(spec, params, X, Y):
    """A wrong derivation: every gradient twice autograd's."""
    return manual.gradients(spec, params, X, Y).map(lambda a: 2 * a)


def numpy_only(spec, params, X, Y):
    """A NumPy derivation: a device tensor has no astype."""
    X = X.astype(np.float64)
    return manual.gradients(spec, params, X, Y)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--examples", type=int, default=50)
    args = parser.parse_args(argv)
    device, n = args.device, args.examples
    name = torch.cuda.get_device_name() if device.startswith("cuda") else device
    print(f"device {device}: {name}; torch {torch.__version__}")
    failures = 0

    def check(label: str, run) -> None:
        nonlocal failures
        start = time.perf_counter()
        try:
            detail = run()
            print(f"ok    {label} ({time.perf_counter() - start:.1f} s){': ' + detail if detail else ''}")
        except Exception as exc:
            failures += 1
            print(f"FAIL  {label}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")

    for dtype in ("float64", "float32"):
        check(
            f"manual.gradients passes on {device}, {dtype}",
            lambda dtype=dtype: str(
                check_derivation(manual.gradients, arrays="torch", device=device, dtype=dtype, max_examples=n, seed=0)
            ),
        )
        check(
            f"manual.sgd_step passes on {device}, {dtype}",
            lambda dtype=dtype: (
                str(
                    check_update(
                        manual.sgd_step, arrays="torch", device=device, dtype=dtype, max_examples=n, seed=0
                    ).examples
                )
                + " examples"
            ),
        )

    def wrong_is_caught() -> str:
        try:
            check_derivation(doubled, arrays="torch", device=device, max_examples=n, seed=0)
        except DerivationMismatch as exc:
            # the lines after the "Reproduce (...):" heading, unindented
            code = str(exc).split("\nReproduce", 1)[1].split("\n", 1)[1].replace("\n    ", "\n").strip()
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(code, {"doubled": doubled})
            assert out.getvalue().startswith("grad_fn disagrees with autograd"), out.getvalue()
            assert f"arrays='torch', device='{device}'" in code, code
            return str(exc).splitlines()[1] + "; Reproduce lines rerun: " + out.getvalue().splitlines()[0][:40]
        raise AssertionError("a doubled gradient passed")

    check("a wrong derivation is caught and its Reproduce lines run", wrong_is_caught)

    def numpy_told() -> str:
        try:
            check_derivation(numpy_only, arrays="torch", device=device, max_examples=5, seed=0)
        except DerivationMismatch as exc:
            line = next(line for line in str(exc).splitlines() if "was given torch tensors" in line)
            return line.strip()
        raise AssertionError("a NumPy derivation passed on device tensors")

    check("a NumPy derivation given device tensors is told so", numpy_told)

    def trainer() -> str:
        spec = manual.Spec((5, 8, 3), ("tanh", "softmax"), "ce", bias=True)
        case = case_from(spec, N=6, seed=0)
        params = case.params.map(lambda a: torch.from_numpy(a).to(device).requires_grad_(True))
        t = manual.Trainer(spec, params, lr=0.1)
        t.step(torch.from_numpy(case.X).to(device), torch.from_numpy(case.Y).to(device))
        assert all(a.grad_fn is None and not a.requires_grad for _, a in t.params.arrays())
        assert_agree(crosscheck_update(spec, case.params, case.X, case.Y, 0.1, updated=t.params))
        return "no graph; the step agrees with torch.optim.SGD"

    check("manual.Trainer on device tensors that require grad", trainer)
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
