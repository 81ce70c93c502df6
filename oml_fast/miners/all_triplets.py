"""Every valid triplet of the batch, optionally a random subset of them."""

from __future__ import annotations

import sys

import torch
from torch import Tensor

from ..errors import InvalidInputError
from .base import (
    InBatchTripletsMiner,
    TLabels,
    TTripletsIds,
    TTripletsIdsTensor,
    labels_to_tensor,
    tensor_backed,
)


def all_triplet_ids(labels: Tensor) -> TTripletsIdsTensor:
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


def random_subset(ids: TTripletsIdsTensor, max_out_triplets: int) -> TTripletsIdsTensor:
    """At most ``max_out_triplets`` of the triplets, a uniformly random subset (torch's global RNG)."""
    ids_a, ids_p, ids_n = ids
    if ids_a.numel() > max_out_triplets:
        keep = torch.randperm(ids_a.numel())[:max_out_triplets].to(ids_a.device)
        ids_a, ids_p, ids_n = ids_a[keep], ids_p[keep], ids_n[keep]
    return ids_a, ids_p, ids_n


def get_available_triplets(
    labels: TLabels, max_out_triplets: int = sys.maxsize, device: str = "cpu"
) -> TTripletsIds:
    """All valid triplets of ``labels`` (at most ``max_out_triplets``, a random subset), as lists of ints.

    OML's function: computed on ``device``. Order: by anchor, then positive, then negative, unless a
    subset is drawn.

    >>> get_available_triplets([0, 0, 1])
    ([0, 1], [1, 0], [2, 2])
    """
    ids = random_subset(all_triplet_ids(labels_to_tensor(labels, device)), max_out_triplets)
    return ids[0].tolist(), ids[1].tolist(), ids[2].tolist()


class AllTripletsMiner(InBatchTripletsMiner):
    """All possible triplets of the batch; when there are more than ``max_output_triplets`` of them, a
    uniformly random subset of that size (torch's global RNG, so ``torch.manual_seed`` makes it
    reproducible).

    Args:
        max_output_triplets: the most triplets returned.
        device: where :meth:`_sample` (OML's list interface) computes; :meth:`sample` computes on the
            features' device.

    >>> miner = AllTripletsMiner()
    >>> a, p, n = miner.sample(torch.eye(4), [0, 0, 1, 1])
    >>> a.shape
    torch.Size([8, 4])
    """

    def __init__(self, max_output_triplets: int = sys.maxsize, device: str = "cpu"):
        if int(max_output_triplets) < 1:
            raise InvalidInputError(f"`max_output_triplets` must be >= 1, got {max_output_triplets}")
        self._max_out_triplets = int(max_output_triplets)
        self._device = device

    @tensor_backed
    def _sample(self, *_: Tensor, labels: TLabels) -> TTripletsIds:  # type: ignore[override]
        """OML's contract: the features are not needed; ``labels`` a list of ints; lists of ints out."""
        return get_available_triplets(labels, self._max_out_triplets, self._device)

    def _sample_ids(self, features: Tensor, labels: Tensor) -> TTripletsIdsTensor:
        return random_subset(all_triplet_ids(labels), self._max_out_triplets)


__all__ = ["AllTripletsMiner", "all_triplet_ids", "get_available_triplets"]
