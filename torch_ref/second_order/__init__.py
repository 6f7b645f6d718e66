"""Second-order checks: torch's Hessian- and Gauss-Newton-vector products and the R-passes
(:mod:`.products`), their bound (:mod:`.tolerance`, :mod:`.running_error`, :mod:`.affine`,
:mod:`.balls`), and the check with its diagnoses (:mod:`.check`, :mod:`.diagnosis`)."""
