"""The oracle's side of the lookup family (embedding, dropout): torch twins, draws, published mistakes."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from manual._xp import device, namespace

from ..case import LayerCase
from ..info import LayerInfo, Mistake

__all__ = ["INFOS_HERE"]

MAX_DIM = 6


# ------------------------------------------------------------------------------------------ embedding


def _embedding_twin(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return F.embedding(x, weight)


def _draw_embedding(dtype: Any) -> st.SearchStrategy[LayerCase]:
    dtype = np.dtype(dtype)

    @st.composite
    def cases(draw: st.DrawFn) -> LayerCase:
        N = draw(st.integers(1, MAX_DIM))
        T = draw(st.integers(1, 4)) if draw(st.booleans()) else None
        V = draw(st.integers(1, 8))
        E = draw(st.integers(1, 5))
        spread = draw(st.sampled_from(("any", "repeated", "distinct")))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        shape = (N,) if T is None else (N, T)
        M = int(np.prod(shape))
        if spread == "distinct" and M <= V:
            idx = rng.permutation(V)[:M]
        else:
            idx = rng.integers(0, V, M)
            if spread == "repeated" and M >= 2:
                idx[-1] = idx[0]
        x = idx.astype(np.int64).reshape(shape)
        weight = rng.uniform(-3, 3, (V, E)).astype(dtype)
        regimes = ("repeated indices",) if len(np.unique(x)) < x.size else ()
        dims = {"N": N, "V": V, "E": E} | ({} if T is None else {"T": T})
        return LayerCase(x, {"weight": weight}, regimes=regimes, dims=dims)

    return cases()


def _embedding_last_write_wins(dout: Any, x: Any, weight: Any) -> dict[str, Any]:
    # what `dW[x] += dout` gives in NumPy (a buffered fancy-index update: one write per row, the last
    # occurrence's), written portably: keep the one-hot row of each index's last occurrence only
    xp = namespace(dout, x, weight)
    V, E = weight.shape
    idx = xp.reshape(x, (-1,))
    M = idx.shape[0]
    pos = xp.arange(M, device=device(idx))
    later_same = (xp.expand_dims(idx, 0) == xp.expand_dims(idx, 1)) & (xp.expand_dims(pos, 0) > xp.expand_dims(pos, 1))
    last = xp.astype(~xp.any(later_same, axis=1), weight.dtype)
    H = xp.astype(xp.expand_dims(idx, 1) == xp.arange(V, dtype=idx.dtype, device=device(idx)), weight.dtype)
    return {"x": None, "weight": (H * xp.expand_dims(last, 1)).T @ xp.reshape(dout, (M, E))}


EMBEDDING_MISTAKES = (
    Mistake(
        "repeated indices lost (last write wins)",
        _embedding_last_write_wins,
        source="autograd pull request 136, https://github.com/HIPS/autograd/pull/136 (a[idx] += b for np.add.at: repeated "
        "indices counted once; autograd had switched to add.at for that reason)",
        formula="δ_W[v] = δ[m_last(v)] (for Σ_{m: x[m] = v} δ[m]), as dW[x] += dout in NumPy",
        regime="repeated indices",
    ),
)


# ------------------------------------------------------------------------------------------ dropout


def _dropout_twin(x: torch.Tensor, mask: torch.Tensor, *, p: float = 0.5) -> torch.Tensor:
    # torch's own formula with the given mask: aten's native_dropout returns (output, mask) with
    # output = input * mask * float(1 / (1 - p)) (its decomposition in torch/_decomp/decompositions.py;
    # bit-for-bit the CPU kernel's output for the mask it returns); F.dropout draws a mask of its own
    return x * mask * float(1.0 / (1.0 - p))


def _draw_dropout(dtype: Any) -> st.SearchStrategy[LayerCase]:
    dtype = np.dtype(dtype)

    @st.composite
    def cases(draw: st.DrawFn) -> LayerCase:
        N = draw(st.integers(1, MAX_DIM))
        D = draw(st.integers(1, MAX_DIM))
        p = draw(st.integers(0, 18)) / 20  # 0, 0.05, ..., 0.9
        masks = draw(st.sampled_from(("random", "all dropped", "none dropped", "zero inputs")))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        x = rng.uniform(-3, 3, (N, D))
        if masks == "all dropped":
            mask = np.zeros((N, D), dtype=bool)
        elif masks == "none dropped":
            mask = np.ones((N, D), dtype=bool)
        else:
            mask = rng.random((N, D)) >= p
        if masks == "zero inputs" and N * D >= 2:
            flat = mask.reshape(-1)
            flat[0], flat[-1] = True, False  # one kept and one dropped entry, each with x = 0
            x.reshape(-1)[[0, -1]] = 0.0
        x = x.astype(dtype)
        return LayerCase(x, {"mask": mask}, {"p": p}, regimes=_dropout_regimes(x, mask, p), dims={"N": N, "D": D})

    return cases()


def _dropout_regimes(x: np.ndarray, mask: np.ndarray, p: float) -> tuple[str, ...]:
    found = []
    if not mask.any():
        found.append("all dropped")
    if mask.all():
        found.append("none dropped")
    if not mask.all():
        found.append("some dropped")
    if p == 0:
        found.append("p=0")
    if p > 0 and mask.any():  # the scale 1 / (1 - p) is not 1 on some kept entry
        found.append("p>0, some kept")
    if ((x == 0) & mask).any() and ((x == 0) & ~mask).any():
        found.append("zero inputs")
    return tuple(found)


def _dropout_unscaled(dout: Any, x: Any, mask: Any, *, p: float = 0.5) -> dict[str, Any]:
    xp = namespace(dout, x, mask)
    return {"x": dout * xp.astype(mask, dout.dtype), "mask": None}


def _dropout_unmasked(dout: Any, x: Any, mask: Any, *, p: float = 0.5) -> dict[str, Any]:
    return {"x": dout * (1.0 / (1.0 - p)), "mask": None}


def _dropout_mask_from_output(dout: Any, x: Any, mask: Any, *, p: float = 0.5) -> dict[str, Any]:
    # the mask recovered as out != 0 instead of kept: a kept entry whose input is 0 loses its δ
    xp = namespace(dout, x, mask)
    kept = (x * xp.astype(mask, x.dtype)) != 0
    return {"x": dout * xp.astype(kept, dout.dtype) * (1.0 / (1.0 - p)), "mask": None}


DROPOUT_MISTAKES = (
    Mistake(
        "1/(1-p) missing in the backward",
        _dropout_unscaled,
        formula="δ_x = δ ⊙ m (for δ ⊙ m / (1 - p))",
        regime="p>0, some kept",
    ),
    Mistake(
        "mask not applied in the backward",
        _dropout_unmasked,
        formula="δ_x = δ / (1 - p) (for δ ⊙ m / (1 - p))",
        source="ai-engineering-from-scratch pull request 17, https://github.com/rohitg00/ai-engineering-from-scratch/pull/17 "
        "(a review: the backprop ignores the dropout mask)",
        regime="some dropped",
    ),
    Mistake(
        "mask recovered from the output",
        _dropout_mask_from_output,
        formula="δ_x = δ ⊙ [x ⊙ m ≠ 0] / (1 - p) (for δ ⊙ m / (1 - p)): wrong where a kept x is 0",
        source="Kaldi issue 3890, https://github.com/kaldi-asr/kaldi/issues/3890 (the dropout backward compares output "
        "and input instead of keeping the mask)",
        regime="zero inputs",
    ),
)

INFOS_HERE = (
    LayerInfo(
        "embedding",
        _embedding_twin,
        _draw_embedding,
        regimes=("repeated indices",),
        mistakes=EMBEDDING_MISTAKES,
        convention=("indices are not differentiated; a row looked up k times gets the sum of its k δ rows",),
    ),
    LayerInfo(
        "dropout",
        _dropout_twin,
        _draw_dropout,
        regimes=("all dropped", "none dropped", "some dropped", "p=0", "p>0, some kept", "zero inputs"),
        mistakes=DROPOUT_MISTAKES,
        convention=(
            "the mask is given (True = kept), not drawn: the twin is native_dropout's formula with it",
            "the mask is not differentiated; p = 1 is refused (1 / (1 - p) is infinite)",
        ),
    ),
)
