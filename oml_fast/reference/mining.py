"""Pure-PyTorch twin of the ``hard_mining`` op (same signature, same tie rules).

It materialises the full ``B x B`` distance matrix, so it is only meant for tests and small batches.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..ops import checks
from .distance import pairwise_distance


def _distances(embeddings: Tensor, metric: str) -> Tensor:
    # The definitions the kernel's keys approximate, from differences / elementwise products (so that
    # equal rows give bitwise equal distances).
    return pairwise_distance(embeddings.double(), embeddings.double(), metric)


def _select(dist_row: Tensor, candidates: Tensor, n: int, hardest_is_largest: bool) -> Tensor:
    out = torch.full((n,), -1, dtype=torch.long)
    idx = torch.nonzero(candidates & ~torch.isnan(dist_row)).flatten()
    if n == 0 or idx.numel() == 0:
        return out
    values = dist_row[idx]
    # Stable sort over ascending indices gives "smaller index first" among equal distances.
    order = torch.sort(values, descending=hardest_is_largest, stable=True).indices
    chosen = idx[order[:n]]
    out[: chosen.numel()] = chosen
    return out


def hard_mining(
    embeddings: Tensor,
    labels: Tensor,
    n_positive: int,
    n_negative: int,
    metric: str = "euclidean",
    anchor_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Indices of the ``n_positive`` farthest same-label and ``n_negative`` nearest other-label items.

    Args:
        embeddings: ``Tensor[B, D]`` floating point.
        labels: ``Tensor[B]`` integer labels.
        n_positive: number of positives per anchor (>= 0).
        n_negative: number of negatives per anchor (>= 0).
        metric: ``euclidean``, ``sqeuclidean``, ``cosine`` or ``dot``.
        anchor_mask: optional ``Tensor[B]`` bool, ``True`` where the row may be an anchor.

    Returns:
        ``(positives Tensor[B, n_positive] int64, negatives Tensor[B, n_negative] int64)``, hardest first,
        ties broken by the smaller index, ``-1`` padding. An anchor is never its own positive; NaN or
        inf embeddings raise ``ValueError``; rows excluded by ``anchor_mask`` are all ``-1``.

    >>> x = torch.tensor([[0.0], [1.0], [3.0], [4.0]])
    >>> pos, neg = hard_mining(x, torch.tensor([0, 0, 1, 1]), 1, 1)
    >>> pos.flatten().tolist(), neg.flatten().tolist()
    ([1, 0, 3, 2], [2, 2, 1, 1])
    """
    checks.check_hard_mining_inputs(embeddings, labels, n_positive, n_negative, metric, anchor_mask)
    checks.check_finite(embeddings, "embeddings", "hard_mining")
    b = embeddings.shape[0]
    dist = _distances(embeddings, metric).cpu()
    labels = labels.cpu()
    same = labels[:, None] == labels[None, :]
    not_self = ~torch.eye(b, dtype=torch.bool)
    positives = torch.full((b, n_positive), -1, dtype=torch.long)
    negatives = torch.full((b, n_negative), -1, dtype=torch.long)
    for i in range(b):
        if anchor_mask is not None and not bool(anchor_mask[i]):
            continue
        positives[i] = _select(dist[i], same[i] & not_self[i], n_positive, hardest_is_largest=True)
        negatives[i] = _select(dist[i], ~same[i], n_negative, hardest_is_largest=False)
    device = embeddings.device
    return positives.to(device), negatives.to(device)


def triplet_distances(
    embeddings: Tensor, anchors: Tensor | None, positives: Tensor, negatives: Tensor
) -> tuple[Tensor, Tensor]:
    """Twin of the private ``_triplet_distances`` op: ``|x[a_t] - x[p_t]|`` and ``|x[a_t] - x[n_t]|``
    (anchor t is row t when ``anchors`` is None), differentiable through autograd."""
    a = embeddings if anchors is None else embeddings[anchors]
    return torch.linalg.vector_norm(a - embeddings[positives], dim=1), torch.linalg.vector_norm(
        a - embeddings[negatives], dim=1
    )


__all__ = ["hard_mining", "triplet_distances"]
