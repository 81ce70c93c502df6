"""What the package needs from datasets (OML 4.x's ``oml.interfaces.datasets`` names and keys).

``EmbeddingMetrics`` and ``RetrievalResults`` work with any dataset implementing
:class:`IQueryGalleryLabeledDataset`: image datasets (``oml_fast.datasets``) and the in-memory
dataset built from arrays (``oml_fast.datasets.in_memory``) alike.

>>> issubclass(IQueryGalleryLabeledDataset, IQueryGalleryDataset)
True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from torch import Tensor
from torch.utils.data import Dataset

from ..const import (
    INDEX_KEY,
    INPUT_TENSORS_KEY,
    INPUT_TENSORS_KEY_1,
    INPUT_TENSORS_KEY_2,
    IS_GALLERY_KEY,
    IS_QUERY_KEY,
    LABELS_KEY,
    TColor,
)


class IIndexedDataset(Dataset, ABC):
    """A dataset whose items carry their own index under ``index_key``."""

    index_key: str = INDEX_KEY

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, item: int) -> dict[str, Any]:
        """Returns a dict with at least ``index_key`` (``== item``)."""


class IBaseDataset(IIndexedDataset, ABC):
    """A dataset of items with an index; ``extra_data`` holds optional per-item columns.

    ``extra_data`` maps a column name to a sequence of length ``len(dataset)``; validation reads
    ``"category"`` (per-category metrics) and ``"sequence"`` (items of one sequence never retrieve
    each other) when present.
    """

    input_tensors_key: str = INPUT_TENSORS_KEY
    extra_data: dict[str, Any]

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


class IPairDataset(IIndexedDataset, ABC):
    """A dataset of pairs of items: ``__getitem__`` returns both inputs under ``input_tensors_key_1``
    and ``input_tensors_key_2`` (used to train and run pairwise models)."""

    input_tensors_key_1: str = INPUT_TENSORS_KEY_1
    input_tensors_key_2: str = INPUT_TENSORS_KEY_2


class IVisualizableDataset(Dataset, ABC):
    """A dataset that can draw its items (used to log the worst queries as pictures)."""

    @abstractmethod
    def visualize(self, item: int, color: TColor) -> np.ndarray:
        """The item drawn as an ``HxWx3`` uint8 array, framed or tinted with ``color``."""


class IHTMLVisualizableDataset(Dataset, ABC):
    """A dataset that can show its items as HTML blocks (texts, audio with a player)."""

    @abstractmethod
    def visualize_as_html(self, item: int, title: str, color: TColor) -> str:
        """The item as a self-contained HTML block under ``title``, framed with ``color``."""


__all__ = [
    "IIndexedDataset",
    "IBaseDataset",
    "ILabeledDataset",
    "IQueryGalleryDataset",
    "IQueryGalleryLabeledDataset",
    "IPairDataset",
    "IVisualizableDataset",
    "IHTMLVisualizableDataset",
]
