"""``python -m torch_ref check MODULE:FUNCTION``: see :mod:`torch_ref.frontends.cli`."""

import os
import sys

from .frontends.cli import main

try:
    status = main()
    sys.stdout.flush()
except BrokenPipeError:
    # the reader of a pipe stopped early (``| head``): nothing more to print, and no traceback for it
    # (Python's documented recipe: https://docs.python.org/3/library/signal.html#note-on-sigpipe)
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    status = 1
sys.exit(status)
