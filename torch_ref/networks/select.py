"""What ``networks=`` selects: families, one network, one case, or a strategy of cases."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from manual.network import Network

from .case import NetworkCase, network_case
from .draw import FAMILIES, network_cases

__all__ = ["strategy"]


def _given(net: Network, dtype: np.dtype) -> Any:
    """Values drawn for one given network: a batch of 1-4 examples of the first node's input."""
    first = next(net.nodes())[1]
    shape = _input_shape(net)
    return (
        st.builds(
            lambda N, seed: network_case(net, (N, *shape), seed, dtype),
            st.integers(2 if any(n.name == "batch_norm" for _, n in net.nodes()) else 1, 4),
            st.integers(0, 2**32 - 1),
        )
        if shape is not None
        else _refuse(first)
    )


def _input_shape(net: Network) -> tuple[int, ...] | None:
    first = next(net.nodes())[1]
    if first.name == "linear":
        return (first.shapes["weight"][0],)
    if first.name == "embedding":
        return (4,)
    return None


def _refuse(first: Any) -> Any:
    raise ValueError(
        f"networks=: a given Network whose first layer is {first.label!r} needs its input shape: pass "
        "networks=(net, shape), e.g. (net, (2, 1, 8, 8)) for a batch of two 1x8x8 images"
    )


def _trainable(net: Network) -> Network:
    if not net.parameters():
        raise ValueError(f"networks=: {net} has no parameters, so a check would compare nothing")
    return net


def strategy(networks: Any, dtype: np.dtype) -> SearchStrategy[NetworkCase]:
    """The draw ``networks=`` selects, in ``dtype``."""
    if isinstance(networks, (Network, NetworkCase)):
        _trainable(networks.net if isinstance(networks, NetworkCase) else networks)
    if isinstance(networks, NetworkCase):
        return st.just(network_case(networks.net, networks.shape, networks.seed, dtype, family=networks.family))
    if isinstance(networks, Network):
        return _given(networks, dtype)
    if isinstance(networks, SearchStrategy):
        return networks
    if isinstance(networks, tuple) and len(networks) == 2 and isinstance(networks[0], Network):
        net, shape = _trainable(networks[0]), networks[1]
        if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 1 for d in shape):
            raise ValueError(f"networks=(net, shape): shape must be a tuple of ints >= 1 (X's shape), got {shape!r}")
        return st.integers(0, 2**32 - 1).map(lambda seed: network_case(net, shape, seed, dtype))
    families = (
        (networks,) if isinstance(networks, str) else tuple(networks) if isinstance(networks, (tuple, list)) else None
    )
    if not families or any(f not in FAMILIES for f in families):
        raise ValueError(
            f"networks must be a family among {FAMILIES} or a tuple of them, a manual.network.Network, a pair "
            f"(Network, X's shape), a torch_ref.NetworkCase or a Hypothesis strategy of them; got {networks!r}"
        )
    return network_cases(families, dtype)
