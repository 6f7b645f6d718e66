"""What a passing check covered: one summary for every kind of check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SHARE_OF_STEP", "OracleSummary", "Summary"]

SHARE_OF_STEP = (
    "a training step's share is of what that step adds to the trajectory bound, beyond the difference carried "
    "from the step before"
)


@dataclass
class Summary:
    """What a passing check covered: the cases judged (``examples``), the networks, activations,
    losses and output/loss pairs met, bias, reductions and batch sizes, whether a square layer and an
    input exactly at a kink were met, the largest share of the tolerance used, the cases under a
    named numerical convention or agreeing only to rounding level (precision), the cases drawn but
    not judged (with their reasons), and the seconds taken. A kind adds its own coverage to
    ``extra`` (a data-parallel check: the shard splits met)."""

    kind: str = "gradients"
    dtype: str = "float64"
    device: str = "cpu"
    targets: str = "soft"
    examples: int = 0
    specs: set = field(default_factory=set)
    activations: set = field(default_factory=set)
    losses: set = field(default_factory=set)
    pairs: set = field(default_factory=set)
    bias: set = field(default_factory=set)
    reductions: set = field(default_factory=set)
    batch_sizes: set = field(default_factory=set)
    square: bool = False
    kink: bool = False
    saturation: bool = False  # a probability output saturated (the unstable verdict's criterion)
    worst_share: float = 0.0
    conventions: int = 0  # examples where a named numerical convention applied (torch_ref.numerics.tolerance)
    precision: int = 0  # examples that agree only to rounding level
    seconds: float = 0.0
    not_judged: int = 0  # cases with nothing compared, or an entry with no finite bound: never a pass
    not_judged_reasons: dict = field(default_factory=dict)  # reason -> count
    extra: dict = field(default_factory=dict)  # the kind's own coverage (name -> value)

    @property
    def networks(self) -> int:
        return len(self.specs)

    def add_not_judged(self, outcome: Any) -> None:
        self.not_judged += 1
        reason = _reason(outcome)
        self.not_judged_reasons[reason] = self.not_judged_reasons.get(reason, 0) + 1

    def add(self, outcome: Any) -> None:
        """An agreeing (or precision) outcome's case and comparison."""
        case, comparison = outcome.case, outcome.comparison
        spec = case.spec
        self.conventions += bool(comparison is not None and comparison.conventions)
        self.precision += outcome.kind == "precision"
        self.examples += 1
        self.specs.add(spec)
        self.activations.update(spec.names)
        self.losses.add(spec.loss.name)
        self.pairs.add((spec.activations[-1].name, spec.loss.name))
        self.bias.add(spec.bias)
        self.reductions.add(spec.reduction)
        self.batch_sizes.add(case.X.shape[0])
        self.square |= any(i == o for i, o in spec.shapes())
        self.kink |= _kink_met(outcome)
        self.saturation |= _saturation_met(outcome)
        if comparison is not None:
            self.worst_share = max(self.worst_share, comparison.worst_share)

    def to_html(self, path: Any = None, title: str | None = None) -> str:
        """What the passing run covered, as one standalone HTML page (:mod:`torch_ref.pages`); written
        to ``path`` too when given; returns the HTML."""
        from ..pages import to_html
        from .record import summary_record

        text = to_html(summary_record(self), title)
        if path is not None:
            from pathlib import Path

            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_dict(self) -> dict[str, Any]:
        """What was covered, as JSON-ready values; the same keys for every kind, then the kind's own."""
        return {
            "passed": True,
            "kind": self.kind,
            "examples": self.examples,
            "networks": self.networks,
            "dtype": self.dtype,
            "device": self.device,
            "seconds": round(self.seconds, 3),
            "activations": sorted(self.activations),
            "losses": sorted(self.losses),
            "output_loss_pairs": [f"{a}+{l}" for a, l in sorted(self.pairs)],
            "bias": sorted(self.bias),
            "reductions": sorted(self.reductions),
            "batch_sizes": [min(self.batch_sizes), max(self.batch_sizes)] if self.batch_sizes else [],
            "targets": self.targets,
            "square_layers": self.square,
            "kink_hit": self.kink,
            "saturation_hit": self.saturation,
            "largest_share_of_tolerance": self.worst_share,
            "conventions": self.conventions,
            "precision": self.precision,
            "not_judged": self.not_judged,
            "not_judged_reasons": dict(self.not_judged_reasons),
            **{k: _plain(v) for k, v in self.extra.items()},
        }

    def __str__(self) -> str:
        if self.kind in _NOT_NETWORKS:
            return _layers_str(self)
        pairs = ", ".join(f"{a}+{l}" for a, l in sorted(self.pairs))
        sizes = f"{min(self.batch_sizes)}-{max(self.batch_sizes)}" if self.batch_sizes else "none"
        return (
            f"{self.kind}: {self.examples} examples on {self.networks} networks ({self.dtype}, {self.device}) in "
            f"{self.seconds:.1f} s; activations {sorted(self.activations)}; output/loss pairs {pairs}; "
            + f"targets {self.targets}; "
            + f"bias {sorted(self.bias)}; reductions {sorted(self.reductions)}; batch sizes "
            f"{sizes}; square layers {self.square}; kink hit "
            f"{self.kink}; largest share of the tolerance used {self.worst_share:.3g}"
            + "".join(f"; {k.replace('_', ' ')} {_plain(v)}" for k, v in self.extra.items())
            + (f"; {self.conventions} examples under a named convention" if self.conventions else "")
            + (f"; {self.precision} agree only to rounding level" if self.precision else "")
            + (
                f"; {self.not_judged} not judged ("
                + "; ".join(f"{n}: {reason}" for reason, n in self.not_judged_reasons.items())
                + ")"
                if self.not_judged
                else ""
            )
            + (f" ({SHARE_OF_STEP})" if self.kind == "training" else "")
        )


