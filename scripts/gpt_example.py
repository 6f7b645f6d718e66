r"""The worked example: a tiny GPT-style model trained by manual's backprop and AdamW, its trajectory
checked step by step against autograd and ``torch.optim.AdamW`` on the model's torch twin.

The model: ``embedding(V, D)``, two pre-norm blocks ``[layer_norm, self_attention(D, H)] + x`` and
``[layer_norm, linear(D, 4D), gelu, linear(4D, D)] + x``, ``layer_norm``, ``linear(D, V)``, mean
cross-entropy over every token. The data: a toy language from ``numpy.random.default_rng(seed)``; each
sequence counts up by its own stride (1 or 2) modulo V, and each token is replaced by a random one with
probability 0.1; the targets are the next tokens (Y = X shifted by one).

For float64 and float32, from the same starting parameters (:func:`torch_ref.network_case`'s draw):

- manual: ``manual.network.NetworkTrainer(net, params, lr=lr, optimizer="adamw")``, ``--steps`` steps;
- torch: the twin's modules in the same dtype, ``torch.optim.AdamW`` (same lr, torch's defaults),
  ``F.cross_entropy`` and ``.backward()``;
- the oracle: :func:`torch_ref.networks.training.judge_training`, the judge ``torch_ref.check_training``
  runs for a network trainer, on this very batch: manual's parameters after every step against
  ``torch.optim.AdamW`` in float64, within the derived trajectory bound (the update rule run on bounds).

It prints one row per step (both losses, the largest relative distance of manual's parameters from
torch's in the same dtype, the largest share of the oracle's bound used) and the verdicts, and exits 1
unless both verdicts are "agree". The rounding model's trace dominates the time (about 5-10 s a step
at the default sizes on one CPU core; it grows steeply with the width D).

    python scripts/gpt_example.py [--steps 20] [--lr 0.01] [--seed 0] [--plot PATH] [--json PATH] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from manual.network import Network, Residual, embedding, layer_norm, linear, self_attention
from manual.network.trainer import NetworkTrainer
from torch_ref.networks.case import NetworkCase, network_case
from torch_ref.networks.training import NetworkTrainingOutcome, judge_training
from torch_ref.networks.twin import load, module, params_of

__all__ = ["SIZES", "gpt", "main", "run_dtype", "share_per_step", "toy_language"]

# The default sizes keep the oracle's rounding trace to seconds a step: it grows steeply with D
# (D = 16 took about a minute a step on one core, D = 8 several seconds).
SIZES = {"full": dict(V=16, T=8, N=8, D=8, H=2), "quick": dict(V=8, T=4, N=2, D=4, H=2)}
DTYPES = ("float64", "float32")


def gpt(V: int, D: int, H: int, *, blocks: int = 2) -> Network:
    """The GPT-style network: vocabulary ``V``, width ``D``, ``H`` heads, ``blocks`` pre-norm blocks."""
    for name, value in (("V", V), ("D", D), ("H", H), ("blocks", blocks)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if D % H:
        raise ValueError(f"H must divide D = {D}, got H = {H}")
    body: list[Any] = []
    for _ in range(blocks):
        body.append(Residual([layer_norm(D), self_attention(D, H)]))
        body.append(Residual([layer_norm(D), linear(D, 4 * D), "gelu", linear(4 * D, D)]))
    return Network([embedding(V, D), *body, layer_norm(D), linear(D, V)], "cross_entropy")


def toy_language(V: int, T: int, N: int, rng: np.random.Generator, *, noise: float = 0.1) -> tuple[np.ndarray, ...]:
    """``(X, Y)``, both ``(N, T)`` int64: sequences counting up by a stride of 1 or 2 modulo ``V``, each
    token replaced by a uniform one with probability ``noise``; ``Y[:, t] = X[:, t + 1]`` (next token)."""
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be in [0, 1], got {noise!r}")
    stride = rng.integers(1, 3, size=N)
    s = np.empty((N, T + 1), dtype=np.int64)
    s[:, 0] = rng.integers(0, V, size=N)
    for t in range(T):
        s[:, t + 1] = np.where(rng.random(N) < noise, rng.integers(0, V, size=N), (s[:, t] + stride) % V)
    return s[:, :T], s[:, 1:]


def _torch_run(
    net: Network, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray, steps: int, lr: float, dtype: str
) -> tuple[list[float], list[dict[str, np.ndarray]]]:
    """torch's own training: the twin in ``dtype``, ``torch.optim.AdamW``, ``F.cross_entropy``, ``.backward()``;
    the loss before every step and the parameters after every step (manual's layout, float64)."""
    mod = module(net, getattr(torch, dtype))
    load(net, mod, params)
    opt = torch.optim.AdamW(mod.parameters(), lr)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    losses, path = [], [{k: v.detach().double().numpy().copy() for k, v in params_of(net, mod).items()}]
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        logits = mod(Xt)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Yt.reshape(-1))
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        path.append({k: v.detach().double().numpy().copy() for k, v in params_of(net, mod).items()})
    return losses, path


