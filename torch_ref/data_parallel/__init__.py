"""Data-parallel checks: the rank processes (:mod:`.pool`, :mod:`.worker`), the collectives handed
to a derivation (:mod:`.distributed`), torch DDP on the same shards (:mod:`.ddp`), and the check with
its diagnoses (:mod:`.check`, :mod:`.diagnosis`)."""
