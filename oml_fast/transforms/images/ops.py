"""Small image transforms on ``PIL.Image`` / ``FloatTensor[C, H, W]`` (torchvision's names and semantics,
without torchvision: it is an optional dependency that is often absent beside a given torch build).

Each class is a callable; :class:`Compose` chains them. Randomness comes from ``torch``'s global
generator, so ``torch.manual_seed`` makes augmentations reproducible.

>>> from PIL import Image
>>> t = Compose([Resize((4, 4)), ToTensor(), Normalize((0.5,) * 3, (0.5,) * 3)])
>>> x = t(Image.new("RGB", (8, 6), (255, 0, 0)))
>>> tuple(x.shape), x[:, 0, 0].tolist()
((3, 4, 4), [1.0, -1.0, -1.0])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

BILINEAR = "bilinear"
BICUBIC = "bicubic"
_RESAMPLE = {BILINEAR: Image.Resampling.BILINEAR, BICUBIC: Image.Resampling.BICUBIC}


def _resample(interpolation: str) -> Image.Resampling:
    if interpolation not in _RESAMPLE:
        raise ValueError(f"`interpolation` must be one of {sorted(_RESAMPLE)}, got {interpolation!r}")
    return _RESAMPLE[interpolation]


class Compose:
    """Applies ``transforms`` in order; ``transforms`` is kept as a list (torchvision's attribute)."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]):
        self.transforms = list(transforms)

    def __call__(self, image: Any) -> Any:
        for transform in self.transforms:
            image = transform(image)
        return image

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"{type(self).__name__}([{inner}\n])"


class Resize:
    """``size=(h, w)``: resize to exactly that; ``size=int``: the shorter side becomes ``size``, aspect kept."""

    def __init__(self, size: int | Sequence[int], interpolation: str = BILINEAR):
        self.size = size
        self.interpolation = interpolation
        self._resample = _resample(interpolation)

    def __call__(self, image: Image.Image) -> Image.Image:
        w, h = image.size
        if isinstance(self.size, int):
            if w <= h:
                new_w, new_h = self.size, max(1, int(self.size * h / w))
            else:
                new_w, new_h = max(1, int(self.size * w / h)), self.size
        else:
            new_h, new_w = int(self.size[0]), int(self.size[1])
        if (new_w, new_h) == (w, h):
            return image
        # torchvision resizes a PIL image with a plain `Image.resize`: Pillow's filters widen with the
        # scale, which is the antialiasing (no `reducing_gap`: its box pre-shrink would change the numbers).
        return image.resize((new_w, new_h), self._resample)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, interpolation={self.interpolation})"


class CenterCrop:
    """Crops the central ``size x size`` (or ``(h, w)``) region. A side shorter than the crop is first padded
    with black, the odd pixel after the image (torchvision's split)."""

    def __init__(self, size: int | Sequence[int]):
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def __call__(self, image: Image.Image) -> Image.Image:
        w, h = image.size
        ch, cw = self.size
        if cw > w or ch > h:
            pad_left, pad_top = max(cw - w, 0) // 2, max(ch - h, 0) // 2
            canvas = Image.new(image.mode, (max(w, cw), max(h, ch)))
            canvas.paste(image, (pad_left, pad_top))
            image, (w, h) = canvas, canvas.size
        left, top = int(round((w - cw) / 2.0)), int(round((h - ch) / 2.0))
        return image.crop((left, top, left + cw, top + ch))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


