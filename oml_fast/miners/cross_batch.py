"""Triplets across batches: a MoCo-like memory bank of detached features of previous batches."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..errors import InvalidInputError
from .all_triplets import all_triplet_ids
from .base import ITripletsMiner, TLabels, check_batch_labels, labels_to_tensor


def positive_pairs(labels: Tensor, n: int | None = None, generator: torch.Generator | None = None) -> Tensor:
    """Ordered pairs ``(i, j)``, ``i != j``, of equal labels: ``Tensor[P, 2]`` int64.

    With ``n=None`` all of them (by ascending ``i``, then ``j``); otherwise ``n`` pairs drawn uniformly
    (without replacement when there are enough, with replacement otherwise). When no label has two
    items there is no pair, and the result is empty: never a loop waiting for one.

    >>> positive_pairs(torch.tensor([5, 7, 5])).tolist()
    [[0, 2], [2, 0]]
    >>> positive_pairs(torch.tensor([1, 2, 3]), n=4).shape
    torch.Size([0, 2])
    """
    same = labels[:, None] == labels[None, :]
    same.fill_diagonal_(False)
    pairs = torch.nonzero(same)
    if n is None or len(pairs) == 0:
        return pairs
    device = labels.device
    if n <= len(pairs):
        chosen = torch.randperm(len(pairs), generator=generator)[:n]
    else:
        chosen = torch.randint(0, len(pairs), (n,), generator=generator)
    return pairs[chosen.to(device)]


class TripletMinerWithMemory(ITripletsMiner):
    """All in-batch triplets, plus triplets that take anchor-positive pairs or negatives from a bank
    of the features of the previous ``bank_size_in_batches`` batches (detached, MoCo-like).

    Args:
        bank_size_in_batches: bank size, in batches (>= 1).
        tri_expand_k: the output holds about ``tri_expand_k`` times the in-batch triplets: half of the
            extra ones have anchor and positive from the bank and the negative from the batch, the
            other half anchor and positive from the batch and the negative from the bank. ``1`` adds
            none.

    :meth:`sample` returns ``(anchors, positives, negatives, is_original_tri)``: features
    ``Tensor[T, D]`` and a bool ``Tensor[T]`` marking the in-batch triplets (they come last, as in
    OML). The bank starts with placeholder items of distinct negative labels, so bank-side triplets
    appear once real batches have been stored. Every batch must have the size of the first one.

    Difference from OML: OML's sampler of bank pairs loops until it has found enough pairs, which never
    ends while the bank holds no two items of a label (always the case at the start with
    ``bank_size_in_batches=1``). Here bank pairs are drawn uniformly from the existing ones, and when
    there are none that part is simply empty.

    >>> torch.manual_seed(0) and None
    >>> miner = TripletMinerWithMemory(bank_size_in_batches=1, tri_expand_k=3)
    >>> a, p, n, is_orig = miner.sample(torch.randn(4, 8), torch.tensor([0, 0, 1, 1]))
    >>> int(is_orig.sum()), len(a)  # 8 in-batch triplets; the fresh bank gives only bank negatives
    (8, 16)
    """

    def __init__(self, bank_size_in_batches: int, tri_expand_k: int):
        if int(bank_size_in_batches) < 1:
            raise InvalidInputError(f"`bank_size_in_batches` must be >= 1, got {bank_size_in_batches}")
        if int(tri_expand_k) < 1:
            raise InvalidInputError(f"`tri_expand_k` must be >= 1, got {tri_expand_k}")
        self.bank_size_in_batches = int(bank_size_in_batches)
        self.tri_expand_k = int(tri_expand_k)
        self.bank_features: Tensor | None = None
        self.bank_labels: Tensor | None = None
        self.bs = -1
        self.bank_size = -1
        self.ptr = 0

    @torch.no_grad()
    def _allocate_if_needed(self, features: Tensor) -> None:
        if self.bank_features is not None:
            return
        self.bs, feat_dim = features.shape
        self.bank_size = self.bank_size_in_batches * self.bs
        # Placeholders: labels -1, -2, ..., -bs (repeated per batch slot) and one-hot features.
        self.bank_labels = -torch.arange(1, self.bs + 1, device=features.device).repeat(
            self.bank_size_in_batches
        )
        self.bank_features = torch.zeros(
            self.bank_size, feat_dim, dtype=features.dtype, device=features.device
        )
        self.bank_features[torch.arange(self.bank_size), (-self.bank_labels - 1) % feat_dim] = 1

    def get_pos_pairs(self, lbl2idx: dict[Any, Tensor], n: int | None = None) -> Tensor:
        """OML's helper: ordered pairs ``(i, j)`` of distinct items that share a label, ``LongTensor[P, 2]``.

        Args:
            lbl2idx: label -> the indices of its items.
            n: how many pairs (drawn uniformly; with replacement when there are fewer); None: all of them.
                Without any pair the result is empty (OML's loops forever).
        """
        groups = [torch.as_tensor(ids).reshape(-1).long() for ids in lbl2idx.values()]
        if not groups:
            return torch.zeros(0, 2, dtype=torch.long)
        ids = torch.cat(groups)
        owners = torch.repeat_interleave(torch.arange(len(groups)), torch.tensor([len(g) for g in groups]))
        return ids[positive_pairs(owners, n)]

    @staticmethod
    def take_tri_by_mask(
        ii_a: Tensor, ii_p: Tensor, ii_n: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """OML's helper: the triplets where ``mask`` is True."""
        return ii_a[mask], ii_p[mask], ii_n[mask]

    @torch.no_grad()
    def update_bank(self, features: Tensor, labels: Tensor) -> None:
        assert self.bank_features is not None and self.bank_labels is not None
        self.bank_features[self.ptr : self.ptr + self.bs] = features.detach()
        self.bank_labels[self.ptr : self.ptr + self.bs] = labels
        self.ptr = (self.ptr + self.bs) % self.bank_size

    def sample(self, features: Tensor, labels: TLabels) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # type: ignore[override]
        labels_t = labels_to_tensor(labels, features.device)
        check_batch_labels(labels_t, len(features))
        self._allocate_if_needed(features)
        if len(features) != self.bs:
            raise InvalidInputError(
                f"TripletMinerWithMemory needs batches of the size of the first one ({self.bs}), got {len(features)}"
            )
        assert self.bank_features is not None and self.bank_labels is not None
        device = features.device

        # part 1: anchor, positive and negative from the batch
        a1, p1, n1 = all_triplet_ids(labels_t)
        n_extra = int(len(a1) * (self.tri_expand_k - 1) / 2)

        # part 2: anchor and positive from the bank, negative from the batch
        pairs2 = positive_pairs(self.bank_labels, n_extra)
        a2, p2 = pairs2[:, 0], pairs2[:, 1]
        n2 = torch.randint(0, self.bs, (len(a2),), device=device)
        keep2 = self.bank_labels[a2] != labels_t[n2]
        a2, p2, n2 = a2[keep2], p2[keep2], n2[keep2]

        # part 3: anchor and positive from the batch, negative from the bank
        pairs3 = positive_pairs(labels_t, n_extra)
        a3, p3 = pairs3[:, 0], pairs3[:, 1]
        n3 = torch.randint(0, self.bank_size, (len(a3),), device=device)
        keep3 = labels_t[a3] != self.bank_labels[n3]
        a3, p3, n3 = a3[keep3], p3[keep3], n3[keep3]

        bank = self.bank_features
        anchors = torch.cat([features[a3], bank[a2], features[a1]])
        positives = torch.cat([features[p3], bank[p2], features[p1]])
        negatives = torch.cat([bank[n3], features[n2], features[n1]])

        self.update_bank(features, labels_t)

        is_original_tri = torch.zeros(len(anchors), dtype=torch.bool)
        is_original_tri[len(anchors) - len(a1) :] = True
        return anchors, positives, negatives, is_original_tri


__all__ = ["TripletMinerWithMemory", "positive_pairs"]
