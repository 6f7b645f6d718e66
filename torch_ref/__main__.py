"""``python -m torch_ref check MODULE:FUNCTION``: see :mod:`torch_ref.frontends.cli`."""

import sys

from .frontends.cli import main

sys.exit(main())
