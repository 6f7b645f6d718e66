"""The first-order checks: one case judged against autograd (:mod:`.verdict`), the named mistakes
that explain a failing case (:mod:`.diagnose`), and the other quantities: deltas, the input
gradient, per-example gradients (:mod:`.quantities`)."""
