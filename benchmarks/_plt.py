"""matplotlib's pyplot on the file-only Agg backend, or a SystemExit that says how to install it."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SystemExit("--plot needs matplotlib: pip install -e '.[plot]'") from exc
    return plt
