"""What a triplet loss with a miner offers (OML 4.x's ``oml.interfaces.criterions``)."""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.nn import Module


class ITripletLossWithMiner(Module):
    """A loss that mines triplets in the batch itself: ``forward(features, labels) -> loss``.

    ``last_logs`` (a dict of floats) holds what the last call measured (e.g. the share of active
    triplets), for loggers.
    """

    last_logs: dict[str, Any]

    def forward(self, features: Tensor, labels: Tensor | list[int]) -> Tensor:
        """
        Args:
            features (Tensor[B, D]): the batch's embeddings.
            labels (Tensor[B] or list of B ints): their labels.

        Returns:
            The loss (a 0-d tensor unless the reduction is ``"none"``).
        """
        raise NotImplementedError


__all__ = ["ITripletLossWithMiner"]
