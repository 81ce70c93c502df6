"""Row-wise distances shared by the losses (reductions: :mod:`oml_fast.functional.losses`)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..ops import mining as _mining_ops  # noqa: F401  (registers the op's autograd)
from ..ops.checks import all_finite


def nan_if_not_finite(loss: Tensor, features: Tensor) -> Tensor:
    """``loss`` if every entry of ``features`` is finite, else NaN (same shape; no device sync).

    The NaN policy of the losses with a miner (docs/hostile_inputs.md): a batch holding NaN or inf
    features gives a NaN loss, as in OML, never a finite value computed from the other rows. The miners
    already keep such rows in their triplets; this also covers a row that no triplet holds.

    >>> nan_if_not_finite(torch.tensor(0.5), torch.tensor([[1.0], [float("inf")]]))
    tensor(nan)
    """
    finite = all_finite(features)
    return torch.where(finite, loss, torch.full_like(loss, float("nan")))


class _RowDistance(torch.autograd.Function):
    """``|x1 - x2|`` per row with a hand-written backward: two passes over ``[N, D]`` instead of the
    four of ``vector_norm``'s generic backward, and a zero gradient (not NaN) at zero distance."""

    @staticmethod
    def forward(ctx, x1: Tensor, x2: Tensor) -> Tensor:  # type: ignore[override]
        diff = x1 - x2
        dist = torch.linalg.vector_norm(diff, dim=1)
        ctx.save_for_backward(diff, dist)
        return dist

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        diff, dist = ctx.saved_tensors
        scale = torch.where(dist > 0, grad / dist, torch.zeros_like(dist))
        grad_x1 = diff * scale[:, None]
        return grad_x1, -grad_x1


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
    return _RowDistance.apply(x1, x2)


def triplet_distances(
    features: Tensor, ids_a: Tensor | None, ids_p: Tensor, ids_n: Tensor
) -> tuple[Tensor, Tensor]:
    """Anchor-positive and anchor-negative Euclidean distances of index triplets into one batch:
    ``Tensor[B, D], Tensor[T] | None, Tensor[T], Tensor[T] -> (Tensor[T], Tensor[T])``.

    The distances of :func:`elementwise_dist` on the gathered rows (up to rounding: summed in float64 on
    the CPU), without gathering them: the compiled ``_triplet_distances`` op reads the rows in place and
    its backward writes one ``[B, D]`` gradient (the gradient at zero distance is 0). ``ids_a`` None: the
    anchors are the rows ``0..B-1`` in order.

    >>> x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    >>> triplet_distances(x, None, torch.tensor([1, 0, 0]), torch.tensor([2, 2, 1]))
    (tensor([5., 5., 1.]), tensor([1.0000, 4.4721, 4.4721]))
    """
    return torch.ops.oml_fast._triplet_distances.default(features, ids_a, ids_p, ids_n)
