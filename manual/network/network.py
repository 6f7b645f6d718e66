r"""A network of layers and its backward by the slides' δ recursion (slide "Going backward....").

Each node receives :math:`\delta_{out}` from the node above and returns :math:`\delta_{in}` for the
node below, with its parameters' gradients; a :class:`Residual` adds the δ that went through its
body to the δ that went past it. The recursion starts from the loss head's δ
(:mod:`manual.network.head`) and runs every node's hand-derived backward in reverse order; no
autograd anywhere.

Parameters live in one flat dict named as torch's ``state_dict`` of the same ``nn.Sequential``:
``"<index>.<name>"``, nested indices for a residual's body (``"2.1.qkv_weight"``), in forward order.
Weights keep the slides' ``(in, out)`` layout (``I = u W``); the torch twin transposes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._xp import Array, namespace
from ..loss import Loss
from ..params import Params
from ..spec import Spec
from .entries import activation, entry, linear
from .head import Head
from .node import Node
from .residual import Residual

__all__ = ["Network", "NetworkForward"]


@dataclass(frozen=True)
class NetworkForward:
    """One forward pass: each node's input by path, the dropout masks used, the output and the objective."""

    inputs: dict[str, Array]  # each node's input by path; the backward drops each once it has used it
    masks: Mapping[str, Array]
    out: Array
    last_input: Array


