"""Hypothesis settings profiles.

- ``ci`` (default): enough examples per property for hundreds of random networks in the whole
  suite, within a few minutes on 2 cores; derandomized, so every run draws the same networks and a
  red CI run is a red local run (the oracle's own draws inherit it).
- ``thorough``: ten times as many, drawn afresh each run; select it with
  ``--hypothesis-profile=thorough`` (hypothesis' own pytest option) or ``BACKPROP_PROFILE=thorough``.
"""

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("ci", max_examples=150, derandomize=True, **_COMMON)
settings.register_profile("thorough", max_examples=1500, **_COMMON)
settings.load_profile(os.environ.get("BACKPROP_PROFILE", "ci"))

pytest_plugins = ["pytester"]
