"""Every valid triplet of the batch, optionally a random subset of them."""

from __future__ import annotations

import sys

import torch
from torch import Tensor

from .base import InBatchTripletsMiner, TLabels, TTripletsIds, labels_to_tensor


def all_triplet_ids(labels: Tensor) -> TTripletsIds:
    """All ``(a, p, n)`` with ``labels[a] == labels[p]``, ``a != p`` and ``labels[n] != labels[a]``.

    Ordered by anchor, then positive, then negative (ascending indices).

    >>> a, p, n = all_triplet_ids(torch.tensor([0, 0, 1]))
    >>> list(zip(a.tolist(), p.tolist(), n.tolist()))
    [(0, 1, 2), (1, 0, 2)]
    """
    same = labels[:, None] == labels[None, :]
    same.fill_diagonal_(False)
    ids_a, ids_p = torch.nonzero(same, as_tuple=True)
    negative_mask = labels[None, :] != labels[ids_a][:, None]  # [n_pairs, B]
    pair_idx, ids_n = torch.nonzero(negative_mask, as_tuple=True)
    return ids_a[pair_idx], ids_p[pair_idx], ids_n


class AllTripletsMiner(InBatchTripletsMiner):
    """All possible triplets of the batch; when there are more than ``max_output_triplets`` of them, a
    uniformly random subset of that size (torch's global RNG, so ``torch.manual_seed`` makes it
    reproducible).

    >>> miner = AllTripletsMiner()
    >>> a, p, n = miner.sample(torch.eye(4), [0, 0, 1, 1])
    >>> a.shape
    torch.Size([8, 4])
    """

    def __init__(self, max_output_triplets: int = sys.maxsize):
        if int(max_output_triplets) < 1:
            raise ValueError(f"`max_output_triplets` must be >= 1, got {max_output_triplets}")
        self._max_out_triplets = int(max_output_triplets)

    def _sample(self, features: Tensor | None = None, labels: TLabels = ()) -> TTripletsIds:
        labels_t = labels_to_tensor(labels)
        ids_a, ids_p, ids_n = all_triplet_ids(labels_t)
        if ids_a.numel() > self._max_out_triplets:
            keep = torch.randperm(ids_a.numel())[: self._max_out_triplets].to(ids_a.device)
            ids_a, ids_p, ids_n = ids_a[keep], ids_p[keep], ids_n[keep]
        return ids_a, ids_p, ids_n


__all__ = ["AllTripletsMiner", "all_triplet_ids"]
