"""Image helpers of OML's ``oml.utils.images.images``: readers, tensor -> picture, boxes, square padding.

Pillow and NumPy only: ``imread_cv2`` (from :mod:`oml_fast.transforms.images.utils`) needs OpenCV, which the
``albu`` extra brings.

>>> tensor_to_numpy_image(torch.tensor([[[0.0, 2.0]], [[1.0, 1.0]], [[2.0, 0.0]]])).tolist()
[[[0, 127, 255], [255, 127, 0]]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

import numpy as np
import torch

from oml_fast.const import PAD_COLOR, TBBox, TColor
from oml_fast.errors import InvalidInputError
from oml_fast.transforms.images.utils import TImReader, imread_cv2, imread_pillow

if TYPE_CHECKING:
    import PIL.Image
    from matplotlib.figure import Figure

TImage = Union["PIL.Image.Image", np.ndarray]


def tensor_to_numpy_image(img: torch.Tensor) -> np.ndarray:
    """A ``Tensor[C, H, W]`` (e.g. a normalised input) as a ``uint8`` picture ``[H, W, C]``, min-max scaled to 0..255."""
    if img.ndim != 3:
        raise InvalidInputError(f"`img` must be a [C, H, W] tensor, got shape {list(img.shape)}")
    array = img.detach().cpu().permute(1, 2, 0).numpy().astype(np.float64)
    array -= array.min()
    peak = array.max()
    if peak > 0:
        array *= 255.0 / peak
    return array.astype(np.uint8)


def draw_bbox(im: np.ndarray, bbox: TBBox | None, color: TColor) -> np.ndarray:
    """A copy of ``im [H, W, 3]`` with the frame of ``bbox = (x1, y1, x2, y2)`` drawn in ``color`` (the whole
    image's frame when ``bbox`` is None); the line is ``max(3, 5% of the mean side)`` pixels thick."""
    out = im.copy()
    height, width = out.shape[:2]
    x1, y1, x2, y2 = (0, 0, width, height) if bbox is None else (int(v) for v in bbox)
    thickness = max(3, int(0.05 * (height + width) / 2))
    half = thickness // 2
    for top, bottom, left, right in (
        (y1 - half, y1 + half + 1, x1 - half, x2 + half + 1),
        (y2 - half, y2 + half + 1, x1 - half, x2 + half + 1),
        (y1 - half, y2 + half + 1, x1 - half, x1 + half + 1),
        (y1 - half, y2 + half + 1, x2 - half, x2 + half + 1),
    ):
        out[max(top, 0) : max(bottom, 0), max(left, 0) : max(right, 0)] = color
    return out


def square_pad(img: np.ndarray) -> np.ndarray:
    """``img [H, W, C]`` padded with ``PAD_COLOR`` to a square of side ``max(H, W)``, centred."""
    height, width = img.shape[:2]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    out = np.empty((side, side, *img.shape[2:]), dtype=img.dtype)
    out[...] = np.asarray(PAD_COLOR, dtype=img.dtype)[: img.shape[2]] if img.ndim == 3 else PAD_COLOR[0]
    out[top : top + height, left : left + width] = img
    return out


def figure_to_nparray(fig: Figure) -> np.ndarray:
    """A matplotlib figure rendered as ``uint8 [H, W, 3]`` (RGB, no alpha); the figure is closed."""
    import matplotlib.pyplot as plt

    fig.canvas.draw()
    data = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # type: ignore[attr-defined]
    plt.close(fig)
    return data


__all__ = [
    "TImage",
    "TImReader",
    "tensor_to_numpy_image",
    "imread_cv2",
    "imread_pillow",
    "draw_bbox",
    "square_pad",
    "figure_to_nparray",
]
