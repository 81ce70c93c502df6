"""Unicom's vision transformer, written here: no class token; the normed tokens of all patches, flattened,
go through a ``Linear-BatchNorm-Linear-BatchNorm`` head (``feature``) to the embedding.

Parameter names are Unicom's (``patch_embed.proj``, ``pos_embed``, ``blocks.<i>.{norm1, attn.qkv,
attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``norm``, ``feature.{0, 1, 2, 3}``), so its checkpoints load as
they are. Inputs must have the size the model was built for (the head sees every patch).

>>> vit = UnicomVisionTransformer(input_size=32, patch_size=16, dim=32, embedding_size=8, depth=1, num_heads=2)
>>> tuple(vit.eval()(torch.randn(2, 3, 32, 32)).shape)
(2, 8)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from oml_fast.models.vit_dino.architecture import Mlp


class DropPath(nn.Module):
    """Stochastic depth: in training, zeroes a sample's branch with probability ``p`` (the rest scaled up)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = x.new_empty((len(x),) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        # Unicom computes the attention in float32 whatever the autocast dtype.
        out = nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float())
        return self.proj(out.transpose(1, 2).reshape(b, n, d).to(x.dtype))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: int, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.mlp = Mlp(dim, dim * mlp_ratio, activation=nn.ReLU6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbedding(nn.Module):
    def __init__(self, input_size: int, patch_size: int, dim: int):
        super().__init__()
        self.num_patches = (input_size // patch_size) ** 2
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class UnicomVisionTransformer(nn.Module):
    """``FloatTensor[B, 3, S, S] -> FloatTensor[B, embedding_size]`` (``S = input_size``).

    ``using_checkpoint``: recompute each block in the backward pass instead of keeping its activations
    (gradient checkpointing; training only).
    """

    def __init__(
        self,
        input_size: int = 224,
        patch_size: int = 32,
        dim: int = 768,
        embedding_size: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: int = 4,
        drop_path_rate: float = 0.0,
        using_checkpoint: bool = True,
    ):
        super().__init__()
        self.input_size = input_size
        self.dim = dim
        self.using_checkpoint = using_checkpoint
        self.patch_embed = PatchEmbedding(input_size, patch_size, dim)
        n_patches = self.patch_embed.num_patches
        self.pos_embed = nn.Parameter(torch.zeros(1, n_patches, dim))
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_ratio, rate) for rate in rates)
        self.norm = nn.LayerNorm(dim)
        self.feature = nn.Sequential(
            nn.Linear(dim * n_patches, dim, bias=False),
            nn.BatchNorm1d(dim, eps=2e-5),
            nn.Linear(dim, embedding_size, bias=False),
            nn.BatchNorm1d(embedding_size, eps=2e-5),
        )
        nn.init.normal_(self.pos_embed, std=0.02)  # Unicom's truncation at +-2 is 100 sigma away
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise ValueError(
                f"Unicom expects FloatTensor[B, 3, {self.input_size}, {self.input_size}], got {list(x.shape)}"
            )
        tokens = self.patch_embed(x) + self.pos_embed
        for block in self.blocks:
            if self.using_checkpoint and self.training and torch.is_grad_enabled():
                tokens = checkpoint(block, tokens, use_reentrant=False)
            else:
                tokens = block(tokens)
        return self.feature(self.norm(tokens.float()).flatten(1))


def _unicom(input_size: int, patch_size: int, dim: int, embedding: int, depth: int, heads: int):
    def build(using_checkpoint: bool = True) -> UnicomVisionTransformer:
        return UnicomVisionTransformer(
            input_size,
            patch_size,
            dim,
            embedding,
            depth,
            heads,
            drop_path_rate=0.1,
            using_checkpoint=using_checkpoint,
        )

    return build


unicom_vitb32 = _unicom(224, 32, 768, 512, 12, 12)
unicom_vitb16 = _unicom(224, 16, 768, 768, 12, 12)
unicom_vitl14 = _unicom(224, 14, 1024, 768, 24, 16)
unicom_vitl14_336px = _unicom(336, 14, 1024, 768, 24, 16)

__all__ = [
    "UnicomVisionTransformer",
    "unicom_vitb16",
    "unicom_vitb32",
    "unicom_vitl14",
    "unicom_vitl14_336px",
]
