"""An MLP projection head on top of any extractor."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from oml_fast.models.base import Extractor, normalise


class ExtractorWithMLP(Extractor):
    """``extractor`` followed by Linear-ReLU-...-Linear with the sizes ``mlp_features``; ``feat_dim`` is the last size.

    Args:
        extractor: the backbone (anything with ``feat_dim`` and ``forward(x) -> [B, feat_dim]``).
        mlp_features: output sizes of the linear layers.
        normalise_features: divide the output by its (detached) L2 norm.
        weights: optional local path or URL of a state dict of the whole model.

    >>> from oml_fast.models.small_cnn import SmallCNNExtractor
    >>> model = ExtractorWithMLP(SmallCNNExtractor(feat_dim=16, width=4), mlp_features=[32, 8])
    >>> tuple(model(torch.randn(2, 3, 8, 8)).shape), model.feat_dim
    ((2, 8), 8)
    """

    def __init__(
        self,
        extractor: nn.Module,
        mlp_features: Sequence[int] = (384,),
        normalise_features: bool = False,
        weights: str | Path | None = None,
    ):
        super().__init__()
        if not mlp_features or any(int(f) <= 0 for f in mlp_features):
            raise ValueError(
                f"`mlp_features` must be a non-empty list of positive ints, got {list(mlp_features)}"
            )
        self.extractor = extractor
        sizes = [int(extractor.feat_dim), *map(int, mlp_features)]  # type: ignore[arg-type]
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU(inplace=True))
        self.projection = nn.Sequential(*layers)
        self.normalise_features = bool(normalise_features)
        self._feat_dim = sizes[-1]
        if weights is not None:
            self.load_weights(weights)

    @property
    def feat_dim(self) -> int:
        return self._feat_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.projection(self.extractor(x))
        return normalise(out) if self.normalise_features else out
