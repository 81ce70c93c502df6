"""Triplet losses (margin and soft-margin), on explicit triplets or with a miner."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Module

from ..errors import InvalidInputError
from ..functional.losses import check_reduction
from ..functional.losses import get_reduced as reduce
from ..interfaces.criterions import ITripletLossWithMiner
from ..miners.all_triplets import AllTripletsMiner
from ..miners.base import InBatchTripletsMiner, ITripletsMiner, TLabels
from ..miners.cross_batch import TripletMinerWithMemory
from ._common import elementwise_dist, nan_if_not_finite, triplet_distances

TLogs = dict[str, float]


def _check_margin(margin: float | None) -> float | None:
    if margin is not None and not margin > 0:
        raise InvalidInputError(f"`margin` must be > 0, or None for the soft-margin loss; got {margin}")
    return margin


def triplet_loss(positive_dist: Tensor, negative_dist: Tensor, margin: float | None) -> Tensor:
    """Per-triplet loss: ``relu(margin + d_ap - d_an)``, or ``softplus(d_ap - d_an)`` when ``margin``
    is None. The soft form is OML's ``log1p(exp(x))`` computed stably (OML overflows to ``inf``
    above x ~ 88 in float32; softplus returns x there).

    >>> triplet_loss(torch.tensor([0.0]), torch.tensor([0.0]), None)
    tensor([0.6931])
    """
    if margin is None:
        return F.softplus(positive_dist - negative_dist)
    return torch.relu(margin + positive_dist - negative_dist)


class TripletLoss(Module):
    """Triplet loss on non-squared Euclidean distances.

    Args:
        margin: ``relu(margin + d(a, p) - d(a, n))``; ``None`` gives the soft-margin loss
            ``log(1 + exp(d(a, p) - d(a, n)))`` (no margin to converge to, which helps against dimension
            collapse).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-triplet ``Tensor[T]``).
        need_logs: store ``active_tri`` (fraction of triplets with a positive loss), ``pos_dist``
            and ``neg_dist`` (mean distances) as floats in ``last_logs``.

    ``forward(anchor, positive, negative)`` takes three ``Tensor[T, D]``.

    >>> loss = TripletLoss(margin=0.5)
    >>> a, p, n = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.2]])
    >>> round(loss(a, p, n).item(), 4)
    0.3
    """

    def __init__(self, margin: float | None, reduction: str = "mean", need_logs: bool = False):
        super().__init__()
        self.margin = _check_margin(margin)
        self.reduction = check_reduction(reduction)
        self.need_logs = need_logs
        self.last_logs: TLogs = {}

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        if not anchor.shape == positive.shape == negative.shape:
            raise InvalidInputError(
                "`anchor`, `positive` and `negative` must have the same shape, got "
                f"{tuple(anchor.shape)}, {tuple(positive.shape)}, {tuple(negative.shape)}"
            )
        return self.from_distances(elementwise_dist(anchor, positive), elementwise_dist(anchor, negative))

    def from_distances(self, positive_dist: Tensor, negative_dist: Tensor) -> Tensor:
        """The loss (and logs) of triplets given by their distances: ``Tensor[T], Tensor[T] -> Tensor``."""
        loss = triplet_loss(positive_dist, negative_dist, self.margin)
        if self.need_logs:
            with torch.no_grad():
                self.last_logs = {
                    "active_tri": float((loss > 0).float().mean()) if loss.numel() else 0.0,
                    "pos_dist": float(positive_dist.mean()) if loss.numel() else 0.0,
                    "neg_dist": float(negative_dist.mean()) if loss.numel() else 0.0,
                }
        return reduce(loss, self.reduction)


def get_tri_ids_in_plain(n: int) -> tuple[list[int], list[int], list[int]]:
    """Anchor, positive and negative positions of ``n / 3`` triplets stacked as ``a0, p0, n0, a1, ...``.

    >>> get_tri_ids_in_plain(6)
    ([0, 3], [1, 4], [2, 5])
    """
    if n % 3 != 0:
        raise InvalidInputError(f"the number of stacked features must be divisible by 3, got {n}")
    return list(range(0, n, 3)), list(range(1, n, 3)), list(range(2, n, 3))


class TripletLossPlain(Module):
    """:class:`TripletLoss` on features stacked as ``[a0, p0, n0, a1, p1, n1, ...]`` (``Tensor[3T, D]``).

    >>> loss = TripletLossPlain(margin=None)
    >>> round(loss(torch.zeros(6, 2)).item(), 4)  # identical vectors: log(2)
    0.6931
    """

    def __init__(self, margin: float | None, reduction: str = "mean", need_logs: bool = False):
        super().__init__()
        self.criterion = TripletLoss(margin=margin, reduction=reduction, need_logs=need_logs)

    @property
    def last_logs(self) -> TLogs:
        return self.criterion.last_logs

    def forward(self, features: Tensor) -> Tensor:
        ids_a, ids_p, ids_n = get_tri_ids_in_plain(len(features))
        return self.criterion(features[ids_a], features[ids_p], features[ids_n])


class TripletLossWithMiner(ITripletLossWithMiner):
    """A miner picks triplets in the batch, :class:`TripletLoss` scores them.

    Args:
        margin: as in :class:`TripletLoss` (``None`` = soft margin).
        miner: any :class:`~oml_fast.miners.ITripletsMiner` (default :class:`AllTripletsMiner`);
            with :class:`HardTripletsMiner` this is the batch-hard triplet loss, whose mining runs on the
            compiled ``hard_mining`` op. :class:`TripletMinerWithMemory` adds bank triplets and the logs
            ``orig_active_tri``, ``bank_active_tri``, ``pos/neg_dist_orig``, ``pos/neg_dist_bank``.
        reduction: ``"mean"`` (a scalar), ``"sum"`` or ``"none"`` (per-triplet ``Tensor[T]``).
        need_logs: keep the loss's logs in ``last_logs`` (floats). The miner's own ``last_logs`` (e.g.
            :class:`MinerWithBank`'s share of bank items) are merged in after every call, as OML does.

    ``forward(features Tensor[B, D], labels Tensor[B] | list[int]) -> Tensor``. NaN or inf features give
    a NaN loss (``"none"``: the triplets that hold such rows are NaN), as in OML.

    >>> from oml_fast.miners import HardTripletsMiner
    >>> criterion = TripletLossWithMiner(margin=0.1, miner=HardTripletsMiner(), need_logs=True)
    >>> x = torch.tensor([[0.0], [1.0], [3.0], [5.0]], requires_grad=True)
    >>> loss = criterion(x, torch.tensor([0, 0, 1, 1]))
    >>> loss.shape, round(loss.item(), 4), criterion.last_logs["active_tri"]
    (torch.Size([]), 0.025, 0.25)
    """

    criterion_name = "triplet"  # OML's name, for logging

    def __init__(
        self,
        margin: float | None,
        miner: ITripletsMiner | None = None,
        reduction: str = "mean",
        need_logs: bool = False,
    ):
        super().__init__()
        self.tri_loss = TripletLoss(margin=margin, reduction="none", need_logs=need_logs)
        self.miner = miner if miner is not None else AllTripletsMiner()
        self.reduction = check_reduction(reduction)
        self.need_logs = need_logs
        self.last_logs: TLogs = {}

    def forward(self, features: Tensor, labels: TLabels) -> Tensor:
        if isinstance(self.miner, TripletMinerWithMemory):
            anchor, positive, negative, is_orig_tri = self.miner.sample(features=features, labels=labels)
            loss = self.tri_loss(anchor=anchor, positive=positive, negative=negative)
            if self.need_logs:
                self.last_logs.update(
                    self._memory_logs(anchor, positive, negative, loss, is_orig_tri.to(loss.device))
                )
        elif (ids := self._in_batch_ids(features, labels)) is not None:
            # Same values as gathering the triplets and calling TripletLoss; one gradient buffer.
            loss = self.tri_loss.from_distances(*triplet_distances(features, *ids))
        else:
            anchor, positive, negative = self.miner.sample(features=features, labels=labels)
            loss = self.tri_loss(anchor=anchor, positive=positive, negative=negative)
        if self.need_logs:
            self.last_logs.update(self.tri_loss.last_logs)
        self.last_logs.update(getattr(self.miner, "last_logs", None) or {})
        if self.reduction == "none":
            return loss
        return nan_if_not_finite(reduce(loss, self.reduction), features)

    def _in_batch_ids(self, features: Tensor, labels: TLabels) -> tuple[Tensor | None, Tensor, Tensor] | None:
        if not isinstance(self.miner, InBatchTripletsMiner) or features.dim() != 2:
            return None
        return self.miner._checked_triplet_ids(features, labels)

    @staticmethod
    @torch.no_grad()
    def _memory_logs(
        anchor: Tensor, positive: Tensor, negative: Tensor, loss: Tensor, is_orig: Tensor
    ) -> TLogs:
        def mean_or_nan(x: Tensor) -> float:
            return float(x.float().mean()) if x.numel() else float("nan")

        active = loss > 0
        is_bank = ~is_orig
        return {
            "orig_active_tri": mean_or_nan(active[is_orig]),
            "bank_active_tri": mean_or_nan(active[is_bank]),
            "pos_dist_orig": mean_or_nan(elementwise_dist(anchor[is_orig], positive[is_orig])),
            "neg_dist_orig": mean_or_nan(elementwise_dist(anchor[is_orig], negative[is_orig])),
            "pos_dist_bank": mean_or_nan(elementwise_dist(anchor[is_bank], positive[is_bank])),
            "neg_dist_bank": mean_or_nan(elementwise_dist(anchor[is_bank], negative[is_bank])),
        }


__all__ = [
    "TLogs",
    "TripletLoss",
    "TripletLossPlain",
    "TripletLossWithMiner",
    "get_tri_ids_in_plain",
    "triplet_loss",
]
