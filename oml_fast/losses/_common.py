"""Row-wise distances shared by the losses (reductions: :mod:`oml_fast.functional.losses`)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

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


class _TripletDistances(torch.autograd.Function):
    """``|x[a] - x[p]|`` and ``|x[a] - x[n]|`` per triplet, straight from the batch ``x``: one gradient
    buffer for the batch (``index_add`` of each part) instead of three gathered ``[T, D]`` tensors, each
    with its own zero-filled gradient, summed afterwards. ``ids_a`` None means every row in order."""

    @staticmethod
    def forward(ctx, features: Tensor, ids_a: Tensor | None, ids_p: Tensor, ids_n: Tensor):  # type: ignore[override]
        anchors = features if ids_a is None else features.index_select(0, ids_a)
        # Each difference is written over its gathered rows: one [T, D] buffer per end, not two.
        diff_p = features.index_select(0, ids_p)
        torch.sub(anchors, diff_p, out=diff_p)
        diff_n = features.index_select(0, ids_n)
        torch.sub(anchors, diff_n, out=diff_n)
        dist_p = torch.linalg.vector_norm(diff_p, dim=1)
        dist_n = torch.linalg.vector_norm(diff_n, dim=1)
        ctx.save_for_backward(diff_p, diff_n, dist_p, dist_n, ids_a, ids_p, ids_n)
        ctx.batch_shape = features.shape
        return dist_p, dist_n

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_p: Tensor | None, grad_n: Tensor | None):  # type: ignore[override]
        diff_p, diff_n, dist_p, dist_n, ids_a, ids_p, ids_n = ctx.saved_tensors
        # d|a - o| / d o = -(a - o) / |a - o| = -(d / d a): each end's rows are scaled to the other end's
        # gradient, so the scatter below adds without `alpha` (index_add_ with alpha=-1 is ~2.5x slower
        # on CPU) and the anchors take minus their sum.
        parts = []  # (gradient of the other end's rows, their ids)
        for grad, diff, dist, ids in ((grad_p, diff_p, dist_p, ids_p), (grad_n, diff_n, dist_n, ids_n)):
            if grad is not None:
                scale = torch.where(dist > 0, grad / dist, torch.zeros_like(dist)).neg_()
                parts.append((diff * scale[:, None], ids))
        if not parts:
            return diff_p.new_zeros(ctx.batch_shape), None, None, None
        if len(parts) == 2:
            grad_anchors = torch.add(parts[0][0], parts[1][0]).neg_()
        else:  # a fresh buffer: the gradient below must not alias the rows it adds
            grad_anchors = parts[0][0].neg()
        if ids_a is None:  # the anchors are the batch's rows in order: their gradient is the buffer
            grad_features = grad_anchors
        else:
            grad_features = diff_p.new_zeros(ctx.batch_shape).index_add_(0, ids_a, grad_anchors)
        for grad_rows, ids in parts:
            grad_features.index_add_(0, ids, grad_rows)
        return grad_features, None, None, None


def triplet_distances(
    features: Tensor, ids_a: Tensor | None, ids_p: Tensor, ids_n: Tensor
) -> tuple[Tensor, Tensor]:
    """Anchor-positive and anchor-negative Euclidean distances of index triplets into one batch:
    ``Tensor[B, D], Tensor[T] | None, Tensor[T], Tensor[T] -> (Tensor[T], Tensor[T])``.

    The values of :func:`elementwise_dist` on the gathered rows, bit for bit; the gradient reaches the batch
    through one ``[B, D]`` buffer. ``ids_a`` None: the anchors are the rows ``0..B-1`` in order.

    >>> x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    >>> triplet_distances(x, None, torch.tensor([1, 0, 0]), torch.tensor([2, 2, 1]))
    (tensor([5., 5., 1.]), tensor([1.0000, 4.4721, 4.4721]))
    """
    return _TripletDistances.apply(features, ids_a, ids_p, ids_n)
