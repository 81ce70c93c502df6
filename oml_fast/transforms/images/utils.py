"""What OML's ``oml.transforms.images.utils`` offers: the transforms type and the image reader for them.

Transforms are either callables ``PIL.Image -> Tensor`` (ours, torchvision's) or albumentations
transforms (the ``albu`` extra), called as ``transform(image=array)["image"]`` on an RGB ``np.ndarray``
(as OML's datasets do). :func:`is_albu_transform` tells them apart without importing albumentations.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from oml_fast.errors import require_extra

TTransforms = Callable[..., Any]
TImReader = Callable[[Path | str | bytes], Any]


def imread_pillow(im_src: Path | str | bytes) -> Image.Image:
    """Reads an image (a path or encoded bytes) as an RGB ``PIL.Image``."""
    if isinstance(im_src, (Path, str)):
        with Image.open(im_src) as image:
            return image.convert("RGB")
    if isinstance(im_src, bytes):
        with Image.open(BytesIO(im_src)) as image:
            return image.convert("RGB")
    raise TypeError(f"an image source must be a path or bytes, got {type(im_src).__name__}")


def imread_cv2(im_src: Path | str | bytes) -> np.ndarray:
    """Reads an image (a path or encoded bytes) with OpenCV as an RGB ``np.ndarray[H, W, 3]`` (OpenCV comes
    with the ``albu`` extra; without it, :class:`~oml_fast.errors.MissingExtraError`).

    As OML's: the file is decoded as it is stored (``IMREAD_UNCHANGED``), so an EXIF orientation is not
    applied (nor by :func:`imread_pillow`) and a 16-bit image stays uint16; an alpha channel is dropped.
    Grayscale images become three equal channels.
    """
    cv2 = require_extra("cv2", "imread_cv2")
    if isinstance(im_src, (Path, str)):
        image = cv2.imread(str(im_src), cv2.IMREAD_UNCHANGED)
    elif isinstance(im_src, bytes):
        image = cv2.imdecode(np.frombuffer(im_src, np.uint8), cv2.IMREAD_UNCHANGED)
    else:
        raise TypeError(f"an image source must be a path or bytes, got {type(im_src).__name__}")
    if image is None:
        raise OSError(
            f"OpenCV cannot read the image {im_src if not isinstance(im_src, bytes) else '(bytes)'}"
        )
    channels = 1 if image.ndim == 2 else image.shape[2]
    to_rgb = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}
    if channels not in to_rgb:
        raise OSError(
            f"cannot read an image of {channels} channels as RGB: {im_src if not isinstance(im_src, bytes) else '(bytes)'}"
        )
    return cv2.cvtColor(image, to_rgb[channels])


def is_albu_transform(transforms: Any) -> bool:
    """True for an albumentations transform or ``Compose`` (called with ``image=``); never imports albumentations
    (an object of it exists only once it is imported)."""
    albu = sys.modules.get("albumentations")
    if albu is None:
        return False
    return isinstance(transforms, (albu.BaseCompose, albu.BasicTransform))


def get_im_reader_for_transforms(transforms: TTransforms | None) -> TImReader:
    """The reader whose output the transforms take: OpenCV (``np.ndarray``) for albumentations transforms,
    as OML; Pillow otherwise (OML also picks OpenCV for ``None``: our datasets' default is Pillow's)."""
    return imread_cv2 if is_albu_transform(transforms) else imread_pillow


__all__ = [
    "TImReader",
    "TTransforms",
    "get_im_reader_for_transforms",
    "imread_cv2",
    "imread_pillow",
    "is_albu_transform",
]
