"""Training checks: a user's trainer followed step by step against ``torch.optim``
(:mod:`.trajectory`), the optimizer rules and their variants (:mod:`.rules`), and the comparison of
one step within the trajectory bound (:mod:`.step_compare`)."""
