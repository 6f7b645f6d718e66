"""What the oracle knows about layers: each built-in's torch twin, its draws (the hard regimes
included) and its catalogue of published mistakes (:mod:`.builtins`, one module per family, read
through :mod:`.table`); the case a layer check judges (:mod:`.case`); the rounding model of a
layer's backward (:mod:`.rounding`); one case judged (:mod:`.judge`)."""
