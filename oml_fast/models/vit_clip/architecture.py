"""The image tower of CLIP (a pre-norm ViT with QuickGELU and a final projection), written here.

Parameter names are CLIP's (``conv1``, ``class_embedding``, ``positional_embedding``, ``ln_pre``,
``transformer.resblocks.<i>.{ln_1, attn.in_proj_weight, attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj}``,
``ln_post``, ``proj``), so the ``visual.*`` part of OpenAI's and ruCLIP's checkpoints loads as it is.
Images must have the size the position embeddings were made for.

>>> tower = CLIPVisionTransformer(input_resolution=32, patch_size=16, width=32, layers=1, heads=2, output_dim=8)
>>> tuple(tower(torch.randn(2, 3, 32, 32)).shape)
(2, 8)
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


class QuickGELU(nn.Module):
    """CLIP's GELU approximation: ``x * sigmoid(1.702 x)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(width, 4 * width)),
                    ("gelu", QuickGELU()),
                    ("c_proj", nn.Linear(4 * width, width)),
                ]
            )
        )
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.Sequential(*(ResidualAttentionBlock(width, heads) for _ in range(layers)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class CLIPVisionTransformer(nn.Module):
    """``FloatTensor[B, 3, R, R] -> FloatTensor[B, output_dim]``: ``ln_post`` of the class token, times ``proj``."""

    def __init__(
        self, input_resolution: int, patch_size: int, width: int, layers: int, heads: int, output_dim: int
    ):
        super().__init__()
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(
            scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width)
        )
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.conv1(x).flatten(2).transpose(1, 2)  # [B, grid ** 2, width]
        cls = self.class_embedding.to(tokens.dtype).expand(len(tokens), 1, -1)
        tokens = self.ln_pre(torch.cat([cls, tokens], dim=1) + self.positional_embedding.to(tokens.dtype))
        tokens = self.transformer(tokens)
        return self.ln_post(tokens[:, 0]) @ self.proj


def vitb16_224() -> CLIPVisionTransformer:
    return CLIPVisionTransformer(224, 16, 768, 12, 12, 512)


def vitb32_224() -> CLIPVisionTransformer:
    return CLIPVisionTransformer(224, 32, 768, 12, 12, 512)


def vitl14_224() -> CLIPVisionTransformer:
    return CLIPVisionTransformer(224, 14, 1024, 24, 16, 768)


def vitl14_336() -> CLIPVisionTransformer:
    return CLIPVisionTransformer(336, 14, 1024, 24, 16, 768)


__all__ = ["CLIPVisionTransformer", "QuickGELU", "vitb16_224", "vitb32_224", "vitl14_224", "vitl14_336"]
