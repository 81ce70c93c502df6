"""Keep-aspect resizing ("karesize") of images and boxes: OML's ``oml.utils.images.images_resize``.

An image of size ``src_hw`` goes to ``new_hw`` by scaling it with ``scale = min(new_h / src_h, new_w / src_w)``
(so that it fits), then padding it with zeros on both sides, centred (the odd pixel goes right / bottom).
Boxes follow the same map; the ``inverse_*`` functions undo it.

Images are ``np.ndarray`` ``[H, W]`` or ``[H, W, C]``, or ``torch.Tensor`` ``[H, W]``, ``[C, H, W]`` or
``[B, C, H, W]``; boxes are ``[N, 4]`` rows ``(left, top, right, bottom)``. Tensors stay on their device
and keep their graph (resizing is differentiable).

OML resizes arrays with OpenCV (``cv2.INTER_CUBIC``); here it is torch's bicubic with the same kernel
(a = -0.75) and pixel centres, so no OpenCV is needed: values agree with OpenCV's up to rounding
(integer images) and float error. Tensors use bicubic with ``align_corners=True``, as OML.

>>> get_karesize_param((100, 200), (50, 50))
(0.25, (25, 50), [0, 0, 12, 13])
>>> karesize_bboxes(np.array([[0.0, 0.0, 200.0, 100.0]]), (100, 200), (50, 50)).tolist()
[[0.0, 12.0, 50.0, 37.0]]
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from oml_fast.errors import InvalidInputError

SizeHW = tuple[int, int]  # (height, width)
BboxesType = torch.Tensor | np.ndarray  # [N, 4]: (left, top, right, bottom) per row
ImageType = torch.Tensor | np.ndarray  # ndarray [H, W] | [H, W, C]; tensor [H, W] | [C, H, W] | [B, C, H, W]


def _is_tensor(image: ImageType, name: str) -> bool:
    if isinstance(image, torch.Tensor):
        return True
    if isinstance(image, np.ndarray):
        return False
    raise TypeError(f"`{name}` must be a torch.Tensor or an np.ndarray, got {type(image).__name__}")


def get_image_hw(image: np.ndarray | torch.Tensor) -> SizeHW:
    """``(H, W)`` of an image: the first two dims of an array, the last two of a tensor.

    >>> get_image_hw(np.zeros((3, 4, 5))), get_image_hw(torch.zeros(3, 4, 5))
    ((3, 4), (4, 5))
    """
    if _is_tensor(image, "image"):
        return int(image.shape[-2]), int(image.shape[-1])
    return int(image.shape[0]), int(image.shape[1])


def get_karesize_param(src_hw: SizeHW, new_hw: SizeHW) -> tuple[float, SizeHW, list[int]]:
    """``(scale, resized_hw, [pad_left, pad_right, pad_top, pad_bottom])`` of the map ``src_hw -> new_hw``.

    ``resized_hw`` is ``int(scale * src)`` per side (truncated, as OML); the padding fills the rest,
    ``new - resized``, half on each side (the odd pixel right / bottom).
    """
    for name, hw in (("src_hw", src_hw), ("new_hw", new_hw)):
        if len(hw) != 2 or min(hw) <= 0:
            raise InvalidInputError(f"`{name}` must be (height, width) with positive sides, got {hw}")
    scale = min(new_hw[0] / src_hw[0], new_hw[1] / src_hw[1])
    resized_hw = (int(scale * src_hw[0]), int(scale * src_hw[1]))
    pad_left = (new_hw[1] - resized_hw[1]) // 2
    pad_right = new_hw[1] - resized_hw[1] - pad_left
    pad_top = (new_hw[0] - resized_hw[0]) // 2
    pad_bottom = new_hw[0] - resized_hw[0] - pad_top
    return scale, resized_hw, [pad_left, pad_right, pad_top, pad_bottom]


def resize_tensor(tensor: torch.Tensor, new_size_hw: SizeHW) -> torch.Tensor:
    """Bicubic resize (``align_corners=True``) of the last two dims of a ``[H, W]``, ``[C, H, W]`` or
    ``[B, C, H, W]`` tensor, clamped to the input's value range; the dtype is kept (integers truncated,
    as OML; booleans thresholded at half the range).
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"`tensor` must be a torch.Tensor, got {type(tensor).__name__}")
    if not 2 <= tensor.ndim <= 4:
        raise InvalidInputError(f"`tensor` must have 2 to 4 dims, got shape {list(tensor.shape)}")
    ndim, dtype = tensor.ndim, tensor.dtype
    batch = tensor.reshape((1,) * (4 - ndim) + tuple(tensor.shape))
    low, high = batch.min().item(), batch.max().item()
    resized = torch.nn.functional.interpolate(
        batch.float(), (int(new_size_hw[0]), int(new_size_hw[1])), mode="bicubic", align_corners=True
    ).clamp(float(low), float(high))
    resized = resized.reshape(tuple(tensor.shape[:-2]) + tuple(resized.shape[-2:]))
    if dtype == torch.bool:
        if tensor.requires_grad:
            warnings.warn(
                "a bool tensor is resized without gradients (torch has none for bool)", stacklevel=2
            )
        resized = resized >= (float(high) - float(low)) / 2
    return resized.to(dtype=dtype)


