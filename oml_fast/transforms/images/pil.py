"""Our own image transforms (Pillow + torch): a fixed-size normalisation, a random affine jitter, and
:func:`get_normalisation_resize_pad`, the keep-aspect resize with white padding of OML's albumentations
factories without albumentations.

A transform maps a ``PIL.Image`` (RGB) to a ``FloatTensor[3, im_size, im_size]``: resize,
scale to ``[0, 1]``, normalise per channel. :class:`ImageAugmentation` adds random affine
jitter (rotation, scale, shift) for training. Any callable with that contract works in the
datasets, including a ``torchvision.transforms.Compose``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from oml_fast.const import MEAN, PAD_COLOR, STD, TNormParam
from oml_fast.transforms.images.ops import Compose, LongestMaxSize, Normalize, PadIfNeeded, ToTensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageNormalisation:
    """Resize to ``im_size`` x ``im_size``, convert to ``FloatTensor[3, H, W]``, normalise with ``mean`` / ``std``.

    >>> t = ImageNormalisation(im_size=4, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    >>> x = t(Image.new("RGB", (8, 8), (255, 255, 255)))
    >>> tuple(x.shape), float(x.max())
    ((3, 4, 4), 1.0)
    """

    def __init__(
        self, im_size: int = 224, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
    ):
        if int(im_size) <= 0:
            raise ValueError(f"`im_size` must be a positive int, got {im_size}")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(
                f"`mean` and `std` need 3 values each (std > 0), got {list(mean)} and {list(std)}"
            )
        self.im_size = int(im_size)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def _to_tensor(self, image: Image.Image) -> torch.Tensor:
        if image.size != (self.im_size, self.im_size):
            image = image.resize((self.im_size, self.im_size), Image.Resampling.BILINEAR)
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        return (torch.from_numpy(array).permute(2, 0, 1) - self.mean) / self.std

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self._to_tensor(image)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(im_size={self.im_size})"


class ImageAugmentation(ImageNormalisation):
    """:class:`ImageNormalisation` after a random affine jitter: rotation in ``[-max_rotation, max_rotation]``
    degrees, scale in ``[1 - max_scale, 1 + max_scale]``, shift up to ``max_shift`` of the side.

    Randomness comes from ``torch``'s generator, so ``torch.manual_seed`` (and Lightning's
    per-worker seeding) makes it reproducible.

    >>> _ = torch.manual_seed(0)
    >>> tuple(ImageAugmentation(im_size=16)(Image.new("RGB", (8, 8))).shape)
    (3, 16, 16)
    """

    def __init__(
        self,
        im_size: int = 224,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        max_rotation: float = 10.0,
        max_scale: float = 0.1,
        max_shift: float = 0.1,
    ):
        super().__init__(im_size, mean, std)
        self.max_rotation, self.max_scale, self.max_shift = (
            float(max_rotation),
            float(max_scale),
            float(max_shift),
        )

    def __call__(self, image: Image.Image) -> torch.Tensor:
        u = torch.rand(4).tolist()
        angle = (2 * u[0] - 1) * self.max_rotation
        scale = 1 + (2 * u[1] - 1) * self.max_scale
        # Work at the output size so that tiny images (8x8 digits) are jittered smoothly, not by whole pixels.
        image = image.convert("RGB").resize((self.im_size, self.im_size), Image.Resampling.BILINEAR)
        shift = [(2 * v - 1) * self.max_shift * self.im_size for v in u[2:]]
        image = image.rotate(angle, resample=Image.Resampling.BILINEAR, translate=(shift[0], shift[1]))
        if scale != 1:
            side = max(1, round(self.im_size * scale))
            scaled = image.resize((side, side), Image.Resampling.BILINEAR)
            canvas = Image.new("RGB", (self.im_size, self.im_size))
            offset = (self.im_size - side) // 2
            canvas.paste(scaled, (offset, offset))
            image = canvas
        return self._to_tensor(image)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(im_size={self.im_size}, max_rotation={self.max_rotation}, "
            f"max_scale={self.max_scale}, max_shift={self.max_shift})"
        )


def get_normalisation_resize_pad(im_size: int, mean: TNormParam = MEAN, std: TNormParam = STD) -> Compose:
    """:func:`~oml_fast.transforms.images.albumentations.get_normalisation_resize_albu` without albumentations:
    the longer side resized to ``im_size`` (aspect kept, OpenCV-style bilinear), centred white padding
    (``PAD_COLOR``) up to ``im_size x im_size``, to tensor, normalise. Takes a ``PIL.Image`` (or an RGB uint8
    array) and returns ``FloatTensor[3, im_size, im_size]``, equal to the albumentations one's output up to
    1/255 per pixel before normalisation (OpenCV's fixed-point rounding).

    >>> x = get_normalisation_resize_pad(8, mean=(0.0,) * 3, std=(1.0,) * 3)(Image.new("RGB", (8, 4)))
    >>> tuple(x.shape), x[0, :, 0].tolist()
    ((3, 8, 8), [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    """
    return Compose(
        [
            LongestMaxSize(max_size=im_size),
            PadIfNeeded(min_height=im_size, min_width=im_size, fill=PAD_COLOR),
            ToTensor(),
            Normalize(mean=mean, std=std),
        ]
    )