class Network:
    """A sequence of nodes (and :class:`Residual` blocks) and a loss head.

    Args:
        layers: entries in forward order: nodes (``manual.network.linear(784, 128)``, ``conv2d(...)``,
            ``layer_norm(...)``, ``self_attention(...)``, ...), activation names (``"relu"``,
            ``"gelu"``), ``"flatten"``, and :class:`Residual` blocks of such entries.
        loss: ``"cross_entropy"`` (logits against integer class indices, every position of a sequence
            an example) or a :class:`manual.Loss` or its name (``"squared"``, ``"bce"``, ``"ce"``,
            ``"huber"``) on the last output ``(N, J)``.
        reduction: ``"mean"`` (over the examples, or the positions for cross-entropy) or ``"sum"``.

    Example:
        >>> import numpy as np
        >>> from manual.network import Network, linear
        >>> net = Network([linear(2, 3), "tanh", linear(3, 2)], "cross_entropy")
        >>> p = net.init(np.random.default_rng(0))
        >>> sorted(net.gradients(p, np.ones((4, 2)), np.zeros(4, dtype=np.int64)))
        ['0.bias', '0.weight', '2.bias', '2.weight']
    """

    def __init__(self, layers: Sequence[Any], loss: str | Loss = "cross_entropy", *, reduction: str = "mean") -> None:
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
            raise TypeError(f"layers must be a sequence of network entries, got {layers!r}")
        self.layers: tuple[Node | Residual, ...] = tuple(
            e if isinstance(e, Residual) else entry(e, f"layers[{k}]") for k, e in enumerate(layers)
        )
        if not self.layers:
            raise ValueError("layers is empty: a network needs at least one entry")
        self.head = Head.of(loss, reduction)

    @property
    def reduction(self) -> str:
        return self.head.reduction

    @property
    def loss(self) -> str | Loss:
        return self.head.loss

    # -- structure -------------------------------------------------------------------------------

    def nodes(self) -> Iterator[tuple[str, Node]]:
        """Every node with its path (``"3"``, ``"2.1"``), in forward order."""
        yield from _walk(self.layers, "")

    def blocks(self) -> Iterator[tuple[str, Residual]]:
        """Every residual block with its path, in forward order."""
        yield from _residuals(self.layers, "")

    def parameters(self) -> dict[str, tuple[int, ...]]:
        """Each trained parameter's name (``"0.weight"``) and shape, in forward order."""
        return {f"{path}.{k}": shape for path, node in self.nodes() for k, shape in node.shapes.items()}

    def where(self, name: str) -> str:
        """How a report names the place of a parameter or a node path: ``"block 2 (residual at layers[2])
        > layers[2][1] self_attention 8/2h"``."""
        path = name.rsplit(".", 1)[0] if name not in dict(self.nodes()) else name
        nodes = dict(self.nodes())
        node = nodes.get(path)
        parts = path.split(".")
        index = "layers" + "".join(f"[{p}]" for p in parts)
        label = f"{index} {node.label}" if node is not None else index
        if len(parts) > 1:
            block = _block_number(self, parts[0])
            return f"block {block} (the residual at layers[{parts[0]}]) > {label}"
        return label

    # -- values ----------------------------------------------------------------------------------

    def init(self, rng: np.random.Generator, *, dtype: Any = np.float64) -> dict[str, np.ndarray]:
        """Every parameter drawn by its node's rule (torch's modules' defaults), as NumPy arrays."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return {
            f"{path}.{k}": np.asarray(node.init[k](rng, shape), dtype=dtype)
            for path, node in self.nodes()
            for k, shape in node.shapes.items()
        }

    def check_params(self, params: Mapping[str, Array]) -> None:
        """``ValueError`` unless ``params`` has exactly this network's names and shapes."""
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict of arrays by name, got {type(params).__name__}")
        want = self.parameters()
        missing, extra = sorted(set(want) - set(params)), sorted(set(params) - set(want))
        if missing or extra:
            raise ValueError(f"params: missing {missing}, unknown {extra} (this network's: {list(want)})")
        for k, shape in want.items():
            if tuple(params[k].shape) != shape:
                raise ValueError(f"params[{k!r}] must have shape {shape}, got {tuple(params[k].shape)}")

    def forward(
        self,
        params: Mapping[str, Array],
        X: Array,
        *,
        masks: Mapping[str, Array] | None = None,
        rng: np.random.Generator | None = None,
    ) -> NetworkForward:
        """Run every node on ``X``; each dropout node takes ``masks[path]``, or a mask drawn from
        ``rng`` (``rng.random(x.shape) >= p``, in forward order) when ``masks`` is not given."""
        self.check_params(params)
        xp = namespace(*params.values()) if params else namespace(X)
        inputs: dict[str, Array] = {}
        used: dict[str, Array] = {}
        out = _run(self.layers, "", X, params, masks, rng, inputs, used, xp)
        last_path = list(self.nodes())[-1][0]
        return NetworkForward(inputs, used, out, inputs[last_path])

    def objective(
        self, params: Mapping[str, Array], X: Array, Y: Array, *, masks: Mapping[str, Array] | None = None
    ) -> Array:
        """The objective E (0-d array)."""
        fwd = self.forward(params, X, masks=masks)
        self.head.check_targets(tuple(fwd.out.shape), Y)
        return self.head.value(fwd.out, Y, fwd.last_input, self._last_activation())

    def backward(
        self, params: Mapping[str, Array], X: Array, Y: Array, *, masks: Mapping[str, Array] | None = None
    ) -> tuple[Array, dict[str, Array], Array | None]:
        r"""``(E, gradients, δ_X)``: the objective, every parameter's gradient by name, and the δ at the
        input (None for integer inputs: an embedding's indices). The recursion of the module docstring."""
        fwd = self.forward(params, X, masks=masks)
        self.head.check_targets(tuple(fwd.out.shape), Y)
        act = self._last_activation()
        value = self.head.value(fwd.out, Y, fwd.last_input, act)
        delta, through = self.head.delta(fwd.out, Y, fwd.last_input, act)
        grads: dict[str, Array] = {}
        xp = namespace(delta)
        fwd.inputs.pop(str(len(self.layers) - 1), None) if not through else None  # the head used it
        skip = "" if through else str(len(self.layers) - 1)
        dX = _back(self.layers, "", delta, params, fwd, grads, xp, skip)
        ordered = {k: grads[k] for k in self.parameters()}
        return value, ordered, (dX if "float" in str(X.dtype) else None)

    def gradients(
        self, params: Mapping[str, Array], X: Array, Y: Array, *, masks: Mapping[str, Array] | None = None
    ) -> dict[str, Array]:
        """Every parameter's gradient of the objective, by name, each of its parameter's shape."""
        return self.backward(params, X, Y, masks=masks)[1]

    def per_example_gradients(
        self, params: Mapping[str, Array], X: Array, Y: Array, *, masks: Mapping[str, Array] | None = None
    ) -> dict[str, Array]:
        r"""Each example's gradient, ``(N, *shape)`` per parameter: :math:`g_n = \partial L_n/\partial
        \theta`, over N for ``"mean"``, so that :math:`\sum_n g_n` is :meth:`gradients`' (the backward
        run on each one-example batch). ``ValueError`` for a network with batch normalization, whose
        examples are tied together by the batch's statistics."""
        if any(node.name == "batch_norm" for _, node in self.nodes()):
            raise ValueError(
                "a network with batch_norm has no per-example gradients: each example's output depends on the batch"
            )
        xp = namespace(*params.values())
        N = X.shape[0]
        rows = []
        for n in range(N):
            one = None if masks is None else {k: m[n : n + 1] for k, m in masks.items()}
            g = self.gradients(params, X[n : n + 1], Y[n : n + 1], masks=one)
            rows.append({k: (v / N if self.reduction == "mean" else v) for k, v in g.items()})
        return {k: xp.stack([r[k] for r in rows]) for k in self.parameters()}

    @classmethod
    def from_spec(cls, spec: Spec) -> Network:
        """The slides' fully connected network as a network of layers: ``linear`` and activation nodes
        in turn, its loss and reduction. Parameters map by :meth:`params_from_spec`."""
        layers: list[Any] = []
        for (I, O), act in zip(spec.shapes(), spec.activations):
            layers += [linear(I, O, bias=spec.bias), activation(act)]
        return cls(layers, spec.loss, reduction=spec.reduction)

    @staticmethod
    def params_from_spec(params: Params) -> dict[str, Array]:
        """A :class:`manual.Params` as the parameters of :meth:`from_spec`'s network: ``W^(l)`` is
        ``"{2(l-1)}.weight"``, ``b^(l)`` ``"{2(l-1)}.bias"`` (the same arrays, not copies)."""
        out: dict[str, Array] = {}
        for l, W in enumerate(params.weights):
            out[f"{2 * l}.weight"] = W
            if params.biases is not None:
                out[f"{2 * l}.bias"] = params.biases[l]
        return out

    def _last_activation(self) -> Any:
        """The last entry's activation when it is an activation node (not one inside a residual)."""
        last = self.layers[-1]
        return last.activation if isinstance(last, Node) else None

    def __repr__(self) -> str:
        return f"Network([{', '.join(map(repr, self.layers))}], {self.head.name!r}, reduction={self.reduction!r})"

    def __str__(self) -> str:
        return " -> ".join(_describe(e) for e in self.layers) + f" | {self.head.name}/{self.reduction}"


