"""What the package needs from models (OML 4.x's ``oml.interfaces.models`` names)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from torch import Tensor, nn


class IPairwiseModel(nn.Module, ABC):
    """A model that scores pairs of items: smaller output means more similar (a distance)."""

    @abstractmethod
    def forward(self, x1: Any, x2: Any) -> Tensor:
        """Raw outputs for a batch of pairs: ``Tensor[B]``."""

    def predict(self, x1: Any, x2: Any) -> Tensor:
        """Distances for a batch of pairs (``Tensor[B]``); by default the output of ``forward``."""
        return self.forward(x1, x2)


__all__ = ["IPairwiseModel"]
