"""What validation needs from datasets, models and post-processors (OML 4.x names and keys).

``EmbeddingMetrics`` and ``RetrievalResults`` work with any dataset implementing
:class:`IQueryGalleryLabeledDataset`: image datasets (``oml_fast.datasets``) and the in-memory
dataset built from arrays (``oml_fast.datasets.in_memory``) alike.

>>> issubclass(IQueryGalleryLabeledDataset, IQueryGalleryDataset)
True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor, nn
from torch.utils.data import Dataset

if TYPE_CHECKING:  # only for annotations: the retrieval package imports this module
    from .retrieval.retrieval_results import RetrievalResults

# Keys of the items returned by ``__getitem__`` (OML's names, so that OML code reads our batches).
INPUT_TENSORS_KEY = "input_tensors"
LABELS_KEY = "labels"
INDEX_KEY = "idx"
IS_QUERY_KEY = "is_query"
IS_GALLERY_KEY = "is_gallery"
EMBEDDINGS_KEY = "embeddings"
# Optional per-item columns kept in ``dataset.extra_data``.
CATEGORIES_COLUMN = "category"
SEQUENCE_COLUMN = "sequence"
# Key of the metrics computed over all queries.
OVERALL_CATEGORIES_KEY = "OVERALL"

# Colours (RGB) for visualisations: query, correct, wrong, ground truth, unknown.
TColor = tuple[int, int, int]
BLUE: TColor = (0, 0, 255)
GREEN: TColor = (0, 255, 0)
RED: TColor = (255, 0, 0)
GRAY: TColor = (120, 120, 120)
BLACK: TColor = (0, 0, 0)


class IBaseDataset(Dataset, ABC):
    """A dataset of items with an index; ``extra_data`` holds optional per-item columns.

    ``extra_data`` maps a column name to a sequence of length ``len(dataset)``; validation reads
    ``"category"`` (per-category metrics) and ``"sequence"`` (items of one sequence never retrieve
    each other) when present.
    """

    input_tensors_key: str = INPUT_TENSORS_KEY
    index_key: str = INDEX_KEY
    extra_data: dict[str, Any]

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, item: int) -> dict[str, Any]:
        """Returns a dict with at least ``input_tensors`` and ``idx`` (``== item``)."""


class ILabeledDataset(IBaseDataset, ABC):
    """A dataset whose items have integer labels (items with equal labels are relevant to each other)."""

    labels_key: str = LABELS_KEY

    @abstractmethod
    def get_labels(self) -> np.ndarray:
        """Labels of all items: ``np.ndarray[N]`` of int64."""

    def get_label2category(self) -> dict[int, str | int] | None:
        """Mapping from label to category, if known."""
        return None


class IQueryGalleryDataset(IBaseDataset, ABC):
    """A dataset split into queries and gallery; the two sets may overlap (an item may be both)."""

    is_query_key: str = IS_QUERY_KEY
    is_gallery_key: str = IS_GALLERY_KEY

    @abstractmethod
    def get_query_ids(self) -> Tensor:
        """Dataset indices of the queries: ``LongTensor[Nq]``, ascending."""

    @abstractmethod
    def get_gallery_ids(self) -> Tensor:
        """Dataset indices of the gallery items: ``LongTensor[Ng]``, ascending."""


class IQueryGalleryLabeledDataset(IQueryGalleryDataset, ILabeledDataset, ABC):
    """The protocol of validation datasets: a query/gallery split plus labels.

    ``__getitem__(i)`` returns a dict with the keys ``input_tensors``, ``labels``, ``idx``,
    ``is_query``, ``is_gallery`` (and whatever else the dataset provides, e.g. ``path``).
    """


class IVisualizableDataset(Dataset, ABC):
    """A dataset that can draw its items (used to log the worst queries as pictures)."""

    @abstractmethod
    def visualize(self, item: int, color: TColor) -> np.ndarray:
        """The item drawn as an ``HxWx3`` uint8 array, framed or tinted with ``color``."""


class IPairwiseModel(nn.Module, ABC):
    """A model that scores pairs of items: smaller output means more similar (a distance)."""

    @abstractmethod
    def forward(self, x1: Any, x2: Any) -> Tensor:
        """Raw outputs for a batch of pairs: ``Tensor[B]``."""

    def predict(self, x1: Any, x2: Any) -> Tensor:
        """Distances for a batch of pairs (``Tensor[B]``); by default the output of ``forward``."""
        return self.forward(x1, x2)


class IRetrievalPostprocessor(ABC):
    """Something that changes retrieval results (cuts, re-orders) before the metrics are computed.

    ``process`` may accept ``dataset`` and ``embeddings`` keyword arguments besides ``rr``;
    :class:`~oml_fast.metrics.EmbeddingMetrics` passes the ones that the signature names.
    """

    @abstractmethod
    def process(self, rr: RetrievalResults, *args: Any, **kwargs: Any) -> RetrievalResults: ...


__all__ = [
    "IBaseDataset",
    "ILabeledDataset",
    "IQueryGalleryDataset",
    "IQueryGalleryLabeledDataset",
    "IVisualizableDataset",
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
