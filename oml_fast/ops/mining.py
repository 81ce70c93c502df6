"""``hard_mining``: typed wrapper and fake kernel of the compiled op."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["hard_mining"]


def hard_mining(
    embeddings: Tensor,
    labels: Tensor,
    n_positive: int,
    n_negative: int,
    metric: str = "euclidean",
    anchor_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Per anchor, the ``n_positive`` farthest same-label items and the ``n_negative`` nearest others.

    One fused pass over the batch: inner products are computed tile by tile (GEMM) and reduced at once,
    so memory is ``O(B * (n_positive + n_negative))`` plus a fixed tile buffer; the ``B x B`` distance
    matrix is never kept. Indices only (not differentiable): losses recompute the few selected
    distances themselves.

    Args:
        embeddings (Tensor[B, D]): float32 / float64 (float16 / bfloat16 are reduced in float32).
            Gradients are not tracked (the input is used detached).
        labels (Tensor[B]): integer labels (converted to int64).
        n_positive: positives per anchor (>= 0).
        n_negative: negatives per anchor (>= 0).
        metric: ``"euclidean"`` (default), ``"sqeuclidean"``, ``"cosine"`` or ``"dot"`` (as in
            :func:`oml_fast.ops.pairwise_distance`).
        anchor_mask (Tensor[B] bool, optional): ``True`` where the row may be an anchor; other rows
            get ``-1`` everywhere (they can still be positives and negatives of other anchors).

    Returns:
        ``(positives, negatives)``: ``Tensor[B, n_positive]`` and ``Tensor[B, n_negative]`` int64,
        hardest first (positives by decreasing, negatives by increasing distance), ties broken by the
        smaller index, padded with ``-1`` when an anchor has fewer candidates. An anchor is never its
        own positive (other items identical to it are). Items at a NaN distance are never selected.
        Deterministic.

    >>> x = torch.tensor([[0.0], [1.0], [3.0], [4.0], [10.0]])
    >>> pos, neg = hard_mining(x, torch.tensor([0, 0, 1, 1, 1]), n_positive=2, n_negative=1)
    >>> pos.tolist()
    [[1, -1], [0, -1], [4, 3], [4, 2], [2, 3]]
    >>> neg.flatten().tolist()
    [2, 2, 1, 1, 1]
    """
    if not isinstance(labels, Tensor):
        labels = torch.as_tensor(labels, device=embeddings.device)
    if labels.dtype != torch.long and not labels.is_floating_point() and labels.dtype != torch.bool:
        labels = labels.long()
    return torch.ops.oml_fast.hard_mining.default(
        embeddings.detach(), labels, int(n_positive), int(n_negative), metric, anchor_mask
    )


@torch.library.register_fake("oml_fast::hard_mining")
def _hard_mining_fake(
    embeddings: Tensor,
    labels: Tensor,
    n_positive: int,
    n_negative: int,
    metric: str = "euclidean",
    anchor_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    torch._check(
        embeddings.dim() == 2, lambda: f"`embeddings` must be 2-D [B, D], got {tuple(embeddings.shape)}"
    )
    torch._check(labels.dim() == 1, lambda: f"`labels` must be 1-D, got {tuple(labels.shape)}")
    torch._check(labels.shape[0] == embeddings.shape[0], lambda: "`labels` must have one entry per row")
    torch._check(n_positive >= 0, lambda: f"`n_positive` must be >= 0, got {n_positive}")
    torch._check(n_negative >= 0, lambda: f"`n_negative` must be >= 0, got {n_negative}")
    batch = embeddings.shape[0]
    positives = embeddings.new_empty((batch, n_positive), dtype=torch.long)
    negatives = embeddings.new_empty((batch, n_negative), dtype=torch.long)
    return positives, negatives
