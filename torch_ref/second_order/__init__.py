"""Second-order checks: torch's Hessian- and Gauss-Newton-vector products and the R-passes' inputs
(:mod:`.products`), the R-passes on those reference values (:mod:`.r_pass`), their bound
(:mod:`.tolerance`, :mod:`.running_error`, :mod:`.affine`, :mod:`.balls`), and the check with its
diagnoses (:mod:`.check`, :mod:`.diagnosis`)."""
