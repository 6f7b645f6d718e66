"""What a failing check's HTML page shows beyond its text report, taken from the failing outcome
(:func:`torch_ref.figures.fields.page_fields`); the pages themselves are :mod:`torch_ref.pages`."""
