"""Hard mining between class centres: the centre of each label is the anchor."""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import InvalidInputError
from .base import ITripletsMiner, TLabels, TTriplets, labels_to_tensor


class HardClusterMiner(ITripletsMiner):
    """One triplet per label of the batch: ``(mean of the label, its item farthest from that mean,
    the nearest mean of another label)``; Euclidean distances, ties to the smaller index.

    The batch must hold the same number (>= 2) of items for each of >= 2 labels (``BalanceSampler``).
    Labels are taken in ascending order.

    >>> x = torch.tensor([[0.0], [2.0], [10.0], [14.0]])
    >>> anchors, positives, negatives = HardClusterMiner().sample(x, [0, 0, 1, 1])
    >>> anchors.flatten().tolist(), positives.flatten().tolist(), negatives.flatten().tolist()
    ([1.0, 12.0], [0.0, 10.0], [12.0, 1.0])
    """

    @staticmethod
    def _check_input_labels(labels: Tensor) -> tuple[Tensor, Tensor]:
        unique, counts = torch.unique(labels, return_counts=True)
        if unique.numel() < 2:
            raise InvalidInputError(
                f"HardClusterMiner needs at least 2 labels in the batch, got {unique.numel()}"
            )
        if not bool((counts == counts[0]).all()):
            raise InvalidInputError(
                "HardClusterMiner needs the same number of items for every label, got counts "
                f"{dict(zip(unique.tolist(), counts.tolist()))}"
            )
        if int(counts[0]) < 2:
            raise InvalidInputError("HardClusterMiner needs at least 2 items for every label, got 1")
        return unique, counts

    def sample(self, features: Tensor, labels: TLabels) -> TTriplets:
        labels_t = labels_to_tensor(labels, features.device)
        if labels_t.numel() != len(features):
            raise InvalidInputError(
                f"`labels` has {labels_t.numel()} entries but `features` has {len(features)} rows"
            )
        unique, counts = self._check_input_labels(labels_t)
        n_labels, n_instances = unique.numel(), int(counts[0])
        # Stable sort groups the items of each label, keeping their order inside the group.
        order = torch.sort(labels_t, stable=True).indices
        grouped = features[order].view(n_labels, n_instances, -1)
        means = grouped.mean(dim=1)
        intra = ((grouped - means[:, None, :]) ** 2).sum(-1)  # [n_labels, n_instances]
        positives = grouped[torch.arange(n_labels, device=features.device), intra.argmax(dim=1)]
        inter = torch.cdist(means.detach(), means.detach())
        inter.fill_diagonal_(float("inf"))
        return means, positives, means[inter.argmin(dim=1)]


__all__ = ["HardClusterMiner"]
