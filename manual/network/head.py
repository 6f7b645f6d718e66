r"""A network's loss head: the objective from the last node's output, and the δ it sends down.

- ``"cross_entropy"``: the last node gives logits ``(..., C)``, the targets are class indices
  ``(...)``; :math:`E = \sum_t -\log \mathrm{softmax}(z_t)_{y_t}` over every position t (a token of a
  sequence counts as an example), divided by their number for ``"mean"`` (torch's ``F.cross_entropy``).
  :math:`\delta_z = \mathrm{softmax}(z) - \mathrm{onehot}(y)`, over the count for ``"mean"``.
- a :class:`manual.Loss` (``"squared"``, ``"bce"``, ``"ce"``, ``"huber"``): the last output
  :math:`y^*` ``(N, J)`` against targets ``(N, J)``, :math:`E = \sum_n L`, over N for ``"mean"``.
  When the last node is an activation the δ at its input is the slides' output delta
  (:func:`manual.backward.head_delta`: :math:`y^* - y` for a canonical pair), so that node's backward
  is not run; else :math:`\delta = \partial L / \partial y^*`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._xp import Array, namespace
from ..backward import head_delta
from ..layers.softmax import softmax_cross_entropy, softmax_cross_entropy_backward
from ..loss import Loss
from ..registry import LOSSES
from ..registry import loss as resolve_loss

__all__ = ["CROSS_ENTROPY", "Head"]

CROSS_ENTROPY = "cross_entropy"


@dataclass(frozen=True)
class Head:
    """The loss (``"cross_entropy"`` or a :class:`manual.Loss`) and the reduction."""

    loss: str | Loss
    reduction: str = "mean"

    @staticmethod
    def of(loss: Any, reduction: Any) -> Head:
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        if loss == CROSS_ENTROPY:
            return Head(CROSS_ENTROPY, reduction)
        try:
            return Head(resolve_loss(loss), reduction)
        except (TypeError, ValueError):
            raise ValueError(
                f"loss must be 'cross_entropy' (logits against class indices) or a manual.Loss or its name "
                f"({', '.join(LOSSES)}), got {loss!r}"
            ) from None

    @property
    def name(self) -> str:
        return self.loss if isinstance(self.loss, str) else self.loss.name

    def _entry(self) -> Loss:
        if isinstance(self.loss, str):
            raise TypeError(f"the head's loss {self.loss!r} is not a manual.Loss")
        return self.loss

    def check_targets(self, out_shape: tuple[int, ...], Y: Array) -> None:
        if self.loss == CROSS_ENTROPY:
            if tuple(Y.shape) != tuple(out_shape[:-1]) or "int" not in str(Y.dtype):
                raise ValueError(
                    f"cross_entropy: Y must be integer class indices of shape {tuple(out_shape[:-1])} (the logits' "
                    f"{tuple(out_shape)} without the class axis), got {Y.dtype} of shape {tuple(Y.shape)}"
                )
        elif tuple(Y.shape) != tuple(out_shape):
            raise ValueError(f"{self.name}: Y must have the output's shape {tuple(out_shape)}, got {tuple(Y.shape)}")

    def value(self, out: Array, Y: Array, I: Array | None, activation: Any) -> Array:
        """The objective E (a 0-d array). ``I`` and ``activation``: the last node's input and entry when
        it is an activation (a loss evaluated from the logits where its entry says so)."""
        xp = namespace(out, Y)
        if self.loss == CROSS_ENTROPY:
            return softmax_cross_entropy(_rows(out, xp), xp.reshape(Y, (-1,)), reduction=self.reduction)
        loss = self._entry()
        from_logits = loss.from_logits.get(activation.name) if activation is not None else None
        per = from_logits(I, Y, xp) if from_logits is not None else loss.value(out, Y, xp)
        total = xp.sum(per)
        return total / Y.shape[0] if self.reduction == "mean" else total

    def delta(self, out: Array, Y: Array, I: Array | None, activation: Any) -> tuple[Array, bool]:
        """(δ, through): δ at the last node's output (``through`` True), or at its input when the last
        node is an activation the loss's output delta covers (``through`` False)."""
        xp = namespace(out, Y)
        if self.loss == CROSS_ENTROPY:
            one = xp.asarray(1.0, dtype=out.dtype, device=getattr(out, "device", None))
            rows = softmax_cross_entropy_backward(one, _rows(out, xp), xp.reshape(Y, (-1,)), reduction=self.reduction)
            return xp.reshape(rows["x"], out.shape), True
        if activation is not None:
            return head_delta(activation, self._entry(), self.reduction, I, out, Y), False
        delta = self._entry().gradient(out, Y, xp)
        return (delta / Y.shape[0] if self.reduction == "mean" else delta), True


def _rows(a: Array, xp: Any) -> Array:
    return a if a.ndim == 2 else xp.reshape(a, (-1, a.shape[-1]))
