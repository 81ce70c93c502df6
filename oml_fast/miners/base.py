"""Miner interfaces and the label checks every in-batch miner shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import Tensor

from ..ops.checks import labels_to_tensor

TTriplets = tuple[Tensor, Tensor, Tensor]
TTripletsIds = tuple[Tensor, Tensor, Tensor]
TLabels = Tensor | Sequence[int]


def check_batch_labels(labels: Tensor, n_features: int | None = None) -> None:
    """Raises ``ValueError`` unless the batch has >= 2 labels and every label has >= 2 items.

    >>> check_batch_labels(torch.tensor([0, 0, 1, 1]))
    >>> check_batch_labels(torch.tensor([0, 0, 1]))
    Traceback (most recent call last):
    ...
    ValueError: every label in the batch needs at least 2 items; label 1 has 1 (use BalanceSampler with n_instances >= 2)
    """
    if n_features is not None and labels.numel() != n_features:
        raise ValueError(f"`labels` has {labels.numel()} entries but `features` has {n_features} rows")
    unique, counts = torch.unique(labels, return_counts=True)
    if unique.numel() < 2:
        raise ValueError(
            f"the batch needs at least 2 distinct labels to form triplets, got {unique.numel()} "
            "(use BalanceSampler with n_labels >= 2)"
        )
    if bool((counts < 2).any()):
        bad = int(torch.nonzero(counts < 2)[0, 0])
        raise ValueError(
            f"every label in the batch needs at least 2 items; label {int(unique[bad])} has {int(counts[bad])} "
            "(use BalanceSampler with n_instances >= 2)"
        )


def gather_rows(features: Tensor, ids: Tensor) -> Tensor:
    """``features[ids]`` through ``index_select``: its backward is an ``index_add`` (fast on CPU), while
    advanced indexing goes through ``index_put`` with accumulation. When ``ids`` is ``0..B-1`` (every
    item an anchor, as in batch-hard mining) the features are returned as they are, without a copy.
    """
    if ids.numel() == len(features) and bool((ids == torch.arange(len(ids), device=ids.device)).all()):
        return features
    return features.index_select(0, ids.to(features.device))


def rankable(features: Tensor) -> Tensor:
    """``features`` with NaN / inf entries replaced by 0: what the miners give the ranking ops.

    The ops that rank by distance (``hard_mining``, ``knn``) reject non-finite embeddings. The miners keep
    OML's behaviour instead: a row with NaN or inf features still takes part in the triplets (mined as if
    it were 0 there), and the triplets gather the original rows, so the loss over them is NaN, never a
    finite value computed from the other rows (the NaN policy: docs/hostile_inputs.md).

    >>> rankable(torch.tensor([[1.0, float("nan")], [float("inf"), 2.0]]))
    tensor([[1., 0.],
            [0., 2.]])
    """
    # Branch-free (no device sync, nothing for torch.compile to break on): one [B, D] copy per batch.
    return torch.nan_to_num(features.detach(), nan=0.0, posinf=0.0, neginf=0.0)


class ITripletsMiner(ABC):
    """Anything that turns a batch of features and labels into ``(anchor, positive, negative)`` features."""

    @abstractmethod
    def sample(self, features: Tensor, labels: TLabels) -> TTriplets:
        """Returns the features of the triplets: three ``Tensor[T, D]``."""


class InBatchTripletsMiner(ITripletsMiner):
    """A miner that picks triplets among the items of the batch by their indices.

    Subclasses implement :meth:`_sample`, which returns three int64 index tensors of equal length.
    :meth:`sample` checks the labels (>= 2 labels, >= 2 items each) and gathers the features, so the
    gradient flows to every selected item.
    """

    @abstractmethod
    def _sample(self, features: Tensor, labels: Tensor) -> TTripletsIds:
        """Indices ``(anchors, positives, negatives)`` as ``Tensor[T]`` int64."""

    def sample(self, features: Tensor, labels: TLabels) -> TTriplets:
        labels_t = labels_to_tensor(labels, features.device)
        check_batch_labels(labels_t, len(features))
        ids_a, ids_p, ids_n = self._sample(features, labels=labels_t)
        return gather_rows(features, ids_a), gather_rows(features, ids_p), gather_rows(features, ids_n)


ITripletsMinerInBatch = InBatchTripletsMiner  # OML's newer name for the same interface

__all__ = [
    "ITripletsMinerInBatch",
    "TTriplets",
    "TTripletsIds",
    "TLabels",
    "labels_to_tensor",
    "gather_rows",
    "rankable",
    "check_batch_labels",
    "ITripletsMiner",
    "InBatchTripletsMiner",
]
