"""The autograd twin: the networks of :mod:`manual` built from torch modules (:mod:`.build`), their
float64 autograd references (:mod:`.reference`, :mod:`.autograd`), the torch twin of a user's own
entry (:mod:`.user_twin`)."""
