"""What a search needs to know about a dataset: which items are queries and gallery, their labels,
their exclusion keys and categories -- derived once, here, for every caller.

>>> from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
>>> ds = InMemoryQueryGalleryDataset(labels=[0, 0, 1], sequences=["a", "a", "b"], is_query=[1, 0, 1])
>>> keys = QueryGalleryKeys.from_dataset(ds)
>>> keys.query_ids.tolist(), keys.gallery_ids.tolist(), keys.query_labels.tolist(), keys.gallery_groups.tolist()
([0, 2], [0, 1, 2], [0, 1], [0, 0, 1])
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..const import CATEGORIES_COLUMN, SEQUENCE_COLUMN
from ..interfaces.datasets import IBaseDataset, ILabeledDataset, IQueryGalleryDataset
from ..ops.checks import labels_to_tensor


def factorize_sequences(*datasets: IBaseDataset) -> list[Tensor] | None:
    """Integer sequence ids for each dataset, factorised jointly (equal values get equal ids across datasets).

    Returns None unless every dataset has a ``"sequence"`` column. (OML factorises the query and the
    gallery datasets separately, so equal sequence names may get different ids; we do not.)
    """
    if not all(SEQUENCE_COLUMN in getattr(ds, "extra_data", {}) for ds in datasets):
        return None
    values = [np.asarray(ds.extra_data[SEQUENCE_COLUMN]).reshape(-1) for ds in datasets]
    if len({v.dtype.kind for v in values}) > 1:  # e.g. ints and strings: 1 and "1" must stay different
        values = [v.astype(object) for v in values]
    codes = factorize(np.concatenate(values))
    splits = np.cumsum([len(v) for v in values])[:-1]
    return [torch.from_numpy(part) for part in np.split(codes, splits)]


def factorize(values: np.ndarray) -> np.ndarray:
    """Equal values -> equal int64 codes: the rank among the sorted distinct values (``np.unique``), or, for
    values that do not sort (ints and strings in one object array), the order of first appearance.

    >>> factorize(np.array(["b", "a", "b"])).tolist(), factorize(np.array([3, "x", 3], dtype=object)).tolist()
    ([1, 0, 1], [0, 1, 0])
    """
    try:
        return np.unique(values, return_inverse=True)[1].reshape(-1).astype(np.int64)
    except TypeError:
        first: dict[Any, int] = {}
        return np.fromiter((first.setdefault(v, len(first)) for v in values.tolist()), np.int64, len(values))


def dataset_labels(dataset: Any) -> Tensor | None:
    """``LongTensor[N]``: the labels of a labelled dataset, None for an unlabelled one."""
    if not isinstance(dataset, ILabeledDataset):
        return None
    return labels_to_tensor(dataset.get_labels())


@dataclass(frozen=True)
class QueryGalleryKeys:
    """Queries and gallery of a search, with everything but the embeddings (all on the CPU).

    Attributes:
        query_ids (LongTensor[Nq]), gallery_ids (LongTensor[Ng]): rows of the query and gallery
            embeddings in the embedding matrices they are taken from (dataset indices for a
            query/gallery dataset; ``0 .. N - 1`` of each dataset for two separate datasets).
        query_labels, gallery_labels (LongTensor[Nq], [Ng] or None): relevance by equal labels
            (both or neither).
        query_groups, gallery_groups (LongTensor[Nq], [Ng] or None): sequence ids; a query never
            retrieves gallery items of its sequence.
        query_categories (ndarray[Nq] or None): per-query category, for per-category metrics.
        exclude_same_ids: whether ``query_ids`` and ``gallery_ids`` name the same items (one
            dataset), so that a query never retrieves itself.
    """

    query_ids: Tensor
    gallery_ids: Tensor
    query_labels: Tensor | None = None
    gallery_labels: Tensor | None = None
    query_groups: Tensor | None = None
    gallery_groups: Tensor | None = None
    query_categories: np.ndarray | None = None
    exclude_same_ids: bool = True

    @classmethod
    def from_dataset(cls, dataset: IQueryGalleryDataset) -> QueryGalleryKeys:
        """Keys of a query/gallery dataset: an item never retrieves itself nor items of its sequence."""
        query_ids = torch.as_tensor(dataset.get_query_ids()).long().reshape(-1).cpu()
        gallery_ids = torch.as_tensor(dataset.get_gallery_ids()).long().reshape(-1).cpu()
        labels = dataset_labels(dataset)
        sequences = factorize_sequences(dataset)
        extra = getattr(dataset, "extra_data", {}) or {}
        categories = np.asarray(extra[CATEGORIES_COLUMN]) if CATEGORIES_COLUMN in extra else None
        return cls(
            query_ids=query_ids,
            gallery_ids=gallery_ids,
            query_labels=None if labels is None else labels[query_ids],
            gallery_labels=None if labels is None else labels[gallery_ids],
            query_groups=None if sequences is None else sequences[0][query_ids],
            gallery_groups=None if sequences is None else sequences[0][gallery_ids],
            query_categories=None if categories is None else categories[query_ids.numpy()],
            exclude_same_ids=True,
        )

    @classmethod
    def from_datasets(cls, dataset_query: IBaseDataset, dataset_gallery: IBaseDataset) -> QueryGalleryKeys:
        """Keys of two separate datasets (every item of the first queries every item of the second):
        no self-exclusion; sequences still exclude; labels only when both are labelled."""
        query_labels, gallery_labels = dataset_labels(dataset_query), dataset_labels(dataset_gallery)
        if query_labels is None or gallery_labels is None:
            query_labels = gallery_labels = None
        sequences = factorize_sequences(dataset_query, dataset_gallery)
        extra = getattr(dataset_query, "extra_data", {}) or {}
        return cls(
            query_ids=torch.arange(len(dataset_query)),
            gallery_ids=torch.arange(len(dataset_gallery)),
            query_labels=query_labels,
            gallery_labels=gallery_labels,
            query_groups=None if sequences is None else sequences[0],
            gallery_groups=None if sequences is None else sequences[1],
            query_categories=np.asarray(extra[CATEGORIES_COLUMN]) if CATEGORIES_COLUMN in extra else None,
            exclude_same_ids=False,
        )

    @property
    def n_queries(self) -> int:
        return len(self.query_ids)

    @property
    def n_gallery(self) -> int:
        return len(self.gallery_ids)

    @property
    def is_labelled(self) -> bool:
        return self.query_labels is not None and self.gallery_labels is not None

    def exclusion_keys(
        self, device: torch.device | str = "cpu"
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None, Tensor | None]:
        """``(query_ids, gallery_ids, query_groups, gallery_groups)`` as the ops take them (None: unused)."""

        def to(x: Tensor | None) -> Tensor | None:
            return None if x is None else x.to(device).contiguous()

        ids = (self.query_ids, self.gallery_ids) if self.exclude_same_ids else (None, None)
        return (to(ids[0]), to(ids[1]), to(self.query_groups), to(self.gallery_groups))

    def split_embeddings(self, embeddings: Tensor) -> tuple[Tensor, Tensor]:
        """``(queries [Nq, D], gallery [Ng, D])`` rows of one embedding matrix (one dataset)."""
        device = embeddings.device

        def rows(ids: Tensor) -> Tensor:
            # Every item in order (1-vs-rest): the matrix itself, not a copy (20 MB at 40k x 128).
            if len(ids) == len(embeddings) and bool((ids == torch.arange(len(ids))).all()):
                return embeddings
            return embeddings[ids.to(device)]

        return rows(self.query_ids), rows(self.gallery_ids)

    def with_labels(self, query_labels: Tensor | None, gallery_labels: Tensor | None) -> QueryGalleryKeys:
        return replace(self, query_labels=query_labels, gallery_labels=gallery_labels)


__all__ = ["QueryGalleryKeys", "factorize_sequences", "factorize", "dataset_labels"]