def resize_ndarray(array: np.ndarray, new_size_hw: SizeHW) -> np.ndarray:
    """Bicubic resize (OpenCV's ``INTER_CUBIC`` kernel and pixel centres) of an ``[H, W]`` or ``[H, W, C]``
    array; the dtype is kept (integers rounded and saturated, booleans: non-zero after rounding)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"`array` must be an np.ndarray, got {type(array).__name__}")
    if not 2 <= array.ndim <= 3:
        raise InvalidInputError(f"`array` must have 2 or 3 dims, got shape {list(array.shape)}")
    dtype = array.dtype
    source = array.astype(np.uint8) if dtype == np.bool_ else array
    channels_first = torch.from_numpy(np.ascontiguousarray(source, dtype=np.float64))
    channels_first = channels_first.unsqueeze(-1) if array.ndim == 2 else channels_first
    resized = torch.nn.functional.interpolate(
        channels_first.permute(2, 0, 1).unsqueeze(0),
        (int(new_size_hw[0]), int(new_size_hw[1])),
        mode="bicubic",
        align_corners=False,
    )[0].permute(1, 2, 0)
    out = resized.numpy()
    if np.issubdtype(source.dtype, np.integer):
        info = np.iinfo(source.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    out = out.astype(dtype)
    return out[..., 0] if array.ndim == 2 else out


def karesize_image(image: ImageType, new_hw: SizeHW) -> ImageType:
    """The image scaled to fit ``new_hw`` keeping its aspect ratio, zero-padded (centred) to exactly ``new_hw``."""
    is_tensor = _is_tensor(image, "image")
    src_hw = get_image_hw(image)
    if tuple(new_hw) == src_hw:
        return image
    _, resize_hw, padding = get_karesize_param(src_hw, new_hw)
    if is_tensor:
        return torch.nn.functional.pad(resize_tensor(image, resize_hw), padding, mode="constant")  # type: ignore[arg-type]
    pad_left, pad_right, pad_top, pad_bottom = padding
    pad_np = [(pad_top, pad_bottom), (pad_left, pad_right)] + [(0, 0)] * (image.ndim - 2)
    return np.pad(resize_ndarray(image, resize_hw), pad_np)  # type: ignore[arg-type]


def inverse_karesize_image(image: ImageType, src_hw: SizeHW) -> ImageType:
    """Undoes :func:`karesize_image`: crops the padding of an image of the current size and resizes it to ``src_hw``."""
    is_tensor = _is_tensor(image, "image")
    curr_hw = get_image_hw(image)
    if curr_hw == tuple(src_hw):
        return image
    _, (resized_h, resized_w), (pad_left, _, pad_top, _) = get_karesize_param(src_hw, curr_hw)
    if is_tensor:
        cropped = image[..., pad_top : pad_top + resized_h, pad_left : pad_left + resized_w]
        return resize_tensor(cropped, src_hw)  # type: ignore[arg-type]
    cropped = image[pad_top : pad_top + resized_h, pad_left : pad_left + resized_w, ...]
    return resize_ndarray(cropped, src_hw)  # type: ignore[arg-type]


def _check_bboxes(bboxes: BboxesType, name: str) -> None:
    if not isinstance(bboxes, (torch.Tensor, np.ndarray)):
        raise TypeError(f"`{name}` must be a torch.Tensor or an np.ndarray, got {type(bboxes).__name__}")
    if bboxes.ndim != 2 or bboxes.shape[1] != 4:
        raise InvalidInputError(f"`{name}` must have shape [N, 4], got {list(bboxes.shape)}")


def karesize_bboxes(src_bboxes: BboxesType, src_hw: SizeHW, new_hw: SizeHW) -> BboxesType:
    """Boxes of an image of size ``src_hw`` mapped as :func:`karesize_image` maps the image to ``new_hw``."""
    _check_bboxes(src_bboxes, "src_bboxes")
    scale, _, (pad_left, _, pad_top, _) = get_karesize_param(src_hw, new_hw)
    bboxes: Any = src_bboxes * scale
    bboxes[:, 0] += pad_left
    bboxes[:, 2] += pad_left
    bboxes[:, 1] += pad_top
    bboxes[:, 3] += pad_top
    return bboxes


def inverse_karesize_bboxes(cur_bboxes: BboxesType, curr_hw: SizeHW, src_hw: SizeHW) -> BboxesType:
    """Undoes :func:`karesize_bboxes`: boxes on the ``curr_hw`` image back on the ``src_hw`` one."""
    _check_bboxes(cur_bboxes, "cur_bboxes")
    scale, _, (pad_left, _, pad_top, _) = get_karesize_param(src_hw, curr_hw)
    padding = [[pad_left, pad_top, pad_left, pad_top]]
    if isinstance(cur_bboxes, torch.Tensor):
        return (cur_bboxes - torch.tensor(padding, device=cur_bboxes.device)) / scale
    return (cur_bboxes - np.array(padding)) / scale


__all__ = [
    "karesize_image",
    "inverse_karesize_image",
    "karesize_bboxes",
    "inverse_karesize_bboxes",
    "get_image_hw",
    "get_karesize_param",
    "resize_tensor",
    "resize_ndarray",
]
