"""The one-screen report of a failing oracle check."""

from __future__ import annotations

from dataclasses import dataclass

from manual import Params, Spec

from ._convert import as_numpy64
from ._oracle_options import Options
from .compare import Comparison
from .diagnose import blame, diagnose
from .strategies import Case


@dataclass
class Failure:
    case: Case
    kind: str  # "mismatch", "crash", "shape", "type"
    comparison: Comparison | None = None
    detail: str = ""
    actual: Params | None = None  # float64, the derivation's gradients (or implied gradients)
    expected: Params | None = None


def _spec_code(spec: Spec) -> str:
    return (f"manual.Spec({spec.sizes}, {spec.activations}, {spec.loss!r}, bias={spec.bias}, "
            f"reduction={spec.reduction!r})")


def render_failure(f: Failure, opt: Options, update: bool, fn_name: str) -> str:
    case, spec = f.case, f.case.spec
    N = case.X.shape[0]
    what = "step_fn" if update else "grad_fn"
    name = fn_name if fn_name.isidentifier() else what
    lines = [f"{what} {name!r} disagrees with autograd"
             + (" (torch.optim.SGD)" if update else "") + ".",
             f"Minimal case: {spec}, N={N}, dtype={opt.dtype}, device={opt.device}"
             + (f", lr={case.lr}" if update else "")]
    if f.kind in ("crash", "type"):
        lines.append(f"  {f.detail}")
    else:
        lines.append(str(f.comparison))
        bad_layers = sorted({int(r.name[1:]) for r in f.comparison.rows if not r.ok}, reverse=True)
        if bad_layers:
            l = bad_layers[0]
            k = spec.depth - l + 1
            nth = f"{k}{'st' if k == 1 else 'nd' if k == 2 else 'rd' if k == 3 else 'th'}"
            lines.append(f"Parts from autograd at layer {l} of {spec.depth} "
                         f"({'the output layer' if k == 1 else f'the {nth} counting from the output'})")
        p64 = case.params.map(as_numpy64)
        X64, Y64 = as_numpy64(case.X), as_numpy64(case.Y)
        patterns = diagnose(spec, p64, X64, Y64, f.actual, f.expected) if f.actual is not None else []
        lines.append("Diagnosis: " + ("; ".join(patterns) if patterns else "no known pattern fits"))
        row = f.comparison.first_mismatch()
        if f.kind == "mismatch" and row is not None and row.worst:
            derived = dict(f.actual.arrays())[row.name][row.worst]
            reference = dict(f.expected.arrays())[row.name][row.worst]
            lines.append("Blame: " + blame(spec, p64, X64, Y64, row.name, row.worst, float(derived), float(reference)))
    call = (f"{name}(case.spec, case.params, case.X, case.Y, case.lr)" if update
            else f"{name}(case.spec, case.params, case.X, case.Y)")
    check = "crosscheck_update" if update else "crosscheck_gradients"
    lines += ["Reproduce:",
              "    import manual, numpy as np",
              f"    from torch_ref.crosscheck import {check}",
              "    from torch_ref.strategies import case_from",
              f"    case = case_from({_spec_code(spec)}, N={N}, seed={case.seed}, grid={case.grid}, "
              f"gain={case.gain}, lr={case.lr}, dtype=np.{opt.dtype}"
              + (", kink=True)" if case.kink else ")"),
              f"    print({check}(case.spec, case.params, case.X, case.Y{', case.lr' if update else ''}, {call}))"
              if f.kind not in ("crash", "type") else f"    {call}"]
    return "\n".join(lines)


