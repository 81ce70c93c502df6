"""A small CNN for small images (8 to 64 px, e.g. the built-in digits): fast on CPU."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from oml_fast.models.base import Extractor


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallCNNExtractor(Extractor):
    """Two stages of two 3x3 conv blocks (``width``, then ``2 * width`` channels) with a max-pool between,
    global average pooling and a linear layer to ``feat_dim``.

    Args:
        feat_dim: size of the embeddings.
        width: channels of the first stage.
        in_channels: channels of the input images.
        normalise_features: divide the embeddings by their (detached) L2 norm.
        weights: optional local path or URL of a state dict / checkpoint to load.

    >>> _ = torch.manual_seed(0)
    >>> model = SmallCNNExtractor(feat_dim=16, width=8, normalise_features=True)
    >>> out = model(torch.randn(2, 3, 16, 16))
    >>> tuple(out.shape), model.feat_dim, bool(torch.allclose(out.norm(dim=1), torch.ones(2)))
    ((2, 16), 16, True)
    """

    def __init__(
        self,
        feat_dim: int = 64,
        width: int = 32,
        in_channels: int = 3,
        normalise_features: bool = True,
        weights: str | Path | None = None,
    ):
        super().__init__()
        for name, value in (("feat_dim", feat_dim), ("width", width), ("in_channels", in_channels)):
            if int(value) <= 0:
                raise ValueError(f"`{name}` must be a positive int, got {value}")
        self._feat_dim = int(feat_dim)
        self.normalise_features = bool(normalise_features)
        self.features = nn.Sequential(
            _conv_block(in_channels, width),
            _conv_block(width, width),
            nn.MaxPool2d(2),
            _conv_block(width, 2 * width),
            _conv_block(2 * width, 2 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * width, feat_dim)
        if weights is not None:
            self.load_weights(weights)

    @property
    def feat_dim(self) -> int:
        return self._feat_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"input must be a FloatTensor[B, C, H, W], got shape {list(x.shape)}")
        return self._maybe_normalise(self.head(self.features(x)))
