"""ResNet extractor (OML's ``ResnetExtractor``) on oml_fast's own ResNet (no torchvision needed).

Zoo (``ResnetExtractor.pretrained_models``): ``resnet50_moco_v2`` (MoCo v2, 800 epochs, GeM pooling with
p = 5) and ``resnet{18,34,50,101,152}_imagenet1k_v1`` (torchvision's ImageNet weights, the same files
torchvision downloads, found in torch hub's cache when torchvision has them there).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from oml_fast.errors import InvalidInputError
from oml_fast.models.base import Extractor, checkpoint_state_dict, resolve_weights
from oml_fast.models.heatmaps import as_rgb_array, like_input, normalised_tensor, overlay_heatmap
from oml_fast.models.resnet.architecture import (
    Bottleneck,
    ResNet,
    resnet18,
    resnet34,
    resnet50,
    resnet50_projector,
    resnet101,
    resnet152,
)
from oml_fast.models.resnet.pooling import GEM
from oml_fast.models.weights import WeightsLoadingError, load_checked, read_checkpoint

_TORCHVISION = "https://download.pytorch.org/models"


def _imagenet(arch: str, fname: str) -> dict[str, Any]:
    return {
        "url": f"{_TORCHVISION}/{fname}",
        "hash": None,
        "fname": fname,
        "init_args": {"arch": arch, "remove_fc": True, "normalise_features": False, "gem_p": None},
    }


class ResnetExtractor(Extractor):
    """A ResNet whose output is the pooled last feature map (``remove_fc``) or its ``fc`` output.

    ``forward``: ``FloatTensor[B, 3, H, W] -> FloatTensor[B, feat_dim]``; ``feat_dim`` is 512 (resnet18/34)
    or 2048 (the others) with ``remove_fc``, else the size of ``fc``'s output (1000; 128 for
    ``resnet50_projector``).

    Args:
        weights: ``None`` (random initialisation), a path or URL of a state dict / checkpoint, or a name
            of ``pretrained_models``.
        arch: one of ``constructors``: ``resnet18``, ``resnet34``, ``resnet50``, ``resnet50_projector``
            (ResNet-50 with MoCo's two-layer projection head as ``fc``), ``resnet101``, ``resnet152``.
        gem_p: power of generalised mean pooling replacing average pooling (``None``: average pooling).
        remove_fc: drop the last fully connected layer (or MoCo's head) after loading the weights.
        normalise_features: divide the embeddings by their (detached) L2 norm.

    >>> ResnetExtractor(None, "resnet18", gem_p=3.0, remove_fc=True, normalise_features=True).feat_dim
    512
    """

    constructors: dict[str, Callable[[], ResNet]] = {
        "resnet18": resnet18,
        "resnet34": resnet34,
        "resnet50": resnet50,
        "resnet50_projector": resnet50_projector,
        "resnet101": resnet101,
        "resnet152": resnet152,
    }

    pretrained_models: dict[str, Any] = {
        "resnet50_moco_v2": {
            "url": "https://dl.fbaipublicfiles.com/moco/moco_checkpoints/moco_v2_800ep/moco_v2_800ep_pretrain.pth.tar",
            "hash": "a04e12f8",
            "fname": "moco_v2_800ep_pretrain.pth.tar",
            "init_args": {
                "arch": "resnet50_projector",
                "remove_fc": True,
                "normalise_features": False,
                "gem_p": 5.0,
            },
        },
        "resnet18_imagenet1k_v1": _imagenet("resnet18", "resnet18-f37072fd.pth"),
        "resnet34_imagenet1k_v1": _imagenet("resnet34", "resnet34-b627a593.pth"),
        "resnet50_imagenet1k_v1": _imagenet("resnet50", "resnet50-0676ba61.pth"),
        "resnet101_imagenet1k_v1": _imagenet("resnet101", "resnet101-63fe2227.pth"),
        "resnet152_imagenet1k_v1": _imagenet("resnet152", "resnet152-394f9c45.pth"),
    }

    def __init__(
        self,
        weights: str | Path | None,
        arch: str,
        gem_p: float | None,
        remove_fc: bool,
        normalise_features: bool,
    ):
        if arch not in self.constructors:
            raise InvalidInputError(f"`arch` must be one of {list(self.constructors)}, got '{arch}'")
        super().__init__()
        self.arch = arch
        self.gem_p = gem_p
        self.remove_fc = remove_fc
        self.normalise_features = normalise_features
        self.model = self.constructors[arch]()
        if gem_p is not None:
            self.model.avgpool = GEM(p=gem_p)
        if weights is not None:
            if weights == "resnet50_moco_v2":
                state_dict = load_moco_weights(resolve_weights(self, weights))
            else:
                state_dict = checkpoint_state_dict(self, weights, trial_key="layer4.")
            if remove_fc:
                state_dict.pop("fc.weight", None)
                state_dict.pop("fc.bias", None)
                if arch != "resnet50_projector":
                    self.model.fc = nn.Identity()
            load_checked(self.model, state_dict, weights)
        if remove_fc:
            self.model.fc = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._maybe_normalise(self.model(x))

    def get_last_conv_channels(self) -> int:
        """Channels of the last feature map: 512 for resnet18/34, 2048 for the others."""
        last_block = self.model.layer4[-1]
        if isinstance(last_block, Bottleneck):
            return last_block.bn3.num_features
        return last_block.bn2.num_features  # type: ignore[union-attr,return-value]

    @property
    def feat_dim(self) -> int:
        fc = self.model.fc
        if isinstance(fc, nn.Identity):
            return self.get_last_conv_channels()
        last = fc[-1] if isinstance(fc, nn.Sequential) else fc
        if not isinstance(last, nn.Linear):
            raise TypeError(f"cannot tell the output size of `fc` = {fc}")
        return last.out_features

    def draw_gradcam(self, image: Any) -> Any:
        """Grad-CAM of the top-scoring output of ``fc`` over ``image`` (needs ``remove_fc=False``).

        The gradient of that output with respect to the last block's feature map, averaged per channel,
        weights the channels; their positive sum, upsampled (bilinear) and scaled to [0, 1], is the heat map.
        ``image``: ``uint8[H, W, 3]`` (values 0..255) or a PIL image; returns the same type and size.
        """
        if self.remove_fc:
            raise InvalidInputError(
                "draw_gradcam needs the fully connected layer: build with `remove_fc=False`"
            )
        array = as_rgb_array(image)
        x = normalised_tensor(array).unsqueeze(0).to(next(self.parameters()).device)
        features: list[torch.Tensor] = []
        hook = self.model.layer4.register_forward_hook(lambda _m, _i, output: features.append(output))
        was_training = self.training
        self.eval()
        try:
            with torch.enable_grad():
                scores = self.model(x)
                (grads,) = torch.autograd.grad(scores[0, scores[0].argmax()], features[0])
        finally:
            hook.remove()
            self.train(was_training)
        cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * features[0]).sum(dim=1, keepdim=True))
        cam = nn.functional.interpolate(
            cam.detach(), size=array.shape[:2], mode="bilinear", align_corners=False
        )
        heat = cam[0, 0].float().cpu().numpy()
        heat = (heat - heat.min()) / max(heat.max() - heat.min(), 1e-7)
        return like_input(overlay_heatmap(array, heat), image)


def load_moco_weights(path_to_model: str | Path) -> dict[str, torch.Tensor]:
    """The query encoder of a checkpoint of the MoCo repository (keys ``module.encoder_q.*``), prefix removed."""
    state_dict = read_checkpoint(path_to_model).get("state_dict")
    prefix = "module.encoder_q."
    if not isinstance(state_dict, dict) or not any(key.startswith(prefix) for key in state_dict):
        raise WeightsLoadingError(
            f"'{path_to_model}' is not a MoCo checkpoint: no `state_dict` with '{prefix}*' keys"
        )
    return {key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)}


__all__ = ["ResnetExtractor", "load_moco_weights"]
