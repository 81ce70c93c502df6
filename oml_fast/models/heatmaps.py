"""Pictures of where a model looks: a heat map over an image (Grad-CAM of a ResNet, attention of a ViT).

Images are ``uint8`` arrays ``[H, W, 3]`` (RGB, values 0..255) or PIL images; the result has the same
type and size.

>>> image = np.zeros((4, 6, 3), dtype=np.uint8)
>>> overlay_heatmap(image, np.ones((4, 6))).shape
(4, 6, 3)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from oml_fast.const import MEAN, STD, TNormParam
from oml_fast.errors import InvalidInputError, require_extra


def as_rgb_array(image: Any) -> np.ndarray:
    """``image`` (array or PIL image) as ``uint8[H, W, 3]``; raises naming what was wrong."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise InvalidInputError(f"`image` must be an RGB image [H, W, 3], got shape {list(array.shape)}")
    return array


def like_input(array: np.ndarray, image: Any) -> Any:
    """``array`` returned as a PIL image when ``image`` was one, else as it is."""
    if isinstance(image, np.ndarray):
        return array
    return require_extra("PIL.Image", "drawing on PIL images").fromarray(array)


def normalised_tensor(image: np.ndarray, mean: TNormParam = MEAN, std: TNormParam = STD) -> torch.Tensor:
    """``uint8[H, W, 3]`` -> ``FloatTensor[3, H, W]``: scaled to [0, 1], then ``(x - mean) / std`` per channel."""
    x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1) / 255.0
    return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def jet(values: np.ndarray) -> np.ndarray:
    """The "jet" colour map (blue -> cyan -> yellow -> red): ``float[...]`` in [0, 1] -> ``float[..., 3]`` RGB."""
    x = np.clip(values, 0.0, 1.0)[..., None]
    return np.clip(1.5 - np.abs(4.0 * x - np.array([3.0, 2.0, 1.0])), 0.0, 1.0)


def overlay_heatmap(image: np.ndarray, heat: np.ndarray, image_weight: float = 0.5) -> np.ndarray:
    """The mean of ``image`` and the jet colours of ``heat`` (``float[H, W]`` in [0, 1]), rescaled to 0..255."""
    if heat.shape != image.shape[:2]:
        raise InvalidInputError(
            f"heat map of shape {list(heat.shape)} for an image of {list(image.shape[:2])}"
        )
    picture = (1 - image_weight) * jet(heat) + image_weight * image.astype(np.float64) / max(image.max(), 1)
    return (255 * picture / max(picture.max(), 1e-12)).astype(np.uint8)


__all__ = ["as_rgb_array", "jet", "like_input", "normalised_tensor", "overlay_heatmap"]
