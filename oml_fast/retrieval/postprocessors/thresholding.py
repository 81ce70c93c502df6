"""Post-processors that cut retrieved lists by distance (OML 4.x semantics)."""

from __future__ import annotations

import torch

from ...interfaces import IRetrievalPostprocessor
from ..retrieval_results import RetrievalResults


def _truncate(rr: RetrievalResults, keep: torch.Tensor) -> RetrievalResults:
    """Keeps the positions where ``keep`` is True; ``keep`` must be a prefix mask of every row."""
    distances = rr.distances_dense.masked_fill(~keep, float("inf"))
    retrieved = rr.retrieved_ids_dense.masked_fill(~keep, -1)
    width = int(keep.sum(dim=1).max()) if keep.numel() else 0
    return rr.with_lists(distances[:, :width].contiguous(), retrieved[:, :width].contiguous())


class ConstantThresholding(IRetrievalPostprocessor):
    """Drops retrieved items whose distance is not below ``th`` (OML: ``dists < th`` is kept).

    >>> rr = RetrievalResults([torch.tensor([0.1, 0.4, 0.9])], [torch.tensor([2, 0, 1])])
    >>> ConstantThresholding(th=0.5).process(rr).retrieved_ids
    (tensor([2, 0]),)
    """

    def __init__(self, th: float):
        self.th = float(th)

    def process(self, rr: RetrievalResults) -> RetrievalResults:  # type: ignore[override]
        valid = rr.retrieved_ids_dense >= 0
        return _truncate(rr, valid & (rr.distances_dense < self.th))


class AdaptiveThresholding(IRetrievalPostprocessor):
    """Cuts each list at its first big gap between consecutive distances (OML semantics).

    A gap is big when it exceeds ``n_std * avg_gap``, where ``avg_gap`` is the mean of all
    consecutive differences over all queries; the item before the gap is the last one kept.

    >>> rr = RetrievalResults([torch.tensor([0.1, 0.2, 0.3, 2.0])], [torch.tensor([0, 1, 2, 3])])
    >>> AdaptiveThresholding(n_std=1.5).process(rr).retrieved_ids
    (tensor([0, 1, 2]),)
    """

    def __init__(self, n_std: float):
        self.n_std = float(n_std)

    def process(self, rr: RetrievalResults) -> RetrievalResults:  # type: ignore[override]
        if rr.is_empty() or rr.distances_dense.shape[1] < 2:
            return rr.deepcopy()
        dist = rr.distances_dense.double()
        diff_valid = (rr.retrieved_ids_dense[:, 1:] >= 0) & (rr.retrieved_ids_dense[:, :-1] >= 0)
        diffs = (dist[:, 1:] - dist[:, :-1]).masked_fill(~diff_valid, 0.0)
        n_diffs = int(diff_valid.sum())
        avg_gap = float(diffs.sum()) / n_diffs if n_diffs > 0 else 0.0
        big = diff_valid & (diffs > self.n_std * avg_gap)
        has_gap = big.any(dim=1)
        first_gap = torch.where(
            has_gap, big.to(torch.int8).argmax(dim=1), torch.full_like(rr.n_retrieved, -2)
        )
        length = torch.where(has_gap, first_gap + 1, rr.n_retrieved)
        keep = torch.arange(dist.shape[1])[None, :] < length[:, None]
        return _truncate(rr, keep)


__all__ = ["ConstantThresholding", "AdaptiveThresholding"]
