"""Abstract interfaces (OML 4.x's ``oml.interfaces`` package): datasets, models, post-processors.

The batch keys and column names that used to be exported here live in :mod:`oml_fast.const`; they
are re-exported for code written against the earlier layout.
"""

from ..const import (  # noqa: F401  (re-exported for compatibility)
    CATEGORIES_COLUMN,
    EMBEDDINGS_KEY,
    INDEX_KEY,
    INPUT_TENSORS_KEY,
    IS_GALLERY_KEY,
    IS_QUERY_KEY,
    LABELS_KEY,
    OVERALL_CATEGORIES_KEY,
    SEQUENCE_COLUMN,
    TColor,
)
from .datasets import (
    IBaseDataset,
    IHTMLVisualizableDataset,
    IIndexedDataset,
    ILabeledDataset,
    IPairDataset,
    IQueryGalleryDataset,
    IQueryGalleryLabeledDataset,
    IVisualizableDataset,
)
from .models import IPairwiseModel
from .retrieval import IRetrievalPostprocessor

__all__ = [
    "IIndexedDataset",
    "IBaseDataset",
    "ILabeledDataset",
    "IQueryGalleryDataset",
    "IQueryGalleryLabeledDataset",
    "IPairDataset",
    "IVisualizableDataset",
    "IHTMLVisualizableDataset",
    "IPairwiseModel",
    "IRetrievalPostprocessor",
    "INPUT_TENSORS_KEY",
    "LABELS_KEY",
    "INDEX_KEY",
    "IS_QUERY_KEY",
    "IS_GALLERY_KEY",
    "EMBEDDINGS_KEY",
    "CATEGORIES_COLUMN",
    "SEQUENCE_COLUMN",
    "OVERALL_CATEGORIES_KEY",
    "TColor",
]
