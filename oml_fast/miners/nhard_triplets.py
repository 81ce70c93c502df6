"""N-hard mining: for every anchor, every combination of its n hardest positives and negatives."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import InvalidInputError
from ..ops.mining import hard_mining
from .base import (
    InBatchTripletsMiner,
    TTripletsIds,
    TTripletsIdsTensor,
    labels_to_tensor,
    rankable,
    tensor_backed,
)

TRange = int | tuple[int, int] | Sequence[int]


def parse_hardness_range(n: TRange, name: str) -> tuple[int, int]:
    """``n`` -> 0-based half-open ``(start, stop)``: an int means the ``n`` hardest, a pair ``(lo, hi)``
    the ``lo``-th to ``hi``-th hardest (1-based, inclusive).

    >>> parse_hardness_range(3, "n_positive"), parse_hardness_range((2, 5), "n_positive")
    ((0, 3), (1, 5))
    """
    if isinstance(n, bool):
        raise TypeError(f"`{name}` must be an int or a pair (lo, hi), got {n!r}")
    if isinstance(n, (int, np.integer)):
        start, stop = 0, int(n)
    elif isinstance(n, (list, tuple)) and len(n) == 2 and all(isinstance(v, (int, np.integer)) for v in n):
        start, stop = int(n[0]) - 1, int(n[1])
    else:
        raise TypeError(f"`{name}` must be an int or a pair of ints (lo, hi), got {n!r}")
    if start < 0 or stop <= start:
        raise InvalidInputError(
            f"`{name}` must be a positive int or a 1-based range (lo, hi) with 1 <= lo <= hi, got {n!r}"
        )
    return start, stop


def cartesian_triplets(positives: Tensor, negatives: Tensor, anchors: Tensor) -> TTripletsIdsTensor:
    """Every (positive, negative) combination per anchor row, skipping ``-1`` padding.

    Anchor-major, then positive-major order (as ``torch.cartesian_prod`` per anchor).
    """
    n_pos, n_neg = positives.shape[1], negatives.shape[1]
    a = anchors[:, None, None].expand(-1, n_pos, n_neg)
    p = positives[:, :, None].expand(-1, n_pos, n_neg)
    n = negatives[:, None, :].expand(-1, n_pos, n_neg)
    valid = (p >= 0) & (n >= 0)
    return a[valid], p[valid], n[valid]


class NHardTripletsMiner(InBatchTripletsMiner):
    """For every anchor, all combinations of its hard positives and hard negatives.

    Args:
        n_positive: an int ``n`` keeps the ``n`` farthest positives; a pair ``(lo, hi)`` keeps the
            ``lo``-th to ``hi``-th farthest (1-based, inclusive), e.g. ``(2, 5)`` skips the single
            farthest one (often an annotation error late in training).
        n_negative: the same for the nearest negatives.

    Anchors with fewer candidates get as many as exist (none when a range starts past them). With
    ``(1, 1)`` this is :class:`HardTripletsMiner`. The anchor is never its own positive. Ties are
    broken by the smaller index. Output order: by anchor, then positive, then negative. Rows with NaN
    or inf features are mined as if those entries were 0 and kept (:func:`~oml_fast.miners.base.rankable`).

    >>> x = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    >>> miner = NHardTripletsMiner(n_positive=(2, 2), n_negative=1)
    >>> miner._sample(x, labels=[0, 0, 0, 1, 1, 1])
    ([0, 1, 2, 3, 4, 5], [1, 2, 1, 4, 5, 4], [3, 3, 3, 2, 2, 2])
    """

    def __init__(self, n_positive: TRange = 1, n_negative: TRange = 1):
        self.positive_range = parse_hardness_range(n_positive, "n_positive")
        self.negative_range = parse_hardness_range(n_negative, "n_negative")
        self.positive_slice = slice(*self.positive_range)
        self.negative_slice = slice(*self.negative_range)

    @tensor_backed
    def _sample(  # type: ignore[override]
        self,
        features: Tensor,
        labels: Tensor | list[int],
        *_: object,
        ignore_anchor_mask: Tensor | Sequence[bool] | None = None,
    ) -> TTripletsIds:
        """Indices of the triplets as lists of ints (OML's contract); rows where ``ignore_anchor_mask`` is
        ``True`` are never anchors (a memory bank's rows: every triplet then carries a gradient)."""
        ids = self._sample_ids(features, labels_to_tensor(labels, features.device), ignore_anchor_mask)
        return ids[0].tolist(), ids[1].tolist(), ids[2].tolist()

    def _sample_ids(
        self, features: Tensor, labels: Tensor, ignore_anchor_mask: Tensor | Sequence[bool] | None = None
    ) -> TTripletsIdsTensor:
        if len(labels) != len(features):
            raise InvalidInputError(
                f"`labels` has {len(labels)} entries but `features` has {len(features)} rows"
            )
        anchor_mask = None
        if ignore_anchor_mask is not None:
            anchor_mask = ~torch.as_tensor(ignore_anchor_mask, dtype=torch.bool, device=features.device)
        # An anchor has at most B - 1 positives or negatives: asking for more would only pad (and the
        # combinations below would be B x n_positive x n_negative, 8 TB for n = 1e6).
        most = max(len(features) - 1, 0)
        n_positive, n_negative = min(self.positive_range[1], most), min(self.negative_range[1], most)
        positives, negatives = hard_mining(
            rankable(features), labels, n_positive, n_negative, "euclidean", anchor_mask
        )
        anchors = torch.arange(len(features), device=features.device)
        return cartesian_triplets(
            positives[:, self.positive_slice], negatives[:, self.negative_slice], anchors
        )


__all__ = ["NHardTripletsMiner", "parse_hardness_range", "cartesian_triplets"]
