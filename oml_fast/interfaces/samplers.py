"""What a batch sampler offers (OML 4.x's ``oml.interfaces.samplers``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator


class IBatchSampler(ABC):
    """For ``DataLoader(batch_sampler=...)``: iterating gives the dataset indices of each batch."""

    @abstractmethod
    def __len__(self) -> int:
        """The number of batches in an epoch."""

    @abstractmethod
    def __iter__(self) -> Iterator[list[int]]:
        """The batches of one epoch, as lists of dataset indices."""


__all__ = ["IBatchSampler"]
