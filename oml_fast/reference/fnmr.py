"""Pure-PyTorch twin of the private ``_pair_distance_histogram`` op (same signature, same results).

This is the per-tile code FNMR@FMR used before the fused op (one elementwise torch pass per step); it
still serves tensors the compiled op does not take (CUDA, half precision, non-integer keys).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ..ops import checks


def bin_of(values: Tensor, lo: float, width: float, n_bins: int) -> Tensor:
    """Bin of every value in ``n_bins`` equal bins over ``[lo, lo + width]`` (clamped), in the values' dtype.

    Monotone in the value (subtraction and division by a positive constant are), so bins are
    consecutive value ranges and every pass sees the same partition.

    >>> bin_of(torch.tensor([-1.0, 0.0, 0.5, 0.99, 1.0, 7.0], dtype=torch.float64), 0.0, 1.0, 4).tolist()
    [0, 0, 2, 3, 3, 3]
    """
    if width <= 0:
        return torch.zeros(values.shape, dtype=torch.int64, device=values.device)
    return ((values - lo) / width * n_bins).floor().clamp(0, n_bins - 1).to(torch.int64)


def pair_distance_histogram(
    dist: Tensor,
    query_labels: Tensor,
    gallery_labels: Tensor,
    query_ids: Tensor | None,
    gallery_ids: Tensor | None,
    query_groups: Tensor | None,
    gallery_groups: Tensor | None,
    chain_lo: Sequence[float],
    chain_width: Sequence[float],
    chain_n_bins: Sequence[int],
    chain_bin: Sequence[int],
    lower: float,
    upper: float,
    lo: float,
    width: float,
    n_bins: int,
    collect: bool,
    with_positives: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One FNMR@FMR pass over a distance tile (see :func:`oml_fast.ops.fnmr.pair_distance_histogram`).

    >>> dist = torch.tensor([[0.0, 1.0, 3.0]])
    >>> out = pair_distance_histogram(
    ...     dist, torch.tensor([0]), torch.tensor([0, 0, 1]), torch.tensor([0]), torch.arange(3),
    ...     None, None, [], [], [], [], -math.inf, math.inf, 0.0, 4.0, 2, False, True)
    >>> [t.tolist() for t in out]
    [[0, 1], [inf, 3.0], [-inf, 3.0], [], [1.0]]
    """
    checks.check_n_bins(n_bins)
    excluded = torch.zeros(dist.shape, dtype=torch.bool, device=dist.device)
    if query_ids is not None and gallery_ids is not None:
        excluded |= query_ids[:, None] == gallery_ids[None, :]
    if query_groups is not None and gallery_groups is not None:
        excluded |= query_groups[:, None] == gallery_groups[None, :]
    same = query_labels[:, None] == gallery_labels[None, :]
    negatives = dist[~same & ~excluded].double()
    positives = dist[same & ~excluded] if with_positives else dist.new_empty(0)
    negatives = negatives[(negatives >= lower) & (negatives <= upper)]
    for level_lo, level_width, level_n_bins, level_bin in zip(
        chain_lo, chain_width, chain_n_bins, chain_bin, strict=True
    ):
        negatives = negatives[bin_of(negatives, level_lo, level_width, level_n_bins) == level_bin]
    hist_bins = 0 if collect else n_bins
    counts = torch.zeros(hist_bins, dtype=torch.int64, device=dist.device)
    mins = torch.full((hist_bins,), math.inf, dtype=torch.float64, device=dist.device)
    maxs = torch.full((hist_bins,), -math.inf, dtype=torch.float64, device=dist.device)
    if collect:
        return counts, mins, maxs, negatives, positives
    bins = bin_of(negatives, lo, width, n_bins)
    counts += torch.bincount(bins, minlength=n_bins)
    mins.scatter_reduce_(0, bins, negatives, reduce="amin")
    maxs.scatter_reduce_(0, bins, negatives, reduce="amax")
    return counts, mins, maxs, negatives.new_empty(0), positives


__all__ = ["bin_of", "pair_distance_histogram"]
