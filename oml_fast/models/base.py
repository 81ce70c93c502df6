"""What every extractor shares: ``feat_dim``, ``extract``, detached-norm feature normalisation, weights."""

from __future__ import annotations

from pathlib import Path

import torch

from oml_fast.interfaces.models import IExtractor
from oml_fast.models.weights import load_weights_into


def normalise(embeddings: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows divided by their L2 norm, the norm **detached** (OML behaviour: no gradient through the norm).

    embeddings: FloatTensor[B, D] -> FloatTensor[B, D].

    >>> normalise(torch.tensor([[3.0, 4.0]]))
    tensor([[0.6000, 0.8000]])
    """
    return embeddings / embeddings.detach().norm(dim=1, keepdim=True).clamp_min(eps)


class Extractor(IExtractor):
    """Base of the extractors: ``forward(FloatTensor[B, 3, H, W]) -> FloatTensor[B, feat_dim]``."""

    normalise_features: bool = False

    @property
    def feat_dim(self) -> int:
        raise NotImplementedError

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """Same as ``forward`` (OML's name)."""
        return self.forward(x)

    def _maybe_normalise(self, embeddings: torch.Tensor) -> torch.Tensor:
        return normalise(embeddings) if self.normalise_features else embeddings

    def load_weights(self, weights: str | Path, strict: bool = True) -> Extractor:
        """Loads a state dict / Lightning checkpoint from a local file or URL (see ``oml_fast.models.weights``)."""
        load_weights_into(self, weights, strict=strict)
        return self
