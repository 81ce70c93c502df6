"""``_pair_distance_histogram`` (private): typed wrapper and fake kernel of the compiled op."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["pair_distance_histogram"]


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
    """One streaming pass of FNMR@FMR over a distance tile, fused (CPU only).

    A pair is skipped when its ids (or groups) are equal; otherwise it is a positive (equal labels) or
    a negative. Negatives, in float64, belong to the window when, at every level of the chain, their
    bin ``floor((v - lo_l) / width_l * n_bins_l)`` (clamped to ``[0, n_bins_l - 1]``; bin 0 when
    ``width_l <= 0``) equals ``chain_bin[l]``. Those are collected (``collect``) or histogrammed over
    ``(lo, width, n_bins)`` with the same formula.

    Args:
        dist (Tensor[rows, Ng] float32/float64): distances of a block of queries to the gallery.
        query_labels (Tensor[rows] int64), gallery_labels (Tensor[Ng] int64).
        query_ids, gallery_ids, query_groups, gallery_groups: int64 exclusion keys, each pair given
            together or not at all.
        chain_lo, chain_width, chain_n_bins, chain_bin: the window's levels (equal lengths).
        lower, upper: bounds of the window's values (the exact min and max of its last level's bin,
            or -inf / inf); a fast reject, the chain alone decides membership within them.
        lo, width, n_bins: the histogram of this pass.
        collect: collect the window's negatives instead of histogramming them.
        with_positives: return the positives (else an empty tensor).

    Returns:
        ``(counts, mins, maxs, collected, positives)``: int64 / float64 / float64 ``[n_bins]`` (``[0]``
        when ``collect``; empty bins have min ``inf`` and max ``-inf``), the collected negatives
        (float64, any order) and the positives (dist's dtype, any order).

    >>> dist = torch.tensor([[0.0, 1.0, 3.0]])
    >>> out = pair_distance_histogram(
    ...     dist, torch.tensor([0]), torch.tensor([0, 0, 1]), torch.tensor([0]), torch.arange(3),
    ...     None, None, [], [], [], [], -float("inf"), float("inf"), 0.0, 4.0, 2, False, True)
    >>> [t.tolist() for t in out]
    [[0, 1], [inf, 3.0], [-inf, 3.0], [], [1.0]]
    """
    return torch.ops.oml_fast._pair_distance_histogram.default(
        dist,
        query_labels,
        gallery_labels,
        query_ids,
        gallery_ids,
        query_groups,
        gallery_groups,
        [float(v) for v in chain_lo],
        [float(v) for v in chain_width],
        [int(v) for v in chain_n_bins],
        [int(v) for v in chain_bin],
        float(lower),
        float(upper),
        float(lo),
        float(width),
        int(n_bins),
        bool(collect),
        bool(with_positives),
    )


@torch.library.register_fake("oml_fast::_pair_distance_histogram")
def _pair_distance_histogram_fake(
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
    torch._check(dist.dim() == 2, lambda: f"`dist` must be 2-D [rows, Ng], got {tuple(dist.shape)}")
    hist_bins = 0 if collect else n_bins
    ctx = torch.library.get_ctx()
    counts = dist.new_empty((hist_bins,), dtype=torch.int64)
    mins = dist.new_empty((hist_bins,), dtype=torch.float64)
    maxs = dist.new_empty((hist_bins,), dtype=torch.float64)
    collected = dist.new_empty((ctx.new_dynamic_size(),), dtype=torch.float64)
    positives = dist.new_empty((ctx.new_dynamic_size(),))
    return counts, mins, maxs, collected, positives
