"""Vision transformers of DINO (ViT-S/B with 8x8 or 16x16 patches) and DINOv2 (ViT-S/B/L, 14x14 patches,
optionally with 4 register tokens), written here.

Parameter names are those of the original repositories, so their checkpoints (and OML's) load as they are:
``cls_token``, ``pos_embed``, ``patch_embed.proj``, ``blocks.<i>.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1,
mlp.fc2}``, ``norm``; DINOv2 adds ``blocks.<i>.ls1.gamma`` / ``ls2.gamma`` (layer scale), ``mask_token``
and ``register_tokens``.

The output is the final-normed class token. Position embeddings are interpolated (bicubic) to the input's
patch grid the way each family does it, so inputs of other sizes give the same numbers as the originals.

>>> vit = vit_dino(patch_size=16, embed_dim=32, depth=2, num_heads=2)
>>> tuple(vit(torch.randn(2, 3, 32, 48)).shape)
(2, 32)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch_size`` squares projected to ``embed_dim``: ``[B, 3, H, W] -> [B, N, D]``."""

    def __init__(self, patch_size: int, embed_dim: int, strict: bool):
        super().__init__()
        self.patch_size = patch_size
        self.strict = strict
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(
                f"a vision transformer expects FloatTensor[B, 3, H, W], got shape {list(x.shape)}"
            )
        if self.strict and (x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size):
            raise ValueError(
                f"image height and width must be multiples of the patch size {self.patch_size} (as in DINOv2), "
                f"got {list(x.shape[-2:])}"
            )
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with one ``qkv`` projection and an output ``proj``."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def _qkv(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(x)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(x.shape))

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The softmax attention ``[B, heads, N, N]`` (row: the attending token)."""
        q, k, _ = self._qkv(x)
        return torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1)


class Mlp(nn.Module):
    """``fc2(activation(fc1(x)))``: ``[..., dim] -> [..., dim]`` through ``hidden`` units."""

    def __init__(self, dim: int, hidden: int, activation: type[nn.Module] = nn.GELU):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = activation()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    def __init__(self, dim: int, init_value: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block; ``layer_scale`` (DINOv2) multiplies each branch by a learnt vector."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, layer_scale: float | None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim, layer_scale) if layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, layer_scale) if layer_scale else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    """``FloatTensor[B, 3, H, W] -> FloatTensor[B, embed_dim]`` (the class token after the last norm).

    Args:
        patch_size, embed_dim, depth, num_heads, mlp_ratio: the architecture.
        img_size: the side of the square images ``pos_embed`` is made for (224 in DINO, 518 in DINOv2).
        layer_scale: initial value of the layer scales (DINOv2: 1.0), ``None`` for none (DINO).
        n_registers: register tokens after the class token (DINOv2 "reg": 4).
        dinov2: DINOv2's conventions: a ``mask_token`` parameter, sides that must be multiples of the patch.
        interpolate_offset: added to the target grid in the interpolation's scale factor (DINO's fix of
            a rounding error); ``0`` interpolates to the grid's size instead, antialiased (DINOv2 "reg").
    """

    def __init__(
        self,
        patch_size: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        img_size: int = 224,
        layer_scale: float | None = None,
        n_registers: int = 0,
        dinov2: bool = False,
        interpolate_offset: float = 0.1,
    ):
        super().__init__()
        self.patch_size = patch_size
        self.interpolate_offset = interpolate_offset
        self.num_features = self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(patch_size, embed_dim, strict=dinov2)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, (img_size // patch_size) ** 2 + 1, embed_dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, n_registers, embed_dim)) if n_registers else None
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim)) if dinov2 else None  # unused at inference
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, layer_scale) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Identity()
        # The originals draw from a normal(0, 0.02) truncated at +-2, i.e. 100 sigma: a plain normal (and faster).
        nn.init.normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=0.02)
        if self.register_tokens is not None:
            nn.init.normal_(self.register_tokens, std=1e-6)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def interpolate_pos_encoding(self, n_patches: int, height: int, width: int) -> torch.Tensor:
        """``pos_embed`` resized to the patch grid of a ``height x width`` image: ``[1, 1 + n_patches, D]``."""
        n_trained = self.pos_embed.shape[1] - 1
        if n_patches == n_trained and height == width:
            return self.pos_embed
        side = int(math.sqrt(n_trained))
        grid = (height // self.patch_size, width // self.patch_size)
        patch_pos = self.pos_embed[:, 1:].float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
        if self.interpolate_offset:
            scale = tuple((g + self.interpolate_offset) / side for g in grid)
            patch_pos = F.interpolate(patch_pos, scale_factor=scale, mode="bicubic")
        else:
            patch_pos = F.interpolate(patch_pos, size=grid, mode="bicubic", antialias=True)
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, -1, self.embed_dim).to(self.pos_embed.dtype)
        return torch.cat((self.pos_embed[:, :1], patch_pos), dim=1)

    def prepare_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens with the class token (and registers) and position embeddings: ``[B, 1 (+R) + N, D]``."""
        height, width = x.shape[-2:]
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(len(tokens), -1, -1), tokens), dim=1)
        tokens = tokens + self.interpolate_pos_encoding(tokens.shape[1] - 1, height, width)
        if self.register_tokens is not None:
            registers = self.register_tokens.expand(len(tokens), -1, -1)
            tokens = torch.cat((tokens[:, :1], registers, tokens[:, 1:]), dim=1)
        return tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.prepare_tokens(x)
        for block in self.blocks:
            tokens = block(tokens)
        return self.head(self.norm(tokens)[:, 0])

    def get_last_selfattention(self, x: torch.Tensor) -> torch.Tensor:
        """The attention of the last block, ``[B, heads, N, N]``; tokens: class, registers, patches (row-major)."""
        tokens = self.prepare_tokens(x)
        for block in self.blocks[:-1]:
            tokens = block(tokens)
        last = self.blocks[-1]
        return last.attn.attention_weights(last.norm1(tokens))  # type: ignore[operator,union-attr]


