"""First-order judging: one case of a gradients, update, deltas, input or per-example check against
autograd (:mod:`.verdict`, with the evidence an unstable verdict needs in :mod:`.unstable`;
:mod:`.quantities`, :func:`~torch_ref.check_case` in :mod:`.case`), the
named mistakes that explain a failing case (:mod:`.diagnose`, with a user's own entry's derivatives
checked in :mod:`.entry_check`), the one-screen report (:mod:`.report`), and what the first-order
entries of :mod:`torch_ref.kinds` share (:mod:`.kind_entry`)."""
