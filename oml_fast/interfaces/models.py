"""What the package needs from models (OML 4.x's ``oml.interfaces.models`` names)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from torch import Tensor, nn


class IExtractor(nn.Module, ABC):
    """A model that maps a batch of items to embeddings: ``forward(x) -> Tensor[B, feat_dim]``.

    ``pretrained_models`` (a class attribute) maps the names of the checkpoints of the zoo to their
    records: ``init_args`` (the constructor's arguments besides ``weights``) and where the file comes from.
    """

    pretrained_models: dict[str, Any] = {}

    def extract(self, x: Tensor) -> Tensor:
        """Same as ``forward``."""
        return self.forward(x)

    @property
    def feat_dim(self) -> int:
        """Size of the embeddings."""
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, weights: str, **kwargs: Any) -> IExtractor:
        """The extractor built with the ``init_args`` of zoo checkpoint ``weights``, the checkpoint loaded.

        ``kwargs`` are further constructor arguments. Raises ``KeyError`` listing the zoo's names when
        ``weights`` is not one of them.
        """
        if weights not in cls.pretrained_models:
            raise KeyError(
                f"There is no pretrained model {weights}. The existing ones are {list(cls.pretrained_models)}."
            )
        return cls(weights=weights, **cls.pretrained_models[weights]["init_args"], **kwargs)  # type: ignore[call-arg]


class IFreezable(ABC):  # noqa: B024 - OML's: the methods are optional, not abstract
    """A model whose backbone can be frozen (no gradients) and unfrozen."""

    def freeze(self) -> None:
        """Stops the gradients through the frozen part."""
        raise NotImplementedError

    def unfreeze(self) -> None:
        """Lets the gradients through again."""
        raise NotImplementedError


class IPairwiseModel(nn.Module, ABC):
    """A model that scores pairs of items: smaller output means more similar (a distance)."""

    @abstractmethod
    def forward(self, x1: Any, x2: Any) -> Tensor:
        """Raw outputs for a batch of pairs: ``Tensor[B]``."""

    def predict(self, x1: Any, x2: Any) -> Tensor:
        """Distances for a batch of pairs (``Tensor[B]``); by default the output of ``forward``."""
        return self.forward(x1, x2)


__all__ = ["IExtractor", "IFreezable", "IPairwiseModel"]
