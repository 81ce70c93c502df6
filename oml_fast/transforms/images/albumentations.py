"""OML's albumentations transforms (``oml.transforms.images.albumentations``), with the ``albu`` extra.

Each factory returns an ``albumentations.Compose`` that maps ``image=np.ndarray[H, W, 3]`` (uint8 RGB, as
:func:`~oml_fast.transforms.images.utils.imread_cv2` reads it) to ``{"image": FloatTensor[3, H', W']}``.
The image datasets call such transforms as OML's do. Importing this module needs nothing; calling a
factory without albumentations raises :class:`~oml_fast.errors.MissingExtraError` naming the extra
(``pip install 'oml_fast[albu]'``).
"""

from __future__ import annotations

import inspect
import os
from types import ModuleType
from typing import Any

from oml_fast.const import MEAN, MEAN_CLIP, PAD_COLOR, STD, STD_CLIP, TNormParam
from oml_fast.errors import require_extra

# OML's alias for a list of albumentations transforms (``List[Union[ImageOnlyTransform, DualTransform]]``);
# a plain list type here, so that importing this module needs no albumentations.
TTransformsList = list[Any]


def _albu() -> ModuleType:
    """``albumentations`` (with ``albumentations.pytorch`` loaded), or MissingExtraError naming ``albu``."""
    # albumentations asks the network for a newer version at import unless told not to; we work offline.
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    albu = require_extra("albumentations", "oml_fast.transforms.images.albumentations")
    require_extra("albumentations.pytorch", "oml_fast.transforms.images.albumentations")
    return albu


def get_normalisation_albu(mean: TNormParam = MEAN, std: TNormParam = STD) -> Any:
    """Normalisation (``(x / 255 - mean) / std``) and conversion to ``FloatTensor[3, H, W]``; no resizing."""
    albu = _albu()
    return albu.Compose([albu.Normalize(mean=mean, std=std), albu.pytorch.ToTensorV2()])


def get_normalisation_resize_albu(im_size: int, mean: TNormParam = MEAN, std: TNormParam = STD) -> Any:
    """The longer side resized to ``im_size`` (aspect kept), padded to ``im_size x im_size`` with
    ``PAD_COLOR`` (white, centred), normalised, as ``FloatTensor[3, im_size, im_size]``."""
    albu = _albu()
    cv2 = require_extra("cv2", "oml_fast.transforms.images.albumentations")
    # albumentations 2.x calls the padding colour `fill`; 1.x called it `value`.
    fill_name = "fill" if "fill" in inspect.signature(albu.PadIfNeeded).parameters else "value"
    return albu.Compose(
        [
            albu.LongestMaxSize(max_size=im_size),
            albu.PadIfNeeded(
                min_height=im_size,
                min_width=im_size,
                border_mode=cv2.BORDER_CONSTANT,
                **{fill_name: PAD_COLOR},
            ),
            albu.Normalize(mean=mean, std=std),
            albu.pytorch.ToTensorV2(),
        ]
    )


def get_normalisation_resize_albu_clip(im_size: int) -> Any:
    """:func:`get_normalisation_resize_albu` with CLIP's mean and std."""
    return get_normalisation_resize_albu(im_size=im_size, mean=MEAN_CLIP, std=STD_CLIP)


__all__ = [
    "get_normalisation_albu",
    "get_normalisation_resize_albu",
    "get_normalisation_resize_albu_clip",
]
