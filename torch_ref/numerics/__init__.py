"""The numerics every check judges with: the derived tolerances (:mod:`.tolerance`), the exact sums
they rest on (:mod:`.exact`), bounds on quotients (:mod:`.bound`), the one comparison routine that
reports per array (:mod:`.compare`) and finite-difference blame (:mod:`.blame`)."""
