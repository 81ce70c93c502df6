"""Generalised mean pooling (OML's ``GEM``), the pooling of the ResNet extractor when ``gem_p`` is given."""

from __future__ import annotations

import torch
from torch import nn


class GEM(nn.Module):
    """``(mean over H, W of clamp(x, eps)^p)^(1/p)``: ``FloatTensor[B, C, H, W] -> FloatTensor[B, C]``.

    ``p = 1`` is average pooling; ``p -> inf`` approaches max pooling.

    >>> GEM(p=2.0)(torch.tensor([[[[3.0, 4.0], [0.0, 0.0]]]])).round(decimals=4)
    tensor([[2.5000]])
    """

    def __init__(self, p: float, eps: float = 1e-6):
        super().__init__()
        self.p = p
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"GEM expects FloatTensor[B, C, H, W], got shape {list(x.shape)}")
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)


__all__ = ["GEM"]
