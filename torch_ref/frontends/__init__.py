"""Front ends: the command line (:mod:`.cli`) and the direct comparisons of one fixed case
(:mod:`.crosscheck`). The pytest plugin stays at ``torch_ref.pytest_plugin``, its entry point."""
