"""Loss functions on distances (OML 4.x's ``oml.functional.losses``): reductions and the smooth Precision@k."""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import InvalidInputError

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise InvalidInputError(f"`reduction` must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def get_reduced(tensor: Tensor, reduction: str) -> Tensor:
    """``mean`` / ``sum`` / ``none`` of a per-item loss (OML's name). The mean of an empty loss is 0, not
    NaN (OML's gives NaN): a batch without triplets contributes nothing.

    >>> get_reduced(torch.tensor([1.0, 3.0]), "mean"), get_reduced(torch.zeros(0), "mean")
    (tensor(2.), tensor(0.))
    """
    if reduction == "mean":
        return tensor.mean() if tensor.numel() > 0 else tensor.sum()
    if reduction == "sum":
        return tensor.sum()
    if reduction == "none":
        return tensor
    raise InvalidInputError(f"`reduction` must be one of {REDUCTIONS}, got {reduction!r}")


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
    return get_reduced(precision, reduction)


__all__ = ["REDUCTIONS", "check_reduction", "get_reduced", "surrogate_precision"]
