"""``python -m torch_ref check MODULE:FUNCTION``: see :mod:`torch_ref.cli`."""

import sys

from .cli import main

sys.exit(main())
