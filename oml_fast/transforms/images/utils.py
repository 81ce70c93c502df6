"""What OML's ``oml.transforms.images.utils`` offers: the transforms type and the image reader for them."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

from PIL import Image

TTransforms = Callable[[Any], Any]
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


def get_im_reader_for_transforms(transforms: TTransforms | None) -> TImReader:
    """The reader whose output the transforms take: always Pillow here (the albumentations / OpenCV path of
    OML is not implemented)."""
    return imread_pillow


__all__ = ["TImReader", "TTransforms", "get_im_reader_for_transforms", "imread_pillow"]
