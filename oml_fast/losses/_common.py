"""Small helpers shared by the losses: reductions and row-wise distances."""

from __future__ import annotations

import torch
from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"`reduction` must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def reduce(loss: Tensor, reduction: str) -> Tensor:
    """``mean`` / ``sum`` / ``none`` of a per-item loss (the mean of an empty loss is 0, not NaN)."""
    if reduction == "mean":
        return loss.mean() if loss.numel() > 0 else loss.sum()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"`reduction` must be one of {REDUCTIONS}, got {reduction!r}")


def elementwise_dist(x1: Tensor, x2: Tensor) -> Tensor:
    """Euclidean distance of matching rows: ``Tensor[N, D], Tensor[N, D] -> Tensor[N]``.

    Computed from the differences (exact, O(N * D)); the gradient at zero distance is 0, not NaN.

    >>> elementwise_dist(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]]))
    tensor([5.])
    """
    if x1.shape != x2.shape or x1.dim() != 2:
        raise ValueError(
            f"expected two [N, D] tensors of the same shape, got {tuple(x1.shape)} and {tuple(x2.shape)}"
        )
    return torch.linalg.vector_norm(x1 - x2, dim=1)
