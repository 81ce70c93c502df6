"""Differentiable Precision@k (Recall@k Surrogate, https://arxiv.org/abs/2108.11179), with O(B^2) memory."""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import InvalidInputError
from ..functional.losses import check_reduction, surrogate_precision
from ..miners.base import TLabels, labels_to_tensor


class SurrogatePrecision(torch.nn.Module):
    """Loss ``1 - smooth Precision@k`` over the batch, every item being a query against the whole
    batch (itself included, at distance 0; hence ``k + 1`` inside, as in OML).

    Args:
        k: the ``k`` of Precision@k (> 0).
        temperature1: temperature of the sigmoid replacing ``rank <= k``.
        temperature2: temperature of the sigmoids that make the rank smooth (the paper: 1.0 and 0.01).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    ``forward(features Tensor[B, D], labels Tensor[B]) -> Tensor``. Memory ``O(B^2)`` (B = 512 takes a
    few MiB beyond the distance matrix), time ``O(B^3)`` as in the original.

    >>> criterion = SurrogatePrecision(k=1, temperature1=0.01)
    >>> x = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    >>> round(criterion(x, torch.tensor([0, 0, 1, 1])).item(), 3)
    0.0
    """

    criterion_name = "surrogate_precision"

    def __init__(
        self, k: int, temperature1: float = 1.0, temperature2: float = 0.01, reduction: str = "mean"
    ):
        super().__init__()
        if not isinstance(k, int) or k <= 0:
            raise InvalidInputError(f"`k` must be a positive int, got {k!r}")
        if temperature1 <= 0 or temperature2 <= 0:
            raise InvalidInputError(f"temperatures must be > 0, got {temperature1}, {temperature2}")
        self.k = k + 1  # every item finds itself first, at distance 0
        self.temperature1 = temperature1
        self.temperature2 = temperature2
        self.reduction = check_reduction(reduction)

    def forward(self, features: Tensor, labels: TLabels) -> Tensor:
        labels_t = labels_to_tensor(labels, features.device)
        if len(labels_t) != len(features):
            raise InvalidInputError(
                f"`labels` has {len(labels_t)} entries but `features` has {len(features)} rows"
            )
        distances = _euclidean_distances(features)
        mask_gt = labels_t[:, None] == labels_t[None, :]
        return 1 - surrogate_precision(
            distances, mask_gt, k=self.k, t1=self.temperature1, t2=self.temperature2, reduction=self.reduction
        )


def _euclidean_distances(x: Tensor) -> Tensor:
    # Exact differences would cost O(B^2 D) memory; the GEMM expansion is fine here because every
    # distance is recomputed differentiably and clamped before the sqrt; the diagonal is exactly 0.
    sq = x.pow(2).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2 * x @ x.T).clamp_min(0)
    eye = torch.eye(len(x), dtype=torch.bool, device=x.device)
    d2 = d2.masked_fill(eye, 0)
    # sqrt has an infinite gradient at 0: take it only where the distance is positive.
    positive = d2 > 0
    return torch.where(positive, d2.masked_fill(~positive, 1).sqrt(), torch.zeros_like(d2))


__all__ = ["SurrogatePrecision", "surrogate_precision"]
