"""Image transforms by name (OML's ``oml.registry.transforms``), and the transforms of the zoo's checkpoints.

The albumentations entries (``norm_albu``, ``norm_resize_albu``, ``norm_resize_albu_clip``) need the
``albu`` extra (calling them without it names the extra). The zoo checkpoints that OML pairs with
albumentations (``vits16_cars``, ``vits16_cub``; CLIP's with CLIP's mean and std) get Pillow + torch
transforms here that do the same (keep-aspect resize to 224, centred white padding, normalisation), so that
they need no extra.
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
from oml_fast.transforms.images.pil import get_normalisation_resize_pad
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


# Built at import, as OML's: `get_transforms_for_pretrained` hands out these objects (our transforms hold no
# state). Where OML gives albumentations transforms (keep-aspect resize, white padding), these are their
# Pillow + torch twins (`get_normalisation_resize_pad`), so the zoo needs no `albu` extra.
TRANSFORMS_FOR_PRETRAINED = Registry(
    "pretrained transforms",
    {
        **{
            name: get_normalisation_resize_hypvit(im_size=256, crop_size=224)
            for name in (
                "resnet50_moco_v2",
                *(f"resnet{depth}_imagenet1k_v1" for depth in (18, 34, 50, 101, 152)),
                "vits16_224_mlp_384_inshop",
            )
        },
        **{
            f"vit{arch}_dino": get_normalisation_resize_torch(im_size=224)
            for arch in ("b8", "b16", "s8", "s16")
        },
        **{
            f"vit{arch}_dinov2": get_normalisation_resize_hypvit(im_size=224)
            for arch in ("b14", "b14_reg", "l14", "l14_reg", "s14", "s14_reg")
        },
        **{
            f"{source}_{arch}": get_normalisation_resize_pad(im_size=224, mean=MEAN_CLIP, std=STD_CLIP)
            for source in ("sber", "openai")
            for arch in ("vitb32_224", "vitb16_224", "vitl14_224")
        },
        "vits16_inshop": get_normalisation_resize_hypvit(im_size=224, crop_size=224),
        "vits16_sop": get_normalisation_resize_hypvit(im_size=224, crop_size=224),
        "vits16_cars": get_normalisation_resize_pad(im_size=224),
        "vits16_cub": get_normalisation_resize_pad(im_size=224),
        "vitb32_unicom": get_unicom_transforms(224),
        "vitb16_unicom": get_unicom_transforms(224),
        "vitl14_unicom": get_unicom_transforms(224),
        "vitl14_336px_unicom": get_unicom_transforms(336),
    },
)


def get_transforms_for_pretrained(weights: str) -> tuple[TTransforms, TImReader]:
    """``(transforms, image reader)`` of the zoo checkpoint ``weights``, as OML's (a tuple of the
    ``TRANSFORMS_FOR_PRETRAINED`` entry, the same object on every call, and the reader it takes).

    The reader is Pillow's for all of them: where OML returns albumentations transforms with OpenCV's reader
    (``vits16_cars``, ``vits16_cub``, CLIP's), ours are their Pillow + torch twins.

    >>> transforms, imread = get_transforms_for_pretrained("vits16_dino")
    >>> transforms.transforms[0], imread.__name__
    (Resize(size=(224, 224), interpolation=bilinear), 'imread_pillow')
    """
    transforms = TRANSFORMS_FOR_PRETRAINED[weights]
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
