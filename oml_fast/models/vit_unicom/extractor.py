"""Unicom extractor (OML's ``ViTUnicomExtractor``) on oml_fast's own Unicom transformer.

Zoo (``ViTUnicomExtractor.pretrained_models``, OML's names, which are also the architectures' names):
``vitb32_unicom``, ``vitb16_unicom``, ``vitl14_unicom``, ``vitl14_336px_unicom`` (DeepGlint's float16
state dicts, checked by their SHA-256).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from oml_fast.errors import InvalidInputError
from oml_fast.models.base import Extractor, checkpoint_state_dict
from oml_fast.models.vit_unicom.architecture import (
    UnicomVisionTransformer,
    unicom_vitb16,
    unicom_vitb32,
    unicom_vitl14,
    unicom_vitl14_336px,
)
from oml_fast.models.weights import load_checked

_RELEASES = "https://github.com/deepglint/unicom/releases/download"


def _record(arch: str, release: str, fname: str, sha256: str) -> dict[str, Any]:
    return {
        "url": f"{_RELEASES}/{release}/{fname}",
        "sha256": sha256,
        "fname": fname,
        "init_args": {"arch": arch, "normalise_features": True},
    }


class ViTUnicomExtractor(Extractor):
    """A Unicom transformer: ``FloatTensor[B, 3, S, S] -> FloatTensor[B, feat_dim]``, ``S`` = 224 (336 for
    ``vitl14_336px_unicom``); ``feat_dim`` 512 for ``vitb32_unicom``, else 768.

    Args:
        weights: ``None`` (random initialisation), a path of a state dict / checkpoint, or a name of
            ``pretrained_models``.
        arch: ``vitb32_unicom``, ``vitb16_unicom``, ``vitl14_unicom`` or ``vitl14_336px_unicom``.
        normalise_features: divide the embeddings by their (detached) L2 norm.
        use_gradient_ckpt: recompute the blocks in the backward pass (less memory, more time) when training.
    """

    constructors: dict[str, Callable[..., UnicomVisionTransformer]] = {
        "vitb32_unicom": unicom_vitb32,
        "vitb16_unicom": unicom_vitb16,
        "vitl14_unicom": unicom_vitl14,
        "vitl14_336px_unicom": unicom_vitl14_336px,
    }

    pretrained_models: dict[str, Any] = {
        "vitb32_unicom": _record(
            "vitb32_unicom",
            "b32",
            "FP16-ViT-B-32.pt",
            "f9d5696a9b58dbbbefee2d31615ca59084f2895a0fdd2ca4c235e0f9b2793f7a",
        ),
        "vitb16_unicom": _record(
            "vitb16_unicom",
            "b16",
            "FP16-ViT-B-16.pt",
            "c04f324f7c3b4435667236ec6c0eca1cd62f9d64fbfc2d06f8e8e60e6497edef",
        ),
        "vitl14_unicom": _record(
            "vitl14_unicom",
            "l14",
            "FP16-ViT-L-14.pt",
            "ff3ab62ff782876460099e6e0ee17b73a7c01109de2fffd595f16f4129404bbd",
        ),
        "vitl14_336px_unicom": _record(
            "vitl14_336px_unicom",
            "l14_336px",
            "FP16-ViT-L-14-336px.pt",
            "3916ab5aed3b522fc90345be8b4457fe5dad60801ad2af5a6871c0c096e8d7ea",
        ),
    }

    def __init__(
        self, weights: Path | str | None, arch: str, normalise_features: bool, use_gradient_ckpt: bool = True
    ):
        if arch not in self.constructors:
            raise InvalidInputError(f"`arch` must be one of {list(self.constructors)}, got '{arch}'")
        super().__init__()
        self.arch = arch
        self.normalise_features = normalise_features
        self.model = self.constructors[arch](using_checkpoint=use_gradient_ckpt)
        if weights is not None:
            state_dict = checkpoint_state_dict(self, weights, trial_key="norm.bias")
            load_checked(self.model, {key: value.float() for key, value in state_dict.items()}, weights)

    @property
    def feat_dim(self) -> int:
        return self.model.feature[-1].num_features  # type: ignore[return-value]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._maybe_normalise(self.model(x))


__all__ = ["ViTUnicomExtractor"]
