"""Differentiable Precision@k (Recall@k Surrogate, https://arxiv.org/abs/2108.11179), with O(B^2) memory."""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import InvalidInputError
from ..miners.base import TLabels, labels_to_tensor
from ._common import check_reduction, reduce

# Rows per chunk are chosen so that one [rows, M, M] temporary stays near this many elements.
_CHUNK_ELEMENTS = 1 << 24


def _rows_per_chunk(m: int) -> int:
    return max(1, _CHUNK_ELEMENTS // max(1, m * m))


class _SoftRank(torch.autograd.Function):
    """``rank[i, j] = sum_l sigmoid((d[i, j] - d[i, l]) / t)`` without the ``[N, M, M]`` tensor.

    Forward and backward run over chunks of rows; backward recomputes the sigmoids of its chunk.
    """

    @staticmethod
    def forward(ctx, distances: Tensor, temperature: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(distances)
        ctx.temperature = temperature
        rank = torch.empty_like(distances)
        step = _rows_per_chunk(distances.shape[1])
        for start in range(0, len(distances), step):
            d = distances[start : start + step]
            rank[start : start + step] = torch.sigmoid((d[:, :, None] - d[:, None, :]) / temperature).sum(
                dim=2
            )
        return rank

    @staticmethod
    def backward(ctx, grad_rank: Tensor):  # type: ignore[override]
        (distances,) = ctx.saved_tensors
        t = ctx.temperature
        grad = torch.empty_like(distances)
        step = _rows_per_chunk(distances.shape[1])
        for start in range(0, len(distances), step):
            d = distances[start : start + step]
            g = grad_rank[start : start + step]
            s = torch.sigmoid((d[:, :, None] - d[:, None, :]) / t)
            w = s * (1 - s) * g[:, :, None] / t  # d rank[i,j] / d(d[i,j] - d[i,l]), times grad
            # rank[i, j] grows with d[i, j] and falls with every d[i, l].
            grad[start : start + step] = w.sum(dim=2) - w.sum(dim=1)
        return grad, None


def surrogate_precision(
    distances: Tensor, mask_gt: Tensor, k: int, t1: float, t2: float, reduction: str = "mean"
) -> Tensor:
    """Smooth Precision@k of every query row (OML's formula).

    ``rank[i, j] = sum_l sigmoid((d[i, j] - d[i, l]) / t2)``, and
    ``precision[i] = sum_j sigmoid((k - rank[i, j]) / t1) * gt[i, j] / min(sum_j gt[i, j], k)``.

    Args:
        distances (Tensor[N, M]): query-to-gallery distances.
        mask_gt (Tensor[N, M] bool): relevant pairs.
        k, t1, t2: the cut-off and the two sigmoid temperatures.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``Tensor[N]``).

    Memory is ``O(N * M)`` (OML's is ``O(N * M^2)``): ranks are computed and differentiated in chunks.

    >>> d = torch.tensor([[0.0, 1.0, 2.0]])
    >>> round(surrogate_precision(d, torch.tensor([[True, True, False]]), k=2, t1=0.01, t2=0.01).item(), 3)
    1.0
    """
    rank = _SoftRank.apply(distances, float(t2))
    gt = mask_gt.to(distances.dtype)
    precision = (torch.sigmoid((k - rank) / t1) * gt).sum(dim=1) / torch.clip(gt.sum(dim=1), max=k)
    return reduce(precision, reduction)


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
