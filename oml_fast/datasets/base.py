"""OML's backward-compatible dataset names (``oml.datasets.base``): the image datasets under their OML 2.x names.

>>> DatasetWithLabels.__mro__[1].__name__, DatasetQueryGallery.__mro__[1].__name__
('ImageLabeledDataset', 'ImageQueryGalleryLabeledDataset')
"""

from __future__ import annotations

from oml_fast.datasets.images import ImageLabeledDataset, ImageQueryGalleryLabeledDataset


class DatasetWithLabels(ImageLabeledDataset):
    """:class:`~oml_fast.datasets.images.ImageLabeledDataset` under its OML 2.x name (as in OML 4.0)."""


class DatasetQueryGallery(ImageQueryGalleryLabeledDataset):
    """:class:`~oml_fast.datasets.images.ImageQueryGalleryLabeledDataset` under its OML 2.x name (as in OML 4.0)."""


__all__ = ["DatasetWithLabels", "DatasetQueryGallery"]