def share_per_step(outcome: NetworkTrainingOutcome) -> list[float]:
    """Per step, the largest ``|W_k - V_k| / allowed_k`` over every entry (<= 1 within the bound)."""
    out = []
    for k in range(1, len(outcome.allowed) + 1):
        share = 0.0
        for n, W in outcome.user[k].items():
            diff, allowed = np.abs(W - outcome.torch_path[k][n]), outcome.allowed[k - 1][n]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(diff == 0, 0.0, diff / allowed)
            share = max(share, float(np.max(ratio)))
        out.append(share)
    return out


def _worst_entry(outcome: NetworkTrainingOutcome, k: int) -> tuple[float, float, str]:
    """At step k, the distance ``|W_k - V_k|``, the bound and the parameter of the entry whose share is
    largest."""
    best: tuple[float, float, float, str] = (0.0, 0.0, -1.0, "")
    for n, W in outcome.user[k].items():
        diff, allowed = np.abs(W - outcome.torch_path[k][n]).ravel(), outcome.allowed[k - 1][n].ravel()
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(diff == 0, 0.0, diff / allowed)
        i = int(np.argmax(ratio))
        if ratio[i] > best[2]:
            best = (float(diff[i]), float(allowed[i]), float(ratio[i]), n)
    return best[0], best[1], best[3]


def _relative_distance(A: dict[str, np.ndarray], B: dict[str, np.ndarray]) -> float:
    """max over parameters of ``max|A - B| / max|B|``."""
    return max(float(np.max(np.abs(A[n] - B[n]))) / max(float(np.max(np.abs(B[n]))), 1e-300) for n in B)


