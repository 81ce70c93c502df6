"""Positive and negative pairs for pair losses, taken from the triplets of another miner."""

from __future__ import annotations

import torch
from torch import Tensor

from .all_triplets import AllTripletsMiner
from .base import InBatchTripletsMiner, TLabels, check_batch_labels, labels_to_tensor
from .hard_triplets import HardTripletsMiner


def _unique_unordered_pairs(first: Tensor, second: Tensor, size: int) -> tuple[Tensor, Tensor]:
    low, high = torch.minimum(first, second), torch.maximum(first, second)
    codes = torch.unique(low * size + high)  # sorted, so the output order is deterministic
    return codes // size, codes % size


class PairsMiner:
    """Splits the triplets of a miner into unique unordered pairs ``(i, j)`` with ``i < j``.

    Args:
        hard_mining: ``True`` (default) takes the triplets of :class:`HardTripletsMiner`, ``False``
            those of :class:`AllTripletsMiner`.

    :meth:`sample` returns ``(ids_a, ids_b, is_negative)``: positive pairs first, then negative
    pairs, each sorted.

    >>> a, b, is_negative = PairsMiner().sample(torch.tensor([[0.0], [1.0], [3.0], [5.0]]), [0, 0, 1, 1])
    >>> a.tolist(), b.tolist(), is_negative.tolist()
    ([0, 2, 0, 1, 1], [1, 3, 2, 2, 3], [False, False, True, True, True])
    """

    def __init__(self, hard_mining: bool = True):
        self.hard_mining = hard_mining
        self._miner: InBatchTripletsMiner = HardTripletsMiner() if hard_mining else AllTripletsMiner()

    def sample(self, features: Tensor, labels: TLabels) -> tuple[Tensor, Tensor, Tensor]:
        labels_t = labels_to_tensor(labels, features.device)
        check_batch_labels(labels_t, len(features))
        ids_a, ids_p, ids_n = self._miner._sample_ids(features, labels_t)
        size = len(features)
        pos_a, pos_b = _unique_unordered_pairs(ids_a, ids_p, size)
        neg_a, neg_b = _unique_unordered_pairs(ids_a, ids_n, size)
        is_negative = torch.zeros(len(pos_a) + len(neg_a), dtype=torch.bool, device=features.device)
        is_negative[len(pos_a) :] = True
        return torch.cat([pos_a, neg_a]), torch.cat([pos_b, neg_b]), is_negative


__all__ = ["PairsMiner"]
