"""Image transforms by name (OML's ``oml.registry.transforms``), and the transforms of the zoo's checkpoints.

The albumentations entries (``norm_albu``, ``norm_resize_albu``, ``norm_resize_albu_clip``) need the
``albu`` extra (calling them without it names the extra). The zoo checkpoints that OML pairs with
albumentations (``vits16_cars``, ``vits16_cub``; CLIP's with CLIP's mean and std) get Pillow transforms here,
so that they need no extra: a resize to a square (not OML's keep-aspect resize with white padding), to
tensor, normalisation.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from oml_fast.const import MEAN_CLIP, STD_CLIP
from oml_fast.registry.base import Registry, block_name_args, to_plain_dict
from oml_fast.transforms.images.albumentations import (
    get_normalisation_albu,
    get_normalisation_resize_albu,
    get_normalisation_resize_albu_clip,
)
from oml_fast.transforms.images.ops import Compose
from oml_fast.transforms.images.torchvision import (
    get_augs_hypvit,
    get_augs_torch,
    get_normalisation_resize_hypvit,
    get_normalisation_resize_torch,
    get_normalisation_torch,
)
from oml_fast.transforms.images.utils import (
    TImReader,
    TTransforms,
    get_im_reader_for_transforms,
    is_albu_transform,
)


def get_unicom_transforms(im_size: int) -> Compose:
    """Unicom's transforms (OML's ``unicom_transforms``): shorter side to ``im_size`` (bicubic), central
    ``im_size`` crop, to tensor, CLIP's normalisation."""
    return get_normalisation_resize_hypvit(im_size=im_size, crop_size=im_size, mean=MEAN_CLIP, std=STD_CLIP)


TRANSFORMS_TORCH = Registry(
    "transforms",
    {
        "augs_torch": get_augs_torch,
        "norm_torch": get_normalisation_torch,
        "norm_resize_torch": get_normalisation_resize_torch,
        "augs_hypvit_torch": get_augs_hypvit,
        "norm_resize_hypvit_torch": get_normalisation_resize_hypvit,
        "unicom_transforms": get_unicom_transforms,
    },
)

TRANSFORMS_ALBU = Registry(
    "transforms",
    {
        "norm_albu": get_normalisation_albu,
        "norm_resize_albu": get_normalisation_resize_albu,
        "norm_resize_albu_clip": get_normalisation_resize_albu_clip,
    },
)

TRANSFORMS_REGISTRY = Registry("transforms", {**TRANSFORMS_ALBU, **TRANSFORMS_TORCH})


def get_transforms(name: str, **kwargs: Any) -> TTransforms:
    """``TRANSFORMS_REGISTRY[name](**kwargs)``: the factory's transforms."""
    return TRANSFORMS_REGISTRY[name](**kwargs)


def get_transforms_by_cfg(cfg: Any) -> TTransforms:
    """The transforms of a ``{name, args}`` block."""
    name, args = block_name_args(cfg)
    return get_transforms(name, **args)


def _hypvit(im_size: int, crop_size: int = 224) -> dict[str, Any]:
    return {
        "factory": get_normalisation_resize_hypvit,
        "kwargs": {"im_size": im_size, "crop_size": crop_size},
    }


def _resize(im_size: int) -> dict[str, Any]:
    return {"factory": get_normalisation_resize_torch, "kwargs": {"im_size": im_size}}


def _resize_clip(im_size: int) -> dict[str, Any]:
    return {
        "factory": get_normalisation_resize_torch,
        "kwargs": {"im_size": im_size, "mean": MEAN_CLIP, "std": STD_CLIP},
    }


def _unicom(im_size: int) -> dict[str, Any]:
    return {"factory": get_unicom_transforms, "kwargs": {"im_size": im_size}}


