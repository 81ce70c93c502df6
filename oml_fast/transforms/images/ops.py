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
        # Pillow's `reducing_gap` pre-shrinks by box filtering: the antialiasing torchvision applies.
        return image.resize((new_w, new_h), self._resample, reducing_gap=None if new_w >= w else 3.0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, interpolation={self.interpolation})"


class CenterCrop:
    """Crops the central ``size x size`` (or ``(h, w)``) region (padding with black where the image is smaller)."""

    def __init__(self, size: int | Sequence[int]):
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def __call__(self, image: Image.Image) -> Image.Image:
        w, h = image.size
        ch, cw = self.size
        left, top = int(round((w - cw) / 2.0)), int(round((h - ch) / 2.0))
        return image.crop((left, top, left + cw, top + ch))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


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
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * float(torch.empty(1).uniform_(*self.scale))
            aspect = math.exp(float(torch.empty(1).uniform_(*log_ratio)))
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
        box = self._box(*image.size)
        return image.resize((self.size[1], self.size[0]), self._resample, box=box)

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
    """Random brightness / contrast / saturation factors in ``[1 - v, 1 + v]`` (0: unchanged, the default)."""

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0):
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation

    def __call__(self, image: Image.Image) -> Image.Image:
        from PIL import ImageEnhance

        for value, enhancer in (
            (self.brightness, ImageEnhance.Brightness),
            (self.contrast, ImageEnhance.Contrast),
            (self.saturation, ImageEnhance.Color),
        ):
            if value:
                factor = float(torch.empty(1).uniform_(max(0.0, 1 - value), 1 + value))
                image = enhancer(image).enhance(factor)
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
    "Normalize",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "Resize",
    "ToTensor",
]
