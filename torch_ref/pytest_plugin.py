"""pytest plugin (entry point ``pytest11``): the ``derivation_oracle`` fixture and its options.

    def test_my_backprop(derivation_oracle):
        derivation_oracle.check_derivation(my_grad_fn, activations=("sigmoid",), losses=("bce",))

Options: ``--oracle-device`` (default cpu), ``--oracle-dtype`` (float64 or float32),
``--oracle-examples`` (default 100). Keyword arguments given in the test win over the options.
torch_ref (and torch) is imported only when a test asks for the fixture.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("backprop-crosscheck", "derivation oracle (torch_ref.check_derivation)")
    group.addoption("--oracle-device", default="cpu", help="device the derivation receives tensors on (default cpu)")
    group.addoption("--oracle-dtype", default="float64", choices=("float64", "float32"),
                    help="dtype of the drawn networks (default float64)")
    group.addoption("--oracle-examples", type=int, default=100, help="random networks per check (default 100)")


class Oracle:
    """``check_derivation`` and ``check_update`` with the command line's defaults."""

    def __init__(self, device: str, dtype: str, examples: int) -> None:
        self.defaults = {"device": device, "dtype": dtype, "max_examples": examples}

    def check_derivation(self, grad_fn: Callable, **options: Any) -> Any:
        __tracebackhide__ = True
        from torch_ref.oracle import check_derivation

        return check_derivation(grad_fn, **{**self.defaults, **options})

    def check_update(self, step_fn: Callable, **options: Any) -> Any:
        __tracebackhide__ = True
        from torch_ref.oracle import check_update

        return check_update(step_fn, **{**self.defaults, **options})


@pytest.fixture
def derivation_oracle(request: pytest.FixtureRequest) -> Oracle:
    """The derivation oracle, configured by ``--oracle-device``, ``--oracle-dtype``, ``--oracle-examples``."""
    config = request.config
    return Oracle(config.getoption("--oracle-device"), config.getoption("--oracle-dtype"),
                  config.getoption("--oracle-examples"))
