"""What every extractor shares: feature normalisation, and reading weights (file, URL or zoo name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from oml_fast.interfaces.models import IExtractor
from oml_fast.models.utils import remove_criterion_in_state_dict, remove_prefix_from_state_dict
from oml_fast.models.weights import (
    WeightsLoadingError,
    is_url,
    load_weights_into,
    read_checkpoint,
    zoo_checkpoint,
)


def normalise(embeddings: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows divided by their L2 norm, the norm **detached** (OML behaviour: no gradient through the norm).

    embeddings: FloatTensor[B, D] -> FloatTensor[B, D].

    >>> normalise(torch.tensor([[3.0, 4.0]]))
    tensor([[0.6000, 0.8000]])
    """
    return embeddings / embeddings.detach().norm(dim=1, keepdim=True).clamp_min(eps)


def resolve_weights(model: type[nn.Module] | nn.Module, weights: str | Path) -> str | Path:
    """A local path or URL for ``weights``: a name of ``model.pretrained_models`` becomes its checkpoint file
    (see :func:`oml_fast.models.weights.zoo_checkpoint`); a path that is no file raises, listing the names."""
    zoo: dict[str, Any] = getattr(model, "pretrained_models", {})
    if isinstance(weights, str) and weights in zoo:
        return zoo_checkpoint(weights, zoo[weights])
    if not is_url(weights) and not Path(weights).expanduser().is_file():
        name = model.__name__ if isinstance(model, type) else type(model).__name__
        raise WeightsLoadingError(
            f"`weights` '{weights}' is neither a file nor the name of a pretrained model of {name} "
            f"(those are {list(zoo)})"
        )
    return weights


def checkpoint_state_dict(
    model: type[nn.Module] | nn.Module, weights: str | Path, trial_key: str
) -> dict[str, torch.Tensor]:
    """The state dict of a checkpoint as OML reads it: the ``state_dict`` entry of a Lightning checkpoint (or the
    whole file), the loss's parameters dropped, the prefix in front of ``trial_key`` stripped from every key."""
    loaded = read_checkpoint(resolve_weights(model, weights))
    state_dict = loaded["state_dict"] if isinstance(loaded.get("state_dict"), dict) else loaded
    try:
        return remove_prefix_from_state_dict(remove_criterion_in_state_dict(dict(state_dict)), trial_key)
    except (KeyError, ValueError) as error:
        raise WeightsLoadingError(
            f"weights '{weights}' do not look like a checkpoint of this model: {error}"
        ) from error


class Extractor(IExtractor):
    """Base of oml_fast's extractors: ``forward(FloatTensor[B, 3, H, W]) -> FloatTensor[B, feat_dim]``."""

    normalise_features: bool = False

    def _maybe_normalise(self, embeddings: torch.Tensor) -> torch.Tensor:
        return normalise(embeddings) if self.normalise_features else embeddings

    def load_weights(self, weights: str | Path, strict: bool = True) -> Extractor:
        """Loads a state dict / Lightning checkpoint from a local file or URL (see ``oml_fast.models.weights``)."""
        load_weights_into(self, weights, strict=strict)
        return self