def vit_dino(patch_size: int, embed_dim: int, depth: int = 12, num_heads: int = 6) -> VisionTransformer:
    """A DINO (v1) vision transformer for 224 px images."""
    return VisionTransformer(patch_size, embed_dim, depth, num_heads)


def vit_dinov2(embed_dim: int, depth: int, num_heads: int, registers: bool = False) -> VisionTransformer:
    """A DINOv2 vision transformer: 14 px patches, 518 px training size, layer scale; ``registers``: 4 of them."""
    return VisionTransformer(
        14,
        embed_dim,
        depth,
        num_heads,
        img_size=518,
        layer_scale=1.0,
        n_registers=4 if registers else 0,
        dinov2=True,
        interpolate_offset=0.0 if registers else 0.1,
    )


# OML's architecture names -> builders (sizes: S = 384 wide, 6 heads; B = 768, 12; L = 1024, 16 heads, 24 deep).
ARCHITECTURES = {
    "vits8": lambda: vit_dino(8, 384, 12, 6),
    "vits16": lambda: vit_dino(16, 384, 12, 6),
    "vitb8": lambda: vit_dino(8, 768, 12, 12),
    "vitb16": lambda: vit_dino(16, 768, 12, 12),
    "vits14": lambda: vit_dinov2(384, 12, 6),
    "vitb14": lambda: vit_dinov2(768, 12, 12),
    "vitl14": lambda: vit_dinov2(1024, 24, 16),
    "vits14_reg": lambda: vit_dinov2(384, 12, 6, registers=True),
    "vitb14_reg": lambda: vit_dinov2(768, 12, 12, registers=True),
    "vitl14_reg": lambda: vit_dinov2(1024, 24, 16, registers=True),
}

__all__ = ["ARCHITECTURES", "VisionTransformer", "vit_dino", "vit_dinov2"]