# Built on demand (a fresh Compose per call), unlike OML's dict of ready objects.
_TRANSFORMS_FOR_PRETRAINED_SPECS: dict[str, dict[str, Any]] = {
    "resnet50_moco_v2": _hypvit(256),
    "resnet18_imagenet1k_v1": _hypvit(256),
    "resnet34_imagenet1k_v1": _hypvit(256),
    "resnet50_imagenet1k_v1": _hypvit(256),
    "resnet101_imagenet1k_v1": _hypvit(256),
    "resnet152_imagenet1k_v1": _hypvit(256),
    "vitb8_dino": _resize(224),
    "vitb16_dino": _resize(224),
    "vits8_dino": _resize(224),
    "vits16_dino": _resize(224),
    "vits16_inshop": _hypvit(224),
    "vits16_sop": _hypvit(224),
    "vits16_cars": _resize(224),
    "vits16_cub": _resize(224),
    "vits16_224_mlp_384_inshop": _hypvit(256),
    # DINOv2 (oml_fast.models.ViTExtractor): 224 px, a multiple of its 14 px patches
    "vitb14_dinov2": _hypvit(224),
    "vitb14_reg_dinov2": _hypvit(224),
    "vitl14_dinov2": _hypvit(224),
    "vitl14_reg_dinov2": _hypvit(224),
    "vits14_dinov2": _hypvit(224),
    "vits14_reg_dinov2": _hypvit(224),
    # CLIP (ViTCLIPExtractor) and Unicom (ViTUnicomExtractor): CLIP's mean and std
    **{
        f"{source}_{arch}": _resize_clip(224)
        for source in ("sber", "openai")
        for arch in ("vitb32_224", "vitb16_224", "vitl14_224")
    },
    "vitb32_unicom": _unicom(224),
    "vitb16_unicom": _unicom(224),
    "vitl14_unicom": _unicom(224),
    "vitl14_336px_unicom": _unicom(336),
}

TRANSFORMS_FOR_PRETRAINED = Registry("pretrained transforms", _TRANSFORMS_FOR_PRETRAINED_SPECS)


def get_transforms_for_pretrained(weights: str) -> tuple[TTransforms, TImReader]:
    """``(transforms, image reader)`` that the zoo checkpoint ``weights`` was trained with.

    >>> transforms, imread = get_transforms_for_pretrained("vits16_dino")
    >>> transforms.transforms[0]
    Resize(size=(224, 224), interpolation=bilinear)
    """
    spec = TRANSFORMS_FOR_PRETRAINED[weights]
    transforms = spec["factory"](**spec["kwargs"])
    return transforms, get_im_reader_for_transforms(transforms)


def save_transforms_as_files(cfg: Any) -> list[tuple[str, str]]:
    """Saves the albumentations transforms of a config (blocks under keys holding ``transforms``) as YAML
    files, as OML: ``.hydra/<key>.yaml`` when ``.hydra/`` exists in the working folder, else ``<key>.yaml``.

    Returns ``[(key, path)]`` of the files written; other transforms are not saved. A block that cannot be
    built is reported and skipped (as OML).
    """
    keys_files = []
    for key, value in to_plain_dict(cfg).items():
        if "transforms" not in str(key):
            continue
        try:
            transforms = get_transforms_by_cfg(value)
            if is_albu_transform(transforms):
                albu = sys.modules["albumentations"]
                path = str(Path(".hydra") / f"{key}.yaml") if Path(".hydra").exists() else f"{key}.yaml"
                albu.save(transforms, path, data_format="yaml")
                keys_files.append((str(key), path))
        except Exception:
            print(f"We are not able to interpret {key} as albumentations transforms and log them as a file.")
    return keys_files


__all__ = [
    "TRANSFORMS_TORCH",
    "TRANSFORMS_ALBU",
    "TRANSFORMS_REGISTRY",
    "TRANSFORMS_FOR_PRETRAINED",
    "get_transforms",
    "get_transforms_by_cfg",
    "get_transforms_for_pretrained",
    "save_transforms_as_files",
]