def _describe(e: Node | Residual) -> str:
    if isinstance(e, Residual):
        return "[" + " -> ".join(_describe(b) for b in e.body) + "] + x"
    return e.label


def _walk(entries: Sequence[Node | Residual], prefix: str) -> Iterator[tuple[str, Node]]:
    for i, e in enumerate(entries):
        path = f"{prefix}{i}"
        if isinstance(e, Residual):
            yield from _walk(e.body, path + ".")
        else:
            yield path, e


def _residuals(entries: Sequence[Node | Residual], prefix: str) -> Iterator[tuple[str, Residual]]:
    for i, e in enumerate(entries):
        if isinstance(e, Residual):
            yield f"{prefix}{i}", e
            yield from _residuals(e.body, f"{prefix}{i}.")


def _block_number(net: Network, top: str) -> int:
    """Residual blocks are numbered from 1 in forward order."""
    tops = [p for p, _ in net.blocks() if "." not in p]
    return tops.index(top) + 1 if top in tops else 0


def _own(node: Node, path: str, params: Mapping[str, Array]) -> dict[str, Array]:
    return {k: params[f"{path}.{k}"] for k in node.shapes}


def _run(entries, prefix, x, params, masks, rng, inputs, used, xp) -> Array:
    for i, e in enumerate(entries):
        path = f"{prefix}{i}"
        if isinstance(e, Residual):
            x = x + _run(e.body, path + ".", x, params, masks, rng, inputs, used, xp)
            continue
        inputs[path] = x
        mask = None
        if e.masked:
            mask = _mask(path, x, masks, rng, e, xp)
            used[path] = mask
        x = e.forward(x, _own(e, path, params), mask, xp)
    return x


def _mask(path: str, x: Array, masks: Mapping[str, Array] | None, rng: Any, node: Node, xp: Any) -> Array:
    if masks is not None:
        if path not in masks:
            raise ValueError(f"masks has no mask for the dropout at layers path {path!r} (given: {sorted(masks)})")
        return masks[path]
    if rng is None:
        raise ValueError(f"the dropout at path {path!r} needs masks= or rng= (a numpy.random.Generator)")
    keep = rng.random(tuple(x.shape)) >= node.constants["p"]
    return xp.asarray(keep, device=getattr(x, "device", None))


def _back(entries, prefix, delta, params, fwd, grads, xp, skip) -> Array:
    for i in range(len(entries) - 1, -1, -1):
        e = entries[i]
        path = f"{prefix}{i}"
        if isinstance(e, Residual):
            # the δ past the block and the δ through its body, added (the skip's Jacobian is I)
            delta = e.join(delta, _back(e.body, path + ".", delta, params, fwd, grads, xp, skip))
            continue
        if path == skip:
            continue  # the loss head's δ is already at this activation's input
        delta, own = e.backward(delta, fwd.inputs.pop(path), _own(e, path, params), fwd.masks.get(path), xp)
        grads.update({f"{path}.{k}": g for k, g in own.items()})
    return delta
