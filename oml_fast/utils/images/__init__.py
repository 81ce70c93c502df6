"""OML's ``oml.utils.images``: image readers and drawing helpers (:mod:`oml_fast.utils.images.images`)."""
