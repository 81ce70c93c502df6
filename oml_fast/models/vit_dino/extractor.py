"""Vision-transformer extractor (OML's ``ViTExtractor``) on oml_fast's own DINO / DINOv2 transformers.

Zoo (``ViTExtractor.pretrained_models``, OML's names): ``vits16_dino``, ``vits8_dino``, ``vitb16_dino``,
``vitb8_dino`` (DINO, ImageNet), ``vits14_dinov2``, ``vitb14_dinov2``, ``vitl14_dinov2`` and their
``*_reg_dinov2`` versions (DINOv2, LVD-142M), and OML's metric-learning checkpoints ``vits16_inshop``,
``vits16_sop``, ``vits16_cub``, ``vits16_cars``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from oml_fast.const import MEAN, STD, TNormParam
from oml_fast.errors import InvalidInputError
from oml_fast.models.base import Extractor, checkpoint_state_dict
from oml_fast.models.heatmaps import as_rgb_array, like_input, normalised_tensor, overlay_heatmap
from oml_fast.models.vit_dino.architecture import ARCHITECTURES, VisionTransformer
from oml_fast.models.weights import load_checked

_FB_URL = "https://dl.fbaipublicfiles.com"
_OML_STORAGE = "https://oml.daloroserver.com/download/checkpoints"


def _record(url: str | list[str], md5: str, fname: str, arch: str, normalise: bool = False) -> dict[str, Any]:
    return {
        "url": url,
        "hash": md5,
        "fname": fname,
        "init_args": {"arch": arch, "normalise_features": normalise},
    }


def _dinov2(arch: str, md5: str, registers: bool = False) -> dict[str, Any]:
    model = f"dinov2_{arch.split('_')[0]}"
    name = f"{model}_reg4" if registers else model
    return _record(f"{_FB_URL}/dinov2/{model}/{name}_pretrain.pth", md5, f"{name}.ckpt", arch)


class ViTExtractor(Extractor):
    """A DINO / DINOv2 vision transformer whose embedding is the class token.

    ``forward``: ``FloatTensor[B, 3, H, W] -> FloatTensor[B, feat_dim]`` (384 for ViT-S, 768 for ViT-B, 1024
    for ViT-L). DINO models take any size (position embeddings are interpolated); DINOv2 ones need sides
    that are multiples of 14.

    Args:
        weights: ``None`` (random initialisation), a path or URL of a state dict / checkpoint, or a name of
            ``pretrained_models``.
        arch: one of ``constructors``: ``vits8``, ``vits16``, ``vitb8``, ``vitb16`` (DINO), ``vits14``,
            ``vitb14``, ``vitl14``, ``vits14_reg``, ``vitb14_reg``, ``vitl14_reg`` (DINOv2).
        normalise_features: divide the embeddings by their (detached) L2 norm.
        use_multi_scale: average the embeddings of the image at scales 1, 1/sqrt(2) and 1/2 (bilinear).

    >>> ViTExtractor(None, "vits16", normalise_features=True).feat_dim
    384
    """

    constructors = ARCHITECTURES

    pretrained_models: dict[str, Any] = {
        "vits16_dino": _record(
            f"{_FB_URL}/dino/dino_deitsmall16_pretrain/dino_deitsmall16_pretrain.pth",
            "cf0f22",
            "vits16_dino.ckpt",
            "vits16",
        ),
        "vits8_dino": _record(
            f"{_FB_URL}/dino/dino_deitsmall8_pretrain/dino_deitsmall8_pretrain.pth",
            "230cd5",
            "vits8_dino.ckpt",
            "vits8",
        ),
        "vitb16_dino": _record(
            f"{_FB_URL}/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth",
            "552daf",
            "vitb16_dino.ckpt",
            "vitb16",
        ),
        "vitb8_dino": _record(
            f"{_FB_URL}/dino/dino_vitbase8_pretrain/dino_vitbase8_pretrain.pth",
            "556550",
            "vitb8_dino.ckpt",
            "vitb8",
        ),
        "vits14_dinov2": _dinov2("vits14", "2e405c"),
        "vits14_reg_dinov2": _dinov2("vits14_reg", "2a50c5", registers=True),
        "vitb14_dinov2": _dinov2("vitb14", "8635e7"),
        "vitb14_reg_dinov2": _dinov2("vitb14_reg", "13d13c", registers=True),
        "vitl14_dinov2": _dinov2("vitl14", "19a02c"),
        "vitl14_reg_dinov2": _dinov2("vitl14_reg", "8b6364", registers=True),
        "vits16_inshop": _record(
            [f"{_OML_STORAGE}/inshop/vits16_inshop_a76b85.ckpt", "1niX-TC8cj6j369t7iU2baHQSVN3MVJbW"],
            "a76b85",
            "vits16_inshop.ckpt",
            "vits16",
        ),
        "vits16_sop": _record(
            [f"{_OML_STORAGE}/sop/vits16_sop_21e743.ckpt", "1zuGRHvF2KHd59aw7i7367OH_tQNOGz7A"],
            "21e743",
            "vits16_sop.ckpt",
            "vits16",
            normalise=True,
        ),
        "vits16_cub": _record(
            [f"{_OML_STORAGE}/cub/vits16_cub.ckpt", "1p2tUosFpGXh5sCCdzlXtjV87kCDfG34G"],
            "e82633",
            "vits16_cub.ckpt",
            "vits16",
        ),
        "vits16_cars": _record(
            [f"{_OML_STORAGE}/cars/vits16_cars.ckpt", "1hcOxDRRXrKr6ZTCyBauaY8Ue-pok4Icg"],
            "9f1e59",
            "vits16_cars.ckpt",
            "vits16",
        ),
    }

    def __init__(
        self,
        weights: str | Path | None,
        arch: str,
        normalise_features: bool,
        use_multi_scale: bool = False,
    ):
        if arch not in self.constructors:
            raise InvalidInputError(f"`arch` must be one of {list(self.constructors)}, got '{arch}'")
        super().__init__()
        self.normalise_features = normalise_features
        self.mscale = use_multi_scale
        self.arch = arch
        self.model: VisionTransformer = self.constructors[arch]()
        if weights is not None:
            load_checked(self.model, checkpoint_state_dict(self, weights, trial_key="norm.bias"), weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._multi_scale(x) if self.mscale else self.model(x)
        return self._maybe_normalise(x)

    @property
    def feat_dim(self) -> int:
        return len(self.model.norm.bias)

    def _multi_scale(self, images: torch.Tensor) -> torch.Tensor:
        # DINO's test-time scales; the mean of the three embeddings (their norms are left as they are).
        total = self.model(images)
        for scale in (1 / 2 ** (1 / 2), 1 / 2):
            resized = nn.functional.interpolate(
                images, scale_factor=scale, mode="bilinear", align_corners=False
            )
            total = total + self.model(resized)
        return total / 3

    def draw_attention(self, image: Any) -> Any:
        """The attention of the class token to the patches (last block, mean over heads) over ``image``.

        ``image``: ``uint8[H, W, 3]`` (values 0..255) or a PIL image; returns the same type and size.
        """
        return vis_vit(self, image)


def vis_vit(vit: ViTExtractor, image: Any, mean: TNormParam = MEAN, std: TNormParam = STD) -> Any:
    """:meth:`ViTExtractor.draw_attention` with the normalisation ``mean``, ``std`` of the model's inputs.

    The image is cropped to a multiple of the patch size for the model; the map is upsampled (nearest) to
    whole patches and is zero on the cropped-off border.
    """
    array = as_rgb_array(image)
    model = vit.model
    patch = model.patch_size
    height, width = array.shape[0] - array.shape[0] % patch, array.shape[1] - array.shape[1] % patch
    if height == 0 or width == 0:
        raise InvalidInputError(f"`image` of {list(array.shape[:2])} px is smaller than one {patch} px patch")
    x = normalised_tensor(array[:height, :width], mean, std).unsqueeze(0).to(next(model.parameters()).device)
    was_training = vit.training
    vit.eval()
    try:
        with torch.no_grad():
            attention = model.get_last_selfattention(x)
    finally:
        vit.train(was_training)
    n_registers = 0 if model.register_tokens is None else model.register_tokens.shape[1]
    cls_to_patches = (
        attention[0, :, 0, 1 + n_registers :].mean(dim=0).reshape(height // patch, width // patch)
    )
    heat = np.zeros(array.shape[:2])
    heat[:height, :width] = np.kron(cls_to_patches.float().cpu().numpy(), np.ones((patch, patch)))
    return like_input(overlay_heatmap(array, 0.6 * heat / max(heat.max(), 1e-12), image_weight=0.5), image)


__all__ = ["ViTExtractor", "vis_vit"]
