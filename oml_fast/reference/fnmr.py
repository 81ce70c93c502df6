"""Pure-PyTorch twins of the private ``_pair_distance_histogram`` and ``_embedding_pair_histogram`` ops
(same signatures, same results).

The slots of a window are defined in :mod:`oml_fast.ops.fnmr`; this is the same definition written with
tensor ops (the full ``[rows, Ng]`` masks), for the tests.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..ops.fnmr import EmbeddingPass, PairHistogram, Window
from .distance import pairwise_distance


def bin_of(values: Tensor, lower: float, upper: float, n_bins: int) -> Tensor:
    """Bin of every value of the window ``[lower, upper]`` split in ``n_bins`` equal bins (clamped).

    Float64 operations in the order of ``fnmr::bin_of`` (csrc/retrieval/fnmr_common.h), so both give the
    same bin. Monotone in the value, so bins are consecutive value ranges.

    >>> bin_of(torch.tensor([-1.0, 0.0, 0.5, 0.99, 1.0, 7.0], dtype=torch.float64), 0.0, 1.0, 4).tolist()
    [0, 0, 2, 3, 3, 3]
    """
    width = upper - lower
    if n_bins == 1 or not width > 0:
        return torch.zeros(values.shape, dtype=torch.int64, device=values.device)
    return ((values - lower) / width * n_bins).floor().clamp(0, n_bins - 1).to(torch.int64)


def pair_distance_histogram(
    dist: Tensor,
    query_labels: Tensor,
    gallery_labels: Tensor,
    query_ids: Tensor | None = None,
    gallery_ids: Tensor | None = None,
    query_groups: Tensor | None = None,
    gallery_groups: Tensor | None = None,
    lower: float = -math.inf,
    upper: float = math.inf,
    n_bins: int = 1,
    collect: bool = False,
    with_positives: bool = False,
) -> PairHistogram:
    """One FNMR@FMR pass over a distance tile (see :func:`oml_fast.ops.fnmr.pair_distance_histogram`).

    >>> dist = torch.tensor([[0.0, 1.0, 3.0], [2.0, 4.0, 9.0]])
    >>> out = pair_distance_histogram(
    ...     dist, torch.tensor([0, 1]), torch.tensor([0, 0, 1]), lower=2.5, upper=4.0, n_bins=2)
    >>> out.counts.tolist()
    [1, 1, 1, 0]
    """
    excluded = torch.zeros(dist.shape, dtype=torch.bool, device=dist.device)
    if query_ids is not None and gallery_ids is not None:
        excluded |= query_ids[:, None] == gallery_ids[None, :]
    if query_groups is not None and gallery_groups is not None:
        excluded |= query_groups[:, None] == gallery_groups[None, :]
    same = query_labels[:, None] == gallery_labels[None, :]
    negatives = dist[~same & ~excluded]
    positives = dist[same & ~excluded] if with_positives else dist.new_empty(0)
    values = negatives.double()
    if bool(values.isnan().any()):
        raise ValueError("`dist` contains NaN distances between negative pairs")
    inside = (values >= lower) & (values <= upper)
    slots = torch.where(values < lower, 0, n_bins + 1)
    slots[inside] = 1 + bin_of(values[inside], lower, upper, n_bins)
    n_slots = n_bins + 2
    counts = torch.bincount(slots, minlength=n_slots)
    mins = torch.full((n_slots,), math.inf, dtype=torch.float64, device=dist.device)
    maxs = torch.full((n_slots,), -math.inf, dtype=torch.float64, device=dist.device)
    mins.scatter_reduce_(0, slots, values, reduce="amin")
    maxs.scatter_reduce_(0, slots, values, reduce="amax")
    collected = negatives[inside] if collect else dist.new_empty(0)
    return PairHistogram(counts, mins, maxs, collected, positives)


def embedding_pair_histogram(
    queries: Tensor,
    gallery: Tensor,
    metric: str,
    query_labels: Tensor,
    gallery_labels: Tensor,
    query_ids: Tensor | None,
    gallery_ids: Tensor | None,
    query_groups: Tensor | None,
    gallery_groups: Tensor | None,
    windows: list[Window],
    max_collect: int,
    with_positives: bool = False,
) -> EmbeddingPass:
    """One whole FNMR@FMR pass from the embeddings (see :func:`oml_fast.ops.fnmr.embedding_pair_histogram`):
    the full distance matrix, then :func:`pair_distance_histogram` per window.

    >>> x = torch.tensor([[0.0], [1.0], [3.0]])
    >>> labels = torch.tensor([0, 0, 1])
    >>> out = embedding_pair_histogram(
    ...     x, x, "euclidean", labels, labels, None, None, None, None, [Window(2.0, 2.5, 1, True)], 1)
    >>> out.windows[0].counts.tolist(), out.overflowed
    ([0, 2, 2], [True])
    """
    dist = pairwise_distance(queries, gallery, metric)
    keys = (query_labels, gallery_labels, query_ids, gallery_ids, query_groups, gallery_groups)
    parts, overflowed = [], []
    for w in windows:
        part = pair_distance_histogram(dist, *keys, w.lower, w.upper, w.n_bins, w.collect)
        over = w.collect and len(part.collected) > max_collect
        parts.append(part._replace(collected=dist.new_empty(0)) if over else part)
        overflowed.append(over)
    positives = (
        pair_distance_histogram(dist, *keys, with_positives=True).positives if with_positives else None
    )
    return EmbeddingPass(parts, overflowed, dist.new_empty(0) if positives is None else positives)


__all__ = ["bin_of", "embedding_pair_histogram", "pair_distance_histogram"]
