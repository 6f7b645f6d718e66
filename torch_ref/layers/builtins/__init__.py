"""One module per family of :mod:`manual.layers`, each defining ``INFOS_HERE``: every built-in's torch
twin, its draw with the hard regimes, and its catalogue of published mistakes."""
