"""Image transforms on Pillow, which comes with the ``pipeline`` extra: without it, importing any module
here (or ``oml_fast.transforms``) raises :class:`~oml_fast.errors.MissingExtraError` naming the extra."""

from oml_fast.errors import require_extra

require_extra("PIL", "oml_fast.transforms")