_NOT_NETWORKS = (
    "layer",
    "function",
    "network",
    "network-training",
    "network-per-example",
    "network-data-parallel",
)  # kinds whose cases are not Specs


def _what(kind: str) -> str:
    return "architectures" if kind.startswith("network") else "distinct shapes"


def _layers_str(self: Summary) -> str:
    sizes = f"{min(self.batch_sizes)}-{max(self.batch_sizes)}" if self.batch_sizes else "none"
    return (
        f"{self.kind}: {self.examples} examples of {self.networks} {_what(self.kind)} ({self.dtype}, {self.device}) in "
        f"{self.seconds:.1f} s; {'batch sizes' if self.kind.startswith('network') else 'leading dim'} {sizes}; "
        f"largest share of the bound used {self.worst_share:.3g}"
        + "".join(f"; {k.replace('_', ' ')} {_plain(v)}" for k, v in self.extra.items())
        + (
            f"; {self.not_judged} not judged ("
            + "; ".join(f"{n}: {reason}" for reason, n in self.not_judged_reasons.items())
            + ")"
            if self.not_judged
            else ""
        )
    )


def _plain(value: Any) -> Any:
    """A kind's coverage value as JSON-ready data (a set as a sorted list)."""
    if isinstance(value, (set, frozenset)):
        return sorted(list(v) if isinstance(v, tuple) else v for v in value)
    return value


def _kink_met(outcome: Any) -> bool:
    """Whether an input of some layer lay exactly at a kink of its activation (where the outcome kept
    the forward pass)."""
    reference = getattr(outcome, "reference", None)
    I = getattr(reference, "I", None)
    if I is None:
        return False
    return any(bool(np.any(np.isin(i, entry.kinks))) for entry, i in zip(outcome.case.spec.activations, I))


def _saturation_met(outcome: Any) -> bool:
    """Whether a probability output saturated on the case: y*(1 - y*) <= sqrt of the dtype's epsilon,
    the criterion of :func:`torch_ref.first_order.unstable._saturated_examples` (where the outcome kept
    the forward pass and the loss's targets are probabilities)."""
    reference = getattr(outcome, "reference", None)
    O = getattr(reference, "O", None)
    case = outcome.case
    if not O or case.spec.loss.targets == "real":
        return False
    y = np.asarray(O[-1], dtype=np.float64)
    return bool(np.any(y * (1 - y) <= np.sqrt(np.finfo(case.X.dtype).eps)))


def _reason(outcome: Any) -> str:
    """A not-judged outcome's reason, without its case's numbers (so that like reasons count together)."""
    text = outcome.detail or "no reason given"
    if "leaves the range" in text:
        return "torch's float64 trajectory leaves the dtype's range at step 1, so no step could be compared"
    if "no finite trajectory bound" in text:
        return "some entries have no finite trajectory bound"
    return text


OracleSummary = Summary  # the name a passing check's result had before every kind shared it