def _as_uint8_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """``np.ndarray[H, W, C]`` uint8 of a ``PIL.Image`` (converted to RGB) or of an array (taken as it is)."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ValueError(
            f"an image array must be uint8 [H, W] or [H, W, C], got {array.dtype} {list(array.shape)}"
        )
    return array if array.ndim == 3 else array[:, :, None]


class LongestMaxSize:
    """The longer side resized to ``max_size``, aspect kept (albumentations' ``LongestMaxSize``).

    The sides become ``round(side * max_size / longer_side)`` (Python's rounding, at least 1), resampled
    bilinearly at pixel centres without antialiasing, as OpenCV's ``INTER_LINEAR``; OpenCV rounds in fixed
    point, so a pixel may differ from it by 1 (of 255). Takes a ``PIL.Image`` or a uint8
    ``np.ndarray[H, W, C]`` and returns a uint8 ``np.ndarray[H', W', C]``.

    >>> LongestMaxSize(4)(Image.new("RGB", (8, 6))).shape
    (3, 4, 3)
    """

    def __init__(self, max_size: int):
        if int(max_size) <= 0:
            raise ValueError(f"`max_size` must be a positive int, got {max_size}")
        self.max_size = int(max_size)

    def __call__(self, image: Image.Image | np.ndarray) -> np.ndarray:
        array = _as_uint8_array(image)
        h, w = array.shape[:2]
        scale = self.max_size / max(h, w)
        new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
        if (new_h, new_w) == (h, w):
            return array
        pixels = torch.from_numpy(array.astype(np.float32)).permute(2, 0, 1)[None]
        resized = torch.nn.functional.interpolate(
            pixels, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=False
        )
        return resized[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_size={self.max_size}, interpolation={BILINEAR})"


class PadIfNeeded:
    """Pads an image up to ``min_height x min_width`` with the constant colour ``fill``, centred
    (albumentations' ``PadIfNeeded`` with ``BORDER_CONSTANT``): the odd pixel goes after the image. Sides
    already long enough are kept. Takes a ``PIL.Image`` or a uint8 ``np.ndarray[H, W, C]``; returns a uint8
    ``np.ndarray``.

    >>> PadIfNeeded(4, 4, fill=(255, 255, 255))(np.zeros((4, 1, 3), np.uint8))[0, :, 0].tolist()
    [255, 0, 255, 255]
    """

    def __init__(self, min_height: int, min_width: int, fill: Sequence[int] = (0, 0, 0)):
        self.min_height, self.min_width, self.fill = int(min_height), int(min_width), tuple(fill)

    def __call__(self, image: Image.Image | np.ndarray) -> np.ndarray:
        array = _as_uint8_array(image)
        h, w, c = array.shape
        if h >= self.min_height and w >= self.min_width:
            return array
        if len(self.fill) != c:
            raise ValueError(f"`fill` needs one value per channel ({c}), got {self.fill}")
        out_h, out_w = max(h, self.min_height), max(w, self.min_width)
        top, left = (out_h - h) // 2, (out_w - w) // 2
        padded = np.empty((out_h, out_w, c), dtype=np.uint8)
        padded[...] = np.asarray(self.fill, dtype=np.uint8)
        padded[top : top + h, left : left + w] = array
        return padded

    def __repr__(self) -> str:
        return f"{type(self).__name__}(min_height={self.min_height}, min_width={self.min_width}, fill={self.fill})"


class RandomResizedCrop:
    """A random crop of area ``scale`` x the image and aspect ``ratio``, resized to ``size`` (torchvision's algorithm)."""

    def __init__(
        self,
        size: int | Sequence[int],
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
        interpolation: str = BILINEAR,
    ):
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.scale, self.ratio, self.interpolation = scale, ratio, interpolation
        self._resample = _resample(interpolation)

    def _box(self, w: int, h: int) -> tuple[int, int, int, int]:
        area = w * h
        # the log and exp in float32 tensors, as torchvision: the crop sizes then round alike
        log_ratio = torch.log(torch.tensor(self.ratio)).tolist()
        for _ in range(10):
            target = area * float(torch.empty(1).uniform_(*self.scale))
            aspect = float(torch.exp(torch.empty(1).uniform_(*log_ratio)))
            cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                top = int(torch.randint(0, h - ch + 1, (1,)))
                left = int(torch.randint(0, w - cw + 1, (1,)))
                return left, top, left + cw, top + ch
        # fallback: the central crop of the closest allowed aspect ratio
        in_ratio = w / h
        if in_ratio < min(self.ratio):
            cw, ch = w, int(round(w / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            ch, cw = h, int(round(h * max(self.ratio)))
        else:
            cw, ch = w, h
        left, top = (w - cw) // 2, (h - ch) // 2
        return left, top, left + cw, top + ch

    def __call__(self, image: Image.Image) -> Image.Image:
        # crop, then resize (torchvision's `resized_crop`): `resize(box=...)` would let the filter read
        # pixels outside the box.
        crop = image.crop(self._box(*image.size))
        return crop.resize((self.size[1], self.size[0]), self._resample)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class RandomHorizontalFlip:
    """Mirrors the image left-right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, image: Image.Image) -> Image.Image:
        if float(torch.rand(1)) < self.p:
            return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class ColorJitter:
    """Random brightness / contrast / saturation factors in ``[1 - v, 1 + v]`` (0: unchanged, the default),
    applied in a random order (torchvision's ``ColorJitter`` without hue)."""

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0):
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation

    def __call__(self, image: Image.Image) -> Image.Image:
        from PIL import ImageEnhance

        # torchvision first draws the order of its four adjustments (even when none is active), then one
        # factor per active one: drawing alike keeps a seeded pipeline's later random numbers torchvision's.
        order = torch.randperm(4).tolist()
        factors = {}
        for index, value in enumerate((self.brightness, self.contrast, self.saturation)):
            if value:
                factors[index] = float(torch.empty(1).uniform_(max(0.0, 1 - value), 1 + value))
        enhancers = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)
        for index in order:
            if index in factors:  # index 3 is torchvision's hue, which we do not have
                image = enhancers[index](image).enhance(factors[index])
        return image

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(brightness={self.brightness}, contrast={self.contrast}, "
            f"saturation={self.saturation})"
        )


class ToTensor:
    """``PIL.Image`` (any mode, converted to RGB) or ``uint8 ndarray[H, W, C]`` -> ``FloatTensor[3, H, W]`` in ``[0, 1]``."""

    def __call__(self, image: Image.Image | np.ndarray) -> torch.Tensor:
        if isinstance(image, Image.Image):
            image = np.asarray(image.convert("RGB"))
        array = np.asarray(image, dtype=np.float32)
        if array.ndim == 2:
            array = array[:, :, None]
        return torch.from_numpy(array / 255.0).permute(2, 0, 1).contiguous()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Normalize:
    """``(x - mean) / std`` per channel of a ``FloatTensor[C, H, W]``."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        if len(mean) != len(std) or min(std) <= 0:
            raise ValueError(
                f"`mean` and `std` need equal lengths and std > 0, got {list(mean)}, {list(std)}"
            )
        self.mean, self.std = tuple(mean), tuple(std)
        self._mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        self._std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        return (tensor - self._mean) / self._std

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"


__all__ = [
    "BICUBIC",
    "BILINEAR",
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "LongestMaxSize",
    "Normalize",
    "PadIfNeeded",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "Resize",
    "ToTensor",
]
