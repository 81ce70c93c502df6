"""Contrastive (pair) loss: positives pulled together, negatives pushed beyond a margin."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Module

from ..errors import InvalidInputError
from ..functional.losses import check_reduction
from ..functional.losses import get_reduced as reduce
from ..miners.base import TLabels
from ..miners.pairs import PairsMiner
from ._common import elementwise_dist, nan_if_not_finite


class ContrastiveLoss(Module):
    """Pair loss on non-squared Euclidean distances, over the pairs of a :class:`PairsMiner`:

    - positive pair: ``relu(d - pos_margin)``
    - negative pair: ``relu(neg_margin - d)``

    (the form of pytorch-metric-learning's ``ContrastiveLoss``; OML has no pair loss of its own).

    Args:
        pos_margin: distance below which positive pairs cost nothing (>= 0).
        neg_margin: distance beyond which negative pairs cost nothing (> pos_margin).
        miner: a :class:`PairsMiner` (default: pairs from hard triplets).
        reduction: ``"mean"`` (over pairs), ``"sum"`` or ``"none"`` (``Tensor[n_pairs]``).
        need_logs: ``last_logs`` gets ``pos_dist``, ``neg_dist``, ``active_pos``, ``active_neg``.

    NaN or inf features give a NaN loss (``"none"``: the pairs that hold such rows are NaN), as the
    triplet losses.

    >>> criterion = ContrastiveLoss(neg_margin=2.0, miner=PairsMiner(hard_mining=False))
    >>> x = torch.tensor([[0.0], [1.0], [3.0], [3.5]])
    >>> round(criterion(x, torch.tensor([0, 0, 1, 1])).item(), 4)  # positives 1, 0.5; one negative at 2 - 2
    0.25
    """

    def __init__(
        self,
        pos_margin: float = 0.0,
        neg_margin: float = 1.0,
        miner: PairsMiner | None = None,
        reduction: str = "mean",
        need_logs: bool = False,
    ):
        super().__init__()
        if pos_margin < 0 or neg_margin <= pos_margin:
            raise InvalidInputError(
                f"need 0 <= pos_margin < neg_margin, got pos_margin={pos_margin}, neg_margin={neg_margin}"
            )
        self.pos_margin = float(pos_margin)
        self.neg_margin = float(neg_margin)
        self.miner = miner if miner is not None else PairsMiner(hard_mining=True)
        self.reduction = check_reduction(reduction)
        self.need_logs = need_logs
        self.last_logs: dict[str, float] = {}

    def forward(self, features: Tensor, labels: TLabels) -> Tensor:
        ids_a, ids_b, is_negative = self.miner.sample(features, labels)
        dist = elementwise_dist(features[ids_a], features[ids_b])
        loss = torch.where(
            is_negative, torch.relu(self.neg_margin - dist), torch.relu(dist - self.pos_margin)
        )
        if self.need_logs:
            with torch.no_grad():
                pos, neg = ~is_negative, is_negative
                self.last_logs = {
                    "pos_dist": float(dist[pos].mean()) if pos.any() else float("nan"),
                    "neg_dist": float(dist[neg].mean()) if neg.any() else float("nan"),
                    "active_pos": float((loss[pos] > 0).float().mean()) if pos.any() else float("nan"),
                    "active_neg": float((loss[neg] > 0).float().mean()) if neg.any() else float("nan"),
                }
        if self.reduction == "none":
            return loss
        return nan_if_not_finite(reduce(loss, self.reduction), features)


__all__ = ["ContrastiveLoss"]
