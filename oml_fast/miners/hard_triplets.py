"""Batch-hard mining: for every anchor, its farthest positive and its nearest negative."""

from __future__ import annotations

import torch
from torch import Tensor

from ..ops.mining import hard_mining
from .base import InBatchTripletsMiner, TTripletsIdsTensor, rankable


class HardTripletsMiner(InBatchTripletsMiner):
    """Every item of the batch is an anchor once, with its hardest positive (largest Euclidean
    distance, same label) and hardest negative (smallest distance, other label).

    Runs on the compiled :func:`oml_fast.ops.hard_mining` op: no ``B x B`` matrix is kept.
    Ties are broken by the smaller index.

    Difference from OML: OML counts the anchor itself among its positives, so when all the other
    items of its label are exact duplicates of the anchor, OML may return ``positive == anchor``.
    Here the anchor is never its own positive (an exact duplicate at another index still is one).

    A row with NaN or inf features is mined as if those entries were 0 and stays in the triplets (it
    is an anchor), so a loss over them is NaN, as in OML (:func:`~oml_fast.miners.base.rankable`).

    >>> x = torch.tensor([[0.0], [1.0], [3.0], [5.0]])
    >>> HardTripletsMiner()._sample(x, labels=[0, 0, 1, 1])
    ([0, 1, 2, 3], [1, 0, 3, 2], [2, 2, 1, 1])
    """

    def _sample_ids(self, features: Tensor, labels: Tensor) -> TTripletsIdsTensor:
        positives, negatives = hard_mining(rankable(features), labels, 1, 1, "euclidean")
        ids_a = torch.arange(len(features), device=features.device)
        ids_p, ids_n = positives[:, 0], negatives[:, 0]
        # Only reachable without the label check of `sample` (a label with one item, or one label).
        valid = (ids_p >= 0) & (ids_n >= 0)
        if not bool(valid.all()):
            ids_a, ids_p, ids_n = ids_a[valid], ids_p[valid], ids_n[valid]
        return ids_a, ids_p, ids_n


__all__ = ["HardTripletsMiner"]
