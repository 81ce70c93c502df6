"""CLIP image-tower extractor (OML's ``ViTCLIPExtractor``) on oml_fast's own CLIP transformer.

Zoo (``ViTCLIPExtractor.pretrained_models``, OML's names): ``openai_vitb16_224``, ``openai_vitb32_224``,
``openai_vitl14_224`` (OpenAI's TorchScript archives: only their ``visual`` state dict is read) and
``sber_vitb16_224``, ``sber_vitb32_224``, ``sber_vitl14_224`` (ruCLIP's state dicts).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, MutableMapping
from pathlib import Path
from typing import Any

import torch

from oml_fast.errors import InvalidInputError
from oml_fast.models.base import Extractor, resolve_weights
from oml_fast.models.utils import (
    filter_state_dict,
    remove_criterion_in_state_dict,
    remove_prefix_from_state_dict,
)
from oml_fast.models.vit_clip.architecture import (
    CLIPVisionTransformer,
    vitb16_224,
    vitb32_224,
    vitl14_224,
    vitl14_336,
)
from oml_fast.models.weights import WeightsLoadingError, load_checked, read_checkpoint

_OPENAI_URL = "https://openaipublic.azureedge.net/clip/models"
_SBER_URL = "https://huggingface.co/sberbank-ai"


def _record(url: str, md5: str, jitted: bool, fname: str, arch: str) -> dict[str, Any]:
    return {
        "url": url,
        "hash": md5,
        "is_jitted": jitted,
        "fname": fname,
        "init_args": {"arch": arch, "normalise_features": False},
    }


class ViTCLIPExtractor(Extractor):
    """CLIP's image tower: ``FloatTensor[B, 3, S, S] -> FloatTensor[B, feat_dim]`` (512 for ViT-B, 768 for ViT-L),
    where ``S`` is the size in the architecture's name (224 or 336) and no other.

    Args:
        weights: ``None`` (random initialisation), a path of a state dict / checkpoint (the keys of the image
            tower, possibly under a ``visual.`` prefix; other keys are ignored), or a name of
            ``pretrained_models``.
        arch: ``vitb16_224``, ``vitb32_224``, ``vitl14_224`` or ``vitl14_336``.
        normalise_features: divide the embeddings by their (detached) L2 norm.
    """

    constructors: dict[str, Callable[[], CLIPVisionTransformer]] = {
        "vitb16_224": vitb16_224,
        "vitb32_224": vitb32_224,
        "vitl14_224": vitl14_224,
        "vitl14_336": vitl14_336,
    }

    pretrained_models: dict[str, Any] = {
        "openai_vitb16_224": _record(
            f"{_OPENAI_URL}/5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",
            "44c3d804ecac03d9545ac1a3adbca3a6",
            True,
            "openai_vitb16_224.ckpt",
            "vitb16_224",
        ),
        "openai_vitb32_224": _record(
            f"{_OPENAI_URL}/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
            "3ba34e387b24dfe590eeb1ae6a8a122b",
            True,
            "openai_vitb32_224.ckpt",
            "vitb32_224",
        ),
        "openai_vitl14_224": _record(
            f"{_OPENAI_URL}/b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
            "096db1af569b284eb76b3881534822d9",
            True,
            "openai_vitl14_224.ckpt",
            "vitl14_224",
        ),
        "sber_vitb16_224": _record(
            f"{_SBER_URL}/ruclip-vit-base-patch16-224/resolve/main/pytorch_model.bin",
            "7882e07674d78c674e33cb892a68bbfc",
            False,
            "sber_vitb16_224.ckpt",
            "vitb16_224",
        ),
        "sber_vitb32_224": _record(
            f"{_SBER_URL}/ruclip-vit-base-patch32-224/resolve/main/pytorch_model.bin",
            "e2c4dab46a3cfa608bdd762973e90d32",
            False,
            "sber_vitb32_224.ckpt",
            "vitb32_224",
        ),
        "sber_vitl14_224": _record(
            f"{_SBER_URL}/ruclip-vit-large-patch14-224/resolve/main/pytorch_model.bin",
            "9b4a1cd25d15bad4ffd2ba6e34b8a67c",
            False,
            "sber_vitl14_224.ckpt",
            "vitl14_224",
        ),
    }

    def __init__(self, weights: str | None, arch: str, normalise_features: bool = True):
        if arch not in self.constructors:
            raise InvalidInputError(f"`arch` must be one of {list(self.constructors)}, got '{arch}'")
        super().__init__()
        self.normalize = self.normalise_features = normalise_features
        self.visual = self.constructors[arch]()
        self.input_size = self.visual.input_resolution
        if weights is None:
            return
        path = resolve_weights(self, weights)
        state_dict: MutableMapping[str, torch.Tensor]
        if self.pretrained_models.get(str(weights), {}).get("is_jitted", False):
            state_dict = _jitted_visual_state_dict(path)
        else:
            loaded = read_checkpoint(path)
            state_dict = loaded["state_dict"] if isinstance(loaded.get("state_dict"), dict) else loaded
            state_dict = take_visual_part_of_vit_clip(
                remove_criterion_in_state_dict(dict(state_dict)), needed_keys=self.visual.state_dict().keys()
            )
            try:
                state_dict = remove_prefix_from_state_dict(state_dict, trial_key="conv1.weight")
            except (KeyError, ValueError) as error:
                raise WeightsLoadingError(f"weights '{weights}' hold no CLIP image tower: {error}") from error
        load_checked(self.visual, state_dict, weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise InvalidInputError(
                f"The model expects input images to be resized to {self.input_size}x{self.input_size}, "
                f"got {list(x.shape)}"
            )
        return self._maybe_normalise(self.visual(x))

    @property
    def feat_dim(self) -> int:
        return self.visual.proj.shape[-1]


def _jitted_visual_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``visual`` state dict of a TorchScript CLIP archive (OpenAI's ``.pt`` files), in float32."""
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated, but these archives are TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            visual = torch.jit.load(str(path), map_location="cpu").visual
    except Exception as error:
        raise WeightsLoadingError(
            f"'{path}' is not a TorchScript CLIP archive with a `visual` part: {error}"
        ) from error
    return {key: value.float() for key, value in visual.state_dict().items()}


def take_visual_part_of_vit_clip(
    state_dict: MutableMapping[str, torch.Tensor], needed_keys: Iterable[str]
) -> MutableMapping[str, torch.Tensor]:
    """Keys holding ``visual`` lose everything up to ``visual.``; then only ``needed_keys`` are kept (in place)."""
    for key in list(state_dict):
        if "visual" in key:
            state_dict[key[key.find("visual") + len("visual") + 1 :]] = state_dict.pop(key)
    return filter_state_dict(state_dict, needed_keys=needed_keys)


__all__ = ["ViTCLIPExtractor", "take_visual_part_of_vit_clip"]
