"""pytest plugin (entry point ``pytest11``): the ``derivation_oracle`` fixture and its options.

    def test_my_backprop(derivation_oracle):
        derivation_oracle.check_derivation(my_grad_fn, activations=("sigmoid",), losses=("bce",))

Options: ``--oracle-device`` (default cpu), ``--oracle-dtype`` (float64 or float32),
``--oracle-examples`` (default 100). Keyword arguments given in the test win over the options.
Bad values are usage errors at start-up (torch is imported then only to check a device other than
the CPU); otherwise torch_ref (and torch) is imported only when a test asks for the fixture. A
failing check shows its report, not the oracle's frames.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("backprop-crosscheck", "derivation oracle (torch_ref.check_derivation)")
    group.addoption("--oracle-device", default="cpu", help="device the derivation receives tensors on (default cpu)")
    group.addoption(
        "--oracle-dtype",
        default="float64",
        choices=("float64", "float32"),
        help="dtype of the drawn networks (default float64)",
    )
    group.addoption("--oracle-examples", type=int, default=100, help="random networks per check (default 100)")


def pytest_configure(config: pytest.Config) -> None:
    examples = config.getoption("--oracle-examples")
    if examples < 1:
        raise pytest.UsageError(f"--oracle-examples must be >= 1, got {examples}")
    device = config.getoption("--oracle-device")
    if device != "cpu":
        import torch

        try:
            torch.empty(0, device=device)
        except (RuntimeError, AssertionError, ValueError) as exc:
            raise pytest.UsageError(f"--oracle-device {device!r} is not available here: {exc}") from None


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
    return Oracle(
        config.getoption("--oracle-device"), config.getoption("--oracle-dtype"), config.getoption("--oracle-examples")
    )
