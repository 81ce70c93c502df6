"""Pictures of datasets and retrieval results (numpy images, matplotlib figures saved as PNG).

Colours are the RGB tuples of :mod:`oml_fast.const` (OML's values): ``BLUE`` frames a query,
``GREEN`` a correct (same label) gallery item, ``RED`` a wrong one, ``GRAY`` a ground-truth item,
``BLACK`` an item whose correctness is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .const import BLACK, BLUE, GRAY, GREEN, RED, TColor
from .errors import require_extra


def _check_image(image: np.ndarray, name: str = "image") -> None:
    if not (
        isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    ):
        shape = getattr(image, "shape", None)
        raise ValueError(f"`{name}` must be an HxWx3 uint8 array, got {type(image).__name__} {shape}")


def draw_bbox(image: np.ndarray, bbox: Sequence[int] | None, color: TColor, thickness: int = 1) -> np.ndarray:
    """Returns a copy of ``image`` (uint8 [H, W, 3]) with the box ``(x_1, y_1, x_2, y_2)`` outlined.

    >>> out = draw_bbox(np.zeros((4, 4, 3), np.uint8), (1, 1, 3, 3), RED)
    >>> out[1, 1].tolist(), out[0, 0].tolist()
    ([255, 0, 0], [0, 0, 0])
    """
    _check_image(image)
    image = image.copy()
    if bbox is None:
        return image
    x1, y1, x2, y2 = (int(v) for v in bbox)
    h, w = image.shape[:2]
    x1, x2 = max(0, min(x1, w - 1)), max(0, min(x2 - 1, w - 1))
    y1, y2 = max(0, min(y1, h - 1)), max(0, min(y2 - 1, h - 1))
    t = max(1, thickness)
    image[y1 : y1 + t, x1 : x2 + 1] = color
    image[max(y2 - t + 1, 0) : y2 + 1, x1 : x2 + 1] = color
    image[y1 : y2 + 1, x1 : x1 + t] = color
    image[y1 : y2 + 1, max(x2 - t + 1, 0) : x2 + 1] = color
    return image


def add_frame(image: np.ndarray, color: TColor, thickness: int | None = None) -> np.ndarray:
    """``image`` (uint8 [H, W, 3]) surrounded by a frame of ``color``; default thickness ~5% of the side.

    >>> add_frame(np.zeros((8, 8, 3), np.uint8), BLUE, thickness=2).shape
    (12, 12, 3)
    """
    _check_image(image)
    if thickness is None:
        thickness = max(1, round(0.05 * max(image.shape[:2])))
    return _pad_with_color(image, color, thickness)


def _pad_with_color(image: np.ndarray, color: TColor, thickness: int) -> np.ndarray:
    h, w = image.shape[:2]
    framed = np.empty((h + 2 * thickness, w + 2 * thickness, 3), dtype=np.uint8)
    framed[:] = np.asarray(color, dtype=np.uint8)
    framed[thickness : thickness + h, thickness : thickness + w] = image
    return framed


def upscale_small(image: np.ndarray, min_side: int = 64) -> np.ndarray:
    """Nearest-neighbour upscaling of tiny images (e.g. 8x8 digits) so that frames stay thin next to them.

    >>> upscale_small(np.zeros((8, 8, 3), np.uint8)).shape
    (64, 64, 3)
    """
    _check_image(image)
    factor = int(np.ceil(min_side / max(1, min(image.shape[:2]))))
    return image if factor <= 1 else image.repeat(factor, axis=0).repeat(factor, axis=1)


def plot_retrieval_rows(
    rows: Sequence[Sequence[tuple[np.ndarray, str]]],
    save_path: str | Path | None = None,
    cell_size: float = 1.6,
    show: bool = False,
):
    """A grid figure: one row per query, cells ``(image, caption)``; saved as PNG when ``save_path`` is given.

    Returns the matplotlib ``Figure`` (closed after saving when ``save_path`` is given and ``show`` is
    not: pictures logged in a loop do not pile up in pyplot's figure manager).

    >>> img = np.zeros((8, 8, 3), np.uint8)
    >>> fig = plot_retrieval_rows([[(img, "query"), (img, "0.12")]])
    >>> len(fig.axes)
    2
    """
    matplotlib = require_extra("matplotlib", "drawing retrieval results")
    if not show:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not rows or not all(rows):
        raise ValueError("`rows` must be a non-empty list of non-empty rows of (image, caption)")
    n_cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(
        len(rows), n_cols, figsize=(cell_size * n_cols, cell_size * len(rows) + 0.2), squeeze=False
    )
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(row):
                image, caption = row[c]
                ax.imshow(image, interpolation="nearest")
                ax.set_title(caption, fontsize=8)
    fig.tight_layout()
    if save_path is not None:
        Path(save_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(save_path, dpi=100)
    if show:
        fig.show()
    elif save_path is not None:
        plt.close(fig)
    return fig


__all__ = [
    "TColor",
    "BLACK",
    "BLUE",
    "GREEN",
    "RED",
    "GRAY",
    "draw_bbox",
    "add_frame",
    "upscale_small",
    "plot_retrieval_rows",
]
