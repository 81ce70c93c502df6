"""Abstract interfaces (OML 4.x's ``oml.interfaces`` package, same module paths): ``criterions``,
``datasets``, ``loggers``, ``metrics``, ``miners``, ``models``, ``retrieval``, ``samplers``.

``oml_fast.interfaces.loggers`` needs the ``pipeline`` extra (Lightning); its names are also reachable
here, imported on first use.

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
from ..errors import lazy_attributes
from .criterions import ITripletLossWithMiner
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
from .metrics import IBasicMetric, IMetricVisualisable
from .miners import ITripletsMiner, ITripletsMinerInBatch
from .models import IExtractor, IFreezable, IPairwiseModel
from .retrieval import IRetrievalPostprocessor
from .samplers import IBatchSampler

# The loggers' interfaces need Lightning (an optional extra): imported on first use.
__getattr__ = lazy_attributes(__name__, {"IPipelineLogger": "loggers", "IFigureLogger": "loggers"})


__all__ = [
    "ITripletLossWithMiner",
    "IBasicMetric",
    "IMetricVisualisable",
    "ITripletsMiner",
    "ITripletsMinerInBatch",
    "IBatchSampler",
    "IIndexedDataset",
    "IBaseDataset",
    "ILabeledDataset",
    "IQueryGalleryDataset",
    "IQueryGalleryLabeledDataset",
    "IPairDataset",
    "IVisualizableDataset",
    "IHTMLVisualizableDataset",
    "IExtractor",
    "IFreezable",
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
