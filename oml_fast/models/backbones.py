"""ResNet (torchvision) and ViT (timm) extractors; these libraries are optional dependencies.

Without the library, constructing the extractor raises ``ImportError`` saying what to install.
Weights: ``None`` (random init), a local path or URL of a state dict / checkpoint, or
``"pretrained"`` for the library's own ImageNet weights (downloaded by the library: needs network
or its cache).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from oml_fast.models.base import Extractor


def _require(module: str, extractor: str):
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{extractor} needs the optional dependency `{module}`, which is not installed: "
            f"`pip install {module}`; or use the built-in `small_cnn` extractor"
        ) from error


class ResnetExtractor(Extractor):
    """A torchvision ResNet without its classifier; embeddings are the pooled features (2048 for resnet50).

    Args:
        arch: ``resnet18`` / ``resnet34`` / ``resnet50`` / ``resnet101`` / ``resnet152``.
        weights: ``None``, ``"pretrained"`` (torchvision's ImageNet weights), or a local path / URL.
        normalise_features: divide the embeddings by their (detached) L2 norm.
    """

    def __init__(
        self, arch: str = "resnet50", weights: str | Path | None = None, normalise_features: bool = False
    ):
        super().__init__()
        torchvision = _require("torchvision", "ResnetExtractor")
        archs = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
        if arch not in archs:
            raise ValueError(f"`arch` must be one of {list(archs)}, got '{arch}'")
        model = getattr(torchvision.models, arch)(weights="DEFAULT" if weights == "pretrained" else None)
        self._feat_dim = int(model.fc.in_features)
        model.fc = nn.Identity()
        self.model = model
        self.normalise_features = bool(normalise_features)
        if weights not in (None, "pretrained"):
            self.load_weights(weights)  # type: ignore[arg-type]

    @property
    def feat_dim(self) -> int:
        return self._feat_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._maybe_normalise(self.model(x))


class ViTExtractor(Extractor):
    """A timm vision transformer without its classifier (``num_classes=0``).

    Args:
        arch: a timm model name, e.g. ``vit_small_patch16_224``.
        weights: ``None``, ``"pretrained"`` (timm's weights), or a local path / URL.
        normalise_features: divide the embeddings by their (detached) L2 norm.
    """

    def __init__(
        self,
        arch: str = "vit_small_patch16_224",
        weights: str | Path | None = None,
        normalise_features: bool = False,
    ):
        super().__init__()
        timm = _require("timm", "ViTExtractor")
        self.model = timm.create_model(arch, pretrained=weights == "pretrained", num_classes=0)
        self._feat_dim = int(self.model.num_features)
        self.normalise_features = bool(normalise_features)
        if weights not in (None, "pretrained"):
            self.load_weights(weights)  # type: ignore[arg-type]

    @property
    def feat_dim(self) -> int:
        return self._feat_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._maybe_normalise(self.model(x))
