"""What the package needs from models (OML 4.x's ``oml.interfaces.models``): extractors, freezing, pairwise models."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from torch import Tensor, nn


class IExtractor(nn.Module, ABC):
    """A model that maps a batch of inputs to embeddings: ``forward(x) -> Tensor[B, feat_dim]``.

    ``pretrained_models`` maps a checkpoint name to its record; OML's records hold at least
    ``"init_args"`` (the constructor's other arguments), which :meth:`from_pretrained` uses.
    """

    pretrained_models: dict[str, Any] = {}

    def extract(self, x: Tensor) -> Tensor:
        """The embeddings of ``x`` (``forward`` by default)."""
        return self.forward(x)

    @property
    def feat_dim(self) -> int:
        """The width ``D`` of the embeddings (every extractor implements it)."""
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, weights: str, **kwargs: Any) -> IExtractor:
        """The extractor built with the checkpoint ``weights``, a key of ``pretrained_models``."""
        if weights not in cls.pretrained_models:
            raise KeyError(
                f"There is no pretrained model {weights!r} for {cls.__name__}; the known ones are "
                f"{sorted(cls.pretrained_models)}"
            )
        init_args = dict(cls.pretrained_models[weights].get("init_args", {}))
        return cls(weights=weights, **{**init_args, **kwargs})  # type: ignore[call-arg]


class IFreezable(ABC):  # noqa: B024  (OML's interface: both methods have a default that raises)
    """A model whose parts can be frozen (no gradient) and unfrozen, e.g. the backbone while a head warms up."""

    def freeze(self) -> None:
        """Freezes the parts the model chooses (e.g. the backbone)."""
        raise NotImplementedError

    def unfreeze(self) -> None:
        """Undoes :meth:`freeze`."""
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