def run_dtype(
    net: Network,
    params64: dict[str, np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    steps: int,
    lr: float,
    dtype: str,
    make_trainer: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """manual's run (judged by the oracle) and torch's run in ``dtype``; the per-step figures and verdict.

    ``make_trainer(net, params, lr=lr)`` defaults to ``NetworkTrainer(..., optimizer="adamw")``; its
    ``.step`` must return the loss before the step (its losses are recorded for the plot)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    params = {k: v.astype(dtype) for k, v in params64.items()}
    factory = make_trainer or _adamw
    losses: list[float] = []

    class Recorder:
        """The trainer under test, its losses recorded (the oracle sees only its parameters)."""

        def __init__(self, n: Network, p: Any, *, lr: float) -> None:
            self.inner = factory(n, p, lr=lr)

        @property
        def params(self) -> Any:
            return self.inner.params

        def step(self, X: Any, Y: Any, **kw: Any) -> Any:
            value = self.inner.step(X, Y, **kw)
            losses.append(float(value))
            return value

    case = NetworkCase(net, params, X, Y, masks={}, shape=X.shape, seed=0)
    start = time.perf_counter()
    outcome = judge_training(
        Recorder,
        case,
        steps=steps,
        lr=lr,
        optimizer=lambda p, lr: torch.optim.AdamW(p, lr),
        arrays="numpy",
        device="cpu",
        dtype=dtype,
    )
    seconds = time.perf_counter() - start
    torch_losses, torch_path = _torch_run(net, params, X, Y, steps, lr, dtype)
    user = list(outcome.user)
    worst = [_worst_entry(outcome, k) for k in range(1, len(outcome.allowed) + 1)] if outcome.allowed else []
    return {
        "dtype": dtype,
        "verdict": outcome.kind,
        "parts_at_step": outcome.step if outcome.kind == "mismatch" else None,
        "detail": outcome.detail,
        "manual_loss": losses,
        "torch_loss": torch_losses,
        "rel_distance_same_dtype": [_relative_distance(user[k], torch_path[k]) for k in range(1, len(user))],
        "oracle_share": share_per_step(outcome) if outcome.allowed else [],
        "worst_distance": [w[0] for w in worst],
        "worst_bound": [w[1] for w in worst],
        "worst_parameter": [w[2] for w in worst],
        "oracle_seconds": seconds,
        "comparison": str(outcome.comparison) if outcome.comparison is not None else "",
    }


def _adamw(net: Network, params: Any, *, lr: float) -> NetworkTrainer:
    return NetworkTrainer(net, params, lr=lr, optimizer="adamw")


def _table(results: list[dict[str, Any]]) -> list[str]:
    head = "step " + " ".join(
        f"{'manual ' + r['dtype']:>16} {'torch ' + r['dtype']:>15} {'rel.dist':>9} {'share':>8}" for r in results
    )
    lines = [head]
    for k in range(len(results[0]["manual_loss"])):
        cells = []
        for r in results:
            share = r["oracle_share"][k] if k < len(r["oracle_share"]) else float("nan")
            cells.append(
                f"{r['manual_loss'][k]:16.10f} {r['torch_loss'][k]:15.10f} "
                f"{r['rel_distance_same_dtype'][k]:9.2e} {share:8.2e}"
            )
        lines.append(f"{k + 1:4d} " + " ".join(cells))
    return lines


def _plot(results: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # file output only
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {"float64": "tab:blue", "float32": "tab:orange"}
    for r in results:
        steps = np.arange(1, len(r["manual_loss"]) + 1)
        c = colours[r["dtype"]]
        left.plot(steps, r["manual_loss"], "o-", color=c, ms=4, label=f"manual AdamW ({r['dtype']})")
        left.plot(steps, r["torch_loss"], "x--", color="k" if r["dtype"] == "float64" else "tab:gray", ms=6,
                  label=f"torch.optim.AdamW ({r['dtype']})")  # fmt: skip
        k = np.arange(1, len(r["worst_distance"]) + 1)
        right.semilogy(k, np.maximum(r["worst_distance"], 1e-300), "o-", color=c, ms=4,
                       label=f"|manual - torch| ({r['dtype']})")  # fmt: skip
        right.semilogy(k, r["worst_bound"], "--", color=c, label=f"derived bound ({r['dtype']})")
    left.set(xlabel="step", ylabel="cross-entropy before the step (mean over tokens)", title="loss")
    right.set(xlabel="step", ylabel="|W - V| at the entry using most of its bound",
              title="manual vs torch.optim.AdamW (float64), and the bound")  # fmt: skip
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps (default 20)")
    parser.add_argument("--lr", type=float, default=0.01, help="AdamW's learning rate (default 0.01)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the starting parameters")
    parser.add_argument("--plot", type=Path, help="write the loss and distance plot (PNG) here")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, no plot (the test's run)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if not 0 < args.lr < float("inf"):
        parser.error(f"--lr must be a positive number, got {args.lr}")
    threads = torch.get_num_threads()
    # The rounding trace is thousands of small tensor ops: one thread ran it ~10x faster than the
    # default on a shared 2-core machine (restored afterwards, for a caller such as pytest).
    torch.set_num_threads(1)
    try:
        return _main(args)
    finally:
        torch.set_num_threads(threads)


def _main(args: argparse.Namespace) -> int:
    sizes = SIZES["quick" if args.quick else "full"]
    V, T, N, D, H = (sizes[k] for k in "VTNDH")
    net = gpt(V, D, H)
    X, Y = toy_language(V, T, N, np.random.default_rng(args.seed))
    params64 = dict(network_case(net, (N, T), args.seed, "float64").params)
    print(f"{net}\nX {X.shape}, V={V} T={T} N={N} D={D} H={H}, {sum(v.size for v in params64.values())} parameters,"
          f" AdamW lr={args.lr}, {args.steps} steps, seed {args.seed}", flush=True)  # fmt: skip
    results = [run_dtype(net, params64, X, Y, steps=args.steps, lr=args.lr, dtype=d) for d in DTYPES]
    print("\n".join(_table(results)))
    for r in results:
        where = f" (parts at step {r['parts_at_step']})" if r["parts_at_step"] else ""
        print(f"{r['dtype']}: oracle verdict {r['verdict']}{where}; largest share of the bound "
              f"{max(r['oracle_share'], default=float('nan')):.3g}; oracle {r['oracle_seconds']:.1f} s")  # fmt: skip
        if r["verdict"] != "agree":
            print(r["detail"] or r["comparison"])
    ok = all(r["verdict"] == "agree" for r in results)
    meta = {"sizes": sizes, "steps": args.steps, "lr": args.lr, "seed": args.seed, "python": platform.python_version(),
            "torch": torch.__version__, "machine": platform.machine(), "passed": ok}  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps({**meta, "results": results}, indent=1) + "\n")
    if args.plot is not None and not args.quick:
        title = f"tiny GPT (V={V}, D={D}, H={H}, 2 blocks) on the toy language, N={N}, T={T}, AdamW lr={args.lr}"
        _plot(results, args.plot, title)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
