"""The engine: one run for every kind of check. It validates the options (:mod:`.options`), draws
cases with Hypothesis, hands out private copies, judges each case through the kind's entry, shrinks,
and reports (:mod:`.report`) and records (:mod:`.record`) the outcome."""
