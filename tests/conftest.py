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


def pytest_configure(config):
    """Under pytest-xdist, one BLAS/OpenMP thread per worker: the workers are the parallelism, and
    each worker's torch and OpenBLAS spinning up threads of their own on the same cores only contend
    (on 2 cores, ``-n 2`` ran 104 s with default threads, 65-72 s with one each). Set before the workers
    start, so each inherits it; a value already in the environment wins."""
    if getattr(config.option, "numprocesses", None):
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        # worksteal: a worker that runs dry takes queued tests from the other (the suite's tests differ
        # in cost by 1000x): 52 s against 57 s with xdist's "load". Set here, not in addopts, so that a
        # run without xdist still starts; an explicit --dist wins.
        if not any(arg.startswith("--dist") for arg in config.invocation_params.args):
            config.option.dist = "worksteal"


def pytest_collection_finish(session):
    """Everything imported so far (torch, sympy, Hypothesis: millions of objects that live for the
    whole run) is moved out of the garbage collector's sight, so that its full collections during the
    run and at its end (pytest's unraisable-exception check collects several times) walk only what
    the tests create."""
    import gc

    gc.collect()
    gc.freeze()
