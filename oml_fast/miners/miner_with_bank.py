"""Cross-batch memory for the n-hard miner: anchors from the batch, positives and negatives from the
batch and a bank of previous batches."""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import InvalidInputError
from .base import ITripletsMiner, TLabels, TTriplets, labels_to_tensor
from .nhard_triplets import NHardTripletsMiner


class MinerWithBank(ITripletsMiner):
    """Mines with :class:`NHardTripletsMiner` over ``batch + bank``, where the bank holds the detached
    features of the previous ``bank_size_in_batches`` batches; only items of the current batch are
    anchors, so every triplet carries a gradient.

    The bank is used once it has been filled completely (before that, only the batch is mined).

    Args:
        bank_size_in_batches: bank size in batches (>= 1).
        miner: an :class:`NHardTripletsMiner`.
        need_logs: fill ``last_logs`` with the average number of unique positives / negatives per
            anchor taken from the bank and from the batch.

    >>> miner = MinerWithBank(bank_size_in_batches=1, miner=NHardTripletsMiner(2, 2))
    >>> x, y = torch.randn(4, 8), torch.tensor([0, 0, 1, 1])
    >>> len(miner.sample(x, y)[0]), len(miner.sample(x, y)[0])  # batch only; then batch + bank
    (8, 16)
    """

    def __init__(self, bank_size_in_batches: int, miner: NHardTripletsMiner, need_logs: bool = True):
        if not isinstance(bank_size_in_batches, int) or bank_size_in_batches < 1:
            raise InvalidInputError(
                f"`bank_size_in_batches` must be an int >= 1, got {bank_size_in_batches!r}"
            )
        if not isinstance(miner, NHardTripletsMiner):
            raise TypeError(f"`miner` must be an NHardTripletsMiner, got {type(miner).__name__}")
        self.miner = miner
        self.bank_size_in_batches = bank_size_in_batches
        self.bank_features: Tensor | None = None
        self.bank_labels: Tensor | None = None
        self.bank_size = -1
        self.is_accumulated = False
        self.ptr = 0
        self.need_logs = need_logs
        self.last_logs: dict[str, float] = {}

    @torch.no_grad()
    def _allocate_if_needed(self, features: Tensor) -> None:
        if self.bank_features is None:
            bs, feat_dim = features.shape
            self.bank_size = self.bank_size_in_batches * bs
            self.bank_labels = torch.empty(self.bank_size, dtype=torch.long, device=features.device)
            self.bank_features = torch.empty(
                self.bank_size, feat_dim, dtype=features.dtype, device=features.device
            )

    @torch.no_grad()
    def _update_bank(self, features: Tensor, labels: Tensor) -> None:
        assert self.bank_features is not None and self.bank_labels is not None
        bs = len(features)
        if self.bank_size % bs != 0:
            raise InvalidInputError(
                f"MinerWithBank needs batches of equal size; the bank holds {self.bank_size}, got {bs}"
            )
        if not self.is_accumulated:
            self.is_accumulated = self.ptr + bs >= self.bank_size
        self.bank_features[self.ptr : self.ptr + bs] = features.detach()
        self.bank_labels[self.ptr : self.ptr + bs] = labels
        self.ptr = (self.ptr + bs) % self.bank_size

    def sample(self, features: Tensor, labels: TLabels) -> TTriplets:
        labels_t = labels_to_tensor(labels, features.device)
        if labels_t.numel() != len(features):
            raise InvalidInputError(
                f"`labels` has {labels_t.numel()} entries but `features` has {len(features)} rows"
            )
        self._allocate_if_needed(features)
        assert self.bank_features is not None and self.bank_labels is not None
        if self.is_accumulated:
            features_miner = torch.cat([features, self.bank_features])
            labels_miner = torch.cat([labels_t, self.bank_labels])
        else:
            features_miner, labels_miner = features, labels_t
        ignore_anchor_mask = torch.zeros(len(labels_miner), dtype=torch.bool, device=features.device)
        ignore_anchor_mask[len(features) :] = True

        ids_a, ids_p, ids_n = self.miner._sample_ids(
            features_miner, labels_miner, ignore_anchor_mask=ignore_anchor_mask
        )
        if self.need_logs:
            self.last_logs = self._prepare_logs(ids_a, ids_p, ids_n, len(features), len(features_miner))
        self._update_bank(features, labels_t)
        return features_miner[ids_a], features_miner[ids_p], features_miner[ids_n]

    @staticmethod
    def _prepare_logs(
        ids_a: Tensor, ids_p: Tensor, ids_n: Tensor, len_batch: int, size: int
    ) -> dict[str, float]:
        logs: dict[str, float] = {}
        anchors = torch.unique(ids_a)
        if anchors.numel() == 0:
            return logs
        for name, ids in (("positives", ids_p), ("negatives", ids_n)):
            codes = torch.unique(ids_a * size + ids)  # unique (anchor, item) pairs
            from_bank = float(((codes % size) >= len_batch).sum()) / anchors.numel()
            logs[f"{name}_from_bank"] = from_bank
            logs[f"{name}_from_batch"] = codes.numel() / anchors.numel() - from_bank
        return logs


__all__ = ["MinerWithBank"]
