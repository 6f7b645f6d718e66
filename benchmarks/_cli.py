"""What the benchmark scripts' command lines share: the description from a module docstring, and
checks that fail at once, before minutes of measuring, on what would otherwise fail at the end."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def description(doc: str | None) -> str:
    """The docstring's first paragraph, as one line (``--help`` shows it whole)."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def positive_ints(text: str) -> list[int]:
    """``"64,128"`` as ``[64, 128]``; anything else is a usage error that names the value."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes comma-separated positive integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"takes comma-separated positive integers, got {text!r}")
    return values


def check_outputs(parser: argparse.ArgumentParser, json_path: str | None, plot_path: str | None) -> None:
    """Usage errors, before anything is measured: an output path whose folder does not exist or is not
    writable, or ``--plot`` without matplotlib."""
    for flag, path in (("--json", json_path), ("--plot", plot_path)):
        if path is None:
            continue
        folder = Path(path).resolve().parent
        if Path(path).is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK):
            parser.error(f"{flag} {path}: not a writable file path in an existing folder")
    if plot_path is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: pip install -e '.[plot]'")


def at_least(parser: argparse.ArgumentParser, flag: str, value: float, minimum: float) -> None:
    if value < minimum:
        parser.error(f"{flag} must be at least {minimum}, got {value}")


def positive(parser: argparse.ArgumentParser, flag: str, value: float) -> None:
    if not value > 0:
        parser.error(f"{flag} must be greater than 0, got {value}")


def write_outputs(result: Any, json_path: str | None, plot_path: str | None, plot: Callable[[Any, str], None]) -> None:
    """The run as JSON and as a plot, where asked for (paths checked by :func:`check_outputs`)."""
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
        print(f"wrote {json_path}")
    if plot_path:
        plot(result, plot_path)
        print(f"wrote {plot_path}")
