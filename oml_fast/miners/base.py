"""Our in-batch miners' base: OML's interfaces (``oml_fast.interfaces.miners``) plus a tensor fast path.

:class:`InBatchTripletsMiner` keeps OML's contract (``_sample(features, labels: list[int])`` returns
lists of ints) and adds ``_sample_ids(features, labels: Tensor)``, which returns int64 tensors on the
features' device. Its :meth:`~InBatchTripletsMiner.sample` uses ``_sample_ids`` (no round trip through
Python lists), unless a subclass overrides ``_sample`` or ``_check_input_labels`` the OML way: then
the OML path of :class:`~oml_fast.interfaces.miners.ITripletsMinerInBatch` runs, so a miner written for
OML behaves as there.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch
from torch import Tensor

from ..interfaces.miners import (
    ITripletsMiner,
    ITripletsMinerInBatch,
    TLabels,
    TTriplets,
    TTripletsIds,
    check_batch_labels,
    labels2list,
)
from ..ops.checks import all_finite, labels_to_tensor

TTripletsIdsTensor = tuple[Tensor, Tensor, Tensor]
_TENSOR_BACKED = "__oml_fast_tensor_backed__"


def tensor_backed(method: Any) -> Any:
    """Marks a subclass's own ``_sample`` as a wrapper of its ``_sample_ids`` (so ``sample`` keeps the fast path)."""
    setattr(method, _TENSOR_BACKED, True)
    return method


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
    features = features.detach()
    if torch.compiler.is_compiling():  # branch-free: nothing for the graph to break on
        return torch.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0)
    # Eager: a copy only when needed (the ops read the data for their own checks anyway).
    if bool(all_finite(features)):
        return features
    return torch.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0)


class InBatchTripletsMiner(ITripletsMinerInBatch):
    """An in-batch miner with OML's ``_sample`` contract and a tensor path (see the module docs).

    Subclasses implement :meth:`_sample_ids`.
    """

    @abstractmethod
    def _sample_ids(self, features: Tensor, labels: Tensor) -> TTripletsIdsTensor:
        """Indices ``(anchors, positives, negatives)`` as ``Tensor[T]`` int64 on the features' device.

        Args:
            features (Tensor[B, D]): the batch's embeddings.
            labels (Tensor[B] int64): their labels, on the features' device.
        """

    @tensor_backed
    def _sample(self, features: Tensor, labels: TLabels) -> TTripletsIds:
        """OML's contract: ``labels`` a list of ints (a tensor is accepted too), indices as lists of ints."""
        ids_a, ids_p, ids_n = self._sample_ids(features, labels_to_tensor(labels, features.device))
        return ids_a.tolist(), ids_p.tolist(), ids_n.tolist()

    def _overridden_the_oml_way(self) -> bool:
        cls = type(self)
        return (
            not getattr(cls._sample, _TENSOR_BACKED, False)
            or cls._check_input_labels is not ITripletsMinerInBatch._check_input_labels
        )

    def sample(self, features: Tensor, labels: TLabels) -> TTriplets:
        """Checks the labels (>= 2 labels, >= 2 items each) and gathers the features of the triplets,
        so the gradient flows to every selected item: three ``Tensor[T, D]``."""
        if self._overridden_the_oml_way():
            return super().sample(features, labels)
        labels_t = labels_to_tensor(labels, features.device)
        check_batch_labels(labels_t, len(features))
        ids_a, ids_p, ids_n = self._sample_ids(features, labels_t)
        return gather_rows(features, ids_a), gather_rows(features, ids_p), gather_rows(features, ids_n)

    def _checked_triplet_ids(
        self, features: Tensor, labels: TLabels
    ) -> tuple[Tensor | None, Tensor, Tensor] | None:
        """What :meth:`sample` gathers, as indices for a loss that reads the batch itself: ``(anchors,
        positives, negatives)`` after the same label checks, anchors None when they are the rows ``0..B-1``
        in order; None when a subclass overrides the OML way (then only :meth:`sample` knows the triplets)."""
        if self._overridden_the_oml_way():
            return None
        labels_t = labels_to_tensor(labels, features.device)
        check_batch_labels(labels_t, len(features))
        ids_a, ids_p, ids_n = self._sample_ids(features, labels_t)
        ids_p, ids_n = ids_p.to(features.device), ids_n.to(features.device)
        if gather_rows(features, ids_a) is features:
            return None, ids_p, ids_n
        return ids_a.to(features.device), ids_p, ids_n


__all__ = [
    "ITripletsMinerInBatch",
    "TTriplets",
    "TTripletsIds",
    "TTripletsIdsTensor",
    "TLabels",
    "labels_to_tensor",
    "labels2list",
    "gather_rows",
    "rankable",
    "tensor_backed",
    "check_batch_labels",
    "ITripletsMiner",
    "InBatchTripletsMiner",
]
