"""OML's torchvision-style transform factories (``oml.transforms.images.torchvision``), built on
:mod:`oml_fast.transforms.images.ops` (Pillow + torch; torchvision is not needed).

Each returns a :class:`~oml_fast.transforms.images.ops.Compose` mapping a ``PIL.Image`` to a
``FloatTensor[3, H, W]``, with the steps OML's factory of the same name has.

>>> from PIL import Image
>>> tuple(get_normalisation_resize_torch(im_size=32)(Image.new("RGB", (64, 48))).shape)
(3, 32, 32)
>>> tuple(get_normalisation_resize_hypvit(im_size=40, crop_size=32)(Image.new("RGB", (64, 48))).shape)
(3, 32, 32)
"""

from __future__ import annotations

from oml_fast.const import MEAN, STD, TNormParam
from oml_fast.transforms.images.ops import (
    BICUBIC,
    CenterCrop,
    ColorJitter,
    Compose,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
)


def get_augs_torch(im_size: int, mean: TNormParam = MEAN, std: TNormParam = STD) -> Compose:
    """Training augmentations: resize to ``im_size x im_size``, random horizontal flip, (identity) color
    jitter, to tensor, normalise."""
    return Compose(
        [
            Resize(size=(im_size, im_size)),
            RandomHorizontalFlip(),
            ColorJitter(),
            ToTensor(),
            Normalize(mean=mean, std=std),
        ]
    )


def get_augs_hypvit(
    im_size: int = 224, min_scale: float = 0.2, mean: TNormParam = MEAN, std: TNormParam = STD
) -> Compose:
    """Training augmentations of Hyp-ViT: random resized crop (area ``[min_scale, 1]``, bicubic), flip, normalise."""
    return Compose(
        [
            RandomResizedCrop(im_size, scale=(min_scale, 1.0), interpolation=BICUBIC),
            RandomHorizontalFlip(),
            ToTensor(),
            Normalize(mean=mean, std=std),
        ]
    )


def get_normalisation_resize_hypvit(
    im_size: int = 224, crop_size: int = 224, mean: TNormParam = MEAN, std: TNormParam = STD
) -> Compose:
    """Shorter side to ``im_size`` (bicubic), central ``crop_size`` crop, to tensor, normalise."""
    return Compose(
        [
            Resize(im_size, interpolation=BICUBIC),
            CenterCrop(crop_size),
            ToTensor(),
            Normalize(mean=mean, std=std),
        ]
    )


def get_normalisation_torch(mean: TNormParam = MEAN, std: TNormParam = STD) -> Compose:
    """To tensor and normalise, no resizing."""
    return Compose([ToTensor(), Normalize(mean=mean, std=std)])


def get_normalisation_resize_torch(im_size: int, mean: TNormParam = MEAN, std: TNormParam = STD) -> Compose:
    """Resize to ``im_size x im_size``, to tensor, normalise (the default transform of the image datasets)."""
    return Compose([Resize(size=(im_size, im_size)), ToTensor(), Normalize(mean=mean, std=std)])


__all__ = [
    "get_augs_torch",
    "get_normalisation_torch",
    "get_normalisation_resize_torch",
    "get_augs_hypvit",
    "get_normalisation_resize_hypvit",
]
