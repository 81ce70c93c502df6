"""What a triplet miner offers (OML 4.x's ``oml.interfaces.miners``), and the batch checks in-batch miners share.

The contract of an in-batch miner, as OML's: subclasses implement ``_sample(features, labels)`` where
``labels`` is a **list of ints**, returning the indices ``(anchors, positives, negatives)`` (lists of ints,
or int tensors); :meth:`ITripletsMinerInBatch.sample` converts the labels, checks them
(:meth:`~ITripletsMinerInBatch._check_input_labels`), calls ``_sample`` and gathers the features. A miner
written to this contract works wherever ours do (e.g. in ``TripletLossWithMiner``).

>>> class FirstTriplet(ITripletsMinerInBatch):
...     def _sample(self, features, labels):
...         return [0], [labels.index(labels[0], 1)], [labels.index(next(x for x in labels if x != labels[0]))]
>>> a, p, n = FirstTriplet().sample(torch.tensor([[0.0], [1.0], [2.0], [3.0]]), torch.tensor([7, 5, 7, 5]))
>>> a.tolist(), p.tolist(), n.tolist()
([[0.0]], [[2.0]], [[1.0]])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import InvalidInputError

TTriplets = tuple[Tensor, Tensor, Tensor]
TTripletsIds = tuple[list[int], list[int], list[int]]
TLabels = list[int] | Tensor


def labels2list(labels: TLabels | Sequence[int] | np.ndarray) -> list[int]:
    """Labels (a tensor ``[B]`` / ``[B, 1]``, a numpy array, a list or tuple) as a new list (OML's name).

    >>> labels2list(torch.tensor([[3], [1]])), labels2list((2, 2))
    ([3, 1], [2, 2])
    """
    if isinstance(labels, Tensor):
        return labels.reshape(-1).tolist() if labels.ndim == 2 and labels.shape[1] == 1 else labels.tolist()
    if isinstance(labels, np.ndarray):
        return labels.reshape(-1).tolist() if labels.ndim == 2 and labels.shape[1] == 1 else labels.tolist()
    if isinstance(labels, (list, tuple)):
        return list(labels)
    raise TypeError(
        f"`labels` must be a list, a tuple, a numpy array or a tensor, got {type(labels).__name__}"
    )


def check_batch_labels(labels: Tensor | Sequence[int], n_features: int | None = None) -> None:
    """Raises :class:`~oml_fast.errors.InvalidInputError` (a ``ValueError`` and an ``AssertionError``, as
    OML asserts) unless the batch has >= 2 labels and every label has >= 2 items.

    >>> check_batch_labels(torch.tensor([0, 0, 1, 1]))
    >>> check_batch_labels([0, 0, 1])
    Traceback (most recent call last):
    ...
    oml_fast.errors.InvalidInputError: every label in the batch needs at least 2 items; label 1 has 1 (use BalanceSampler with n_instances >= 2)
    """
    labels_t = labels if isinstance(labels, Tensor) else torch.as_tensor(list(labels))
    if n_features is not None and labels_t.numel() != n_features:
        raise InvalidInputError(
            f"`labels` has {labels_t.numel()} entries but `features` has {n_features} rows"
        )
    unique, counts = torch.unique(labels_t.reshape(-1), return_counts=True)
    if unique.numel() < 2:
        raise InvalidInputError(
            f"the batch needs at least 2 distinct labels to form triplets, got {unique.numel()} "
            "(use BalanceSampler with n_labels >= 2)"
        )
    if bool((counts < 2).any()):
        bad = int(torch.nonzero(counts < 2)[0, 0])
        raise InvalidInputError(
            f"every label in the batch needs at least 2 items; label {int(unique[bad])} has {int(counts[bad])} "
            "(use BalanceSampler with n_instances >= 2)"
        )


class ITripletsMiner(ABC):
    """Turns a batch of features and labels into the features of triplets ``(anchor, positive, negative)``."""

    @abstractmethod
    def sample(self, features: Tensor, labels: TLabels) -> TTriplets:
        """
        Args:
            features (Tensor[B, D]): the batch's embeddings.
            labels (Tensor[B] or list of B ints): their labels.

        Returns:
            Three ``Tensor[T, D]``: the anchors, positives and negatives of ``T`` triplets.
        """


class ITripletsMinerInBatch(ITripletsMiner):
    """A miner that picks triplets among the items of the batch by their indices (see the module docs).

    The batch must hold >= 2 labels with >= 2 items each (``BalanceSampler`` guarantees it).
    """

    @staticmethod
    def _check_input_labels(labels: list[int]) -> None:
        """Raises ``InvalidInputError`` (also an ``AssertionError``) unless >= 2 labels have >= 2 items each."""
        check_batch_labels(labels)

    @abstractmethod
    def _sample(self, features: Tensor, labels: list[int]) -> TTripletsIds:
        """Indices ``(anchors, positives, negatives)`` of the triplets, as lists of ints (or int tensors).

        Args:
            features (Tensor[B, D]): the batch's embeddings.
            labels: the ``B`` labels, a list of ints.
        """

    def sample(self, features: Tensor, labels: TLabels) -> TTriplets:
        labels_list = labels2list(labels)
        if len(labels_list) != len(features):
            raise InvalidInputError(
                f"`labels` has {len(labels_list)} entries but `features` has {len(features)} rows"
            )
        self._check_input_labels(labels_list)
        ids_a, ids_p, ids_n = self._sample(features, labels=labels_list)
        return features[ids_a], features[ids_p], features[ids_n]


__all__ = [
    "TTriplets",
    "TTripletsIds",
    "TLabels",
    "labels2list",
    "check_batch_labels",
    "ITripletsMiner",
    "ITripletsMinerInBatch",
]
