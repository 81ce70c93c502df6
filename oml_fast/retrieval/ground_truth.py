"""Where relevance comes from: equal labels (minus excluded pairs), or explicit lists of relevant ids.

:class:`RetrievalResults` holds one :class:`GroundTruth` (or none) and asks it which retrieved items
are relevant; post-processors that re-order lists keep it as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from ..functional.knn import gt_ids_by_labels
from ..functional.metrics import relevance_from_gt_ids
from .query_gallery import QueryGalleryKeys


@runtime_checkable
class GroundTruth(Protocol):
    """The relevant gallery items of every query."""

    @property
    def n_gt(self) -> Tensor:
        """LongTensor[Nq]: the number of relevant (non-excluded) gallery items per query."""
        ...

    def relevance(self, retrieved: Tensor) -> Tensor:
        """BoolTensor[Nq, K]: whether each id of ``retrieved`` (LongTensor[Nq, K], ``-1`` padding) is relevant."""
        ...

    def gt_ids(self) -> tuple[Tensor, ...]:
        """Per query, the ids of all relevant gallery items (LongTensor[n_gt[q]])."""
        ...


class LabelGroundTruth:
    """Relevance by equal labels, minus excluded pairs (equal item id, equal sequence).

    Args:
        keys: the search's keys; must be labelled.
        n_gt (LongTensor[Nq]): the number of relevant items per query (counted by the relevance op).
    """

    def __init__(self, keys: QueryGalleryKeys, n_gt: Tensor):
        if keys.query_labels is None or keys.gallery_labels is None:
            raise ValueError("LabelGroundTruth needs labelled keys (query_labels and gallery_labels)")
        self.keys = keys
        self.query_labels, self.gallery_labels = keys.query_labels, keys.gallery_labels
        self._n_gt = n_gt
        self._gt_ids: tuple[Tensor, ...] | None = None

    @property
    def n_gt(self) -> Tensor:
        return self._n_gt

    def relevance(self, retrieved: Tensor) -> Tensor:
        # Retrieved lists never hold excluded items, so equal labels are enough.
        labels = self.gallery_labels[retrieved.clamp_min(0)]
        return (retrieved >= 0) & (labels == self.query_labels[:, None])

    def gt_ids(self) -> tuple[Tensor, ...]:
        """Builds the per-query lists of relevant gallery ids, vectorised (O(sum of n_gt) memory)."""
        if self._gt_ids is None:
            exclusions = self.keys.exclusion_keys(self.query_labels.device)
            self._gt_ids = gt_ids_by_labels(self.query_labels, self.gallery_labels, *exclusions)
        return self._gt_ids


class ExplicitGroundTruth:
    """Relevance given as per-query lists of relevant gallery ids (OML's ``gt_ids``)."""

    def __init__(self, gt_ids: Sequence[Tensor]):
        self._gt_ids = tuple(torch.as_tensor(x).reshape(-1).long() for x in gt_ids)
        self._n_gt = torch.tensor([len(x) for x in self._gt_ids], dtype=torch.int64)

    @property
    def n_gt(self) -> Tensor:
        return self._n_gt

    def relevance(self, retrieved: Tensor) -> Tensor:
        return relevance_from_gt_ids(retrieved, self._gt_ids)

    def gt_ids(self) -> tuple[Tensor, ...]:
        return self._gt_ids


__all__ = ["GroundTruth", "LabelGroundTruth", "ExplicitGroundTruth"]
