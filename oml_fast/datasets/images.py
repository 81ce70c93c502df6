"""Image datasets in OML's dataframe format: a labeled train set and a query/gallery validation set.

Items are dicts with OML's keys: ``input_tensors`` (FloatTensor[3, H, W]), ``idx`` (the dataset
index), ``labels`` (int), ``paths``, the box ``x1, y1, x2, y2`` (the whole image when a row has
no box), ``is_query`` / ``is_gallery`` on validation sets, and ``category`` / ``sequence`` where the
dataframe has them (those also live in ``extra_data`` as length-N arrays).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from oml_fast.const import (
    BBOX_COLUMNS,
    CATEGORIES_COLUMN,
    INDEX_KEY,
    INPUT_TENSORS_KEY,
    IS_GALLERY_COLUMN,
    IS_GALLERY_KEY,
    IS_QUERY_COLUMN,
    IS_QUERY_KEY,
    LABELS_COLUMN,
    LABELS_KEY,
    PATHS_COLUMN,
    PATHS_KEY,
    SEQUENCE_COLUMN,
    TRAIN_SPLIT,
    VALIDATION_SPLIT,
    TBBox,
)
from oml_fast.datasets.dataframe import read_retrieval_splits, resolve_path
from oml_fast.interfaces.datasets import (
    IBaseDataset,
    ILabeledDataset,
    IQueryGalleryDataset,
    IQueryGalleryLabeledDataset,
    IVisualizableDataset,
)
from oml_fast.transforms.images.torchvision import get_normalisation_torch
from oml_fast.transforms.images.utils import TImReader, TTransforms, imread_cv2, is_albu_transform
from oml_fast.visualization import BLACK, TColor, add_frame, draw_bbox, upscale_small


class ImageReadError(OSError):
    """An image file could not be opened or decoded; the message names the file."""


def read_image(path: str | Path) -> Image.Image:
    """Reads an image file as RGB ``PIL.Image``; raises :class:`ImageReadError` naming the file on failure.

    >>> read_image("/no/such/file.png")
    Traceback (most recent call last):
    ...
    oml_fast.datasets.images.ImageReadError: cannot read image '/no/such/file.png': FileNotFoundError: ...
    """
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except Exception as error:
        raise ImageReadError(f"cannot read image '{path}': {type(error).__name__}: {error}") from error


def parse_bboxes(df: pd.DataFrame) -> list[TBBox | None] | None:
    """Per-row boxes ``(x_1, y_1, x_2, y_2)`` or ``None`` for rows without one; ``None`` if there are no box columns.

    Rows may mix boxes and no boxes (OML crashes on that).

    >>> df = pd.DataFrame({"x_1": [1, None], "y_1": [2, None], "x_2": [5, None], "y_2": [6, None]})
    >>> parse_bboxes(df)
    [(1, 2, 5, 6), None]
    """
    present = [c for c in BBOX_COLUMNS if c in df.columns]
    if not present:
        return None
    if len(present) != 4:
        raise ValueError(f"bounding boxes need all four columns {list(BBOX_COLUMNS)}, found only {present}")
    boxes: list[TBBox | None] = []
    for row in df[list(BBOX_COLUMNS)].itertuples(index=False):
        if any(pd.isna(v) for v in row):
            boxes.append(None)
        else:
            boxes.append(tuple(int(v) for v in row))  # type: ignore[arg-type]
    return boxes


def _as_array(record: Any) -> np.ndarray:
    # pandas gives strings as an object array; a fixed-width str array gives numpy scalars (np.str_)
    # that group and compare like the other dtypes.
    array = np.asarray(record)
    if array.dtype == object and all(isinstance(v, str) for v in array):
        array = array.astype(str)
    return array


class ImageBaseDataset(IBaseDataset, IVisualizableDataset):
    """Images read from ``paths`` (joined to ``dataset_root`` when relative), optionally cropped to boxes.

    Args:
        paths: image paths, one per item.
        dataset_root: folder that relative paths are relative to.
        bboxes: per item ``(x_1, y_1, x_2, y_2)`` or ``None`` (whole image); ``None`` for no boxes at all.
        extra_data: per-item records (each of length N) added to the items under their key.
        transform: ``PIL.Image -> FloatTensor[3, H, W]``, or an albumentations transform (the ``albu`` extra),
            called as OML does: ``transform(image=np.ndarray[H, W, 3])["image"]``; default: to tensor and
            ImageNet normalisation, no resizing (``get_normalisation_torch()``; OML's is albumentations').
        f_imread: reads an image path into a ``PIL.Image`` or an RGB ``np.ndarray``; default: Pillow (RGB),
            or OpenCV (``imread_cv2``) for albumentations transforms, as OML.
        cache_size: number of decoded (cropped) images kept in memory per process; 0 disables.
    """

    df: pd.DataFrame  # the rows, in the subclasses built from an OML dataframe

    def __init__(
        self,
        paths: Sequence[str | Path],
        dataset_root: str | Path | None = None,
        bboxes: Sequence[TBBox | None] | None = None,
        extra_data: dict[str, Any] | None = None,
        transform: TTransforms | None = None,
        f_imread: TImReader | None = None,
        cache_size: int | None = 0,
        input_tensors_key: str = INPUT_TENSORS_KEY,
        index_key: str = INDEX_KEY,
    ):
        cache_size = int(cache_size or 0)
        if bboxes is not None and len(bboxes) != len(paths):
            raise ValueError(f"`bboxes` has {len(bboxes)} entries but there are {len(paths)} paths")
        extra_data = dict(extra_data or {})
        for key, record in extra_data.items():
            if len(record) != len(paths):
                raise ValueError(
                    f"`extra_data['{key}']` has {len(record)} entries but there are {len(paths)} paths"
                )
        self.extra_data = {key: _as_array(record) for key, record in extra_data.items()}
        self.input_tensors_key, self.index_key = input_tensors_key, index_key
        self._paths = [str(resolve_path(p, dataset_root)) for p in paths]
        self._bboxes = list(bboxes) if bboxes is not None else None
        self.transform = transform if transform is not None else get_normalisation_torch()
        self._f_imread = f_imread
        if cache_size < 0:
            raise ValueError(f"`cache_size` must be >= 0, got {cache_size}")
        self._read_cropped = (
            lru_cache(maxsize=cache_size)(self._read_cropped_uncached)
            if cache_size
            else self._read_cropped_uncached
        )

    def __len__(self) -> int:
        return len(self._paths)

    def _bbox(self, item: int) -> TBBox | None:
        return self._bboxes[item] if self._bboxes is not None else None

    def _read_cropped_uncached(self, item: int) -> Image.Image | np.ndarray:
        path = self._paths[item]
        if self._f_imread is not None:
            image = self._f_imread(path)
        else:  # as OML: OpenCV for albumentations transforms (decided when read: `transform` may be set later)
            image = imread_cv2(path) if is_albu_transform(self.transform) else read_image(path)
        bbox = self._bbox(item)
        if bbox is None:
            return image
        if isinstance(image, np.ndarray):
            x1, y1, x2, y2 = bbox
            return image[y1:y2, x1:x2]
        return image.crop(bbox)

    def _apply_transform(self, image: Image.Image | np.ndarray) -> Any:
        """The transform on an image as read: albumentations get an array (``image=``), the others a PIL image."""
        if is_albu_transform(self.transform):
            return self.transform(image=np.asarray(image))["image"]
        return self.transform(Image.fromarray(image) if isinstance(image, np.ndarray) else image)

    def __getitem__(self, item: int) -> dict[str, Any]:
        if not -len(self) <= item < len(self):
            raise IndexError(f"index {item} out of range for a dataset of {len(self)} items")
        item = int(item) % len(self)
        image = self._read_cropped(item)
        bbox = self._bbox(item)
        width, height = (image.shape[1], image.shape[0]) if isinstance(image, np.ndarray) else image.size
        x1, y1, x2, y2 = bbox if bbox is not None else (0, 0, width, height)
        data: dict[str, Any] = {
            self.input_tensors_key: self._apply_transform(image),
            self.index_key: item,
            PATHS_KEY: self._paths[item],
            "x1": x1,
            "y1": y1,
            "x2": x2,
            "y2": y2,
        }
        for key, record in self.extra_data.items():
            if key in data:
                raise ValueError(f"`extra_data` key '{key}' clashes with a key the dataset sets itself")
            data[key] = record[item].item() if isinstance(record[item], np.generic) else record[item]
        return data

    @property
    def paths(self) -> list[str]:
        return list(self._paths)

    def visualize(self, item: int, color: TColor = BLACK) -> np.ndarray:
        """The full image of ``item`` as uint8 [H, W, 3], its box (if any) outlined and a frame of ``color``.

        Tiny images are upscaled (nearest neighbour) first so that they stay visible next to the frame.
        """
        image = np.asarray(read_image(self._paths[item]), dtype=np.uint8)
        bbox = self._bbox(item)
        factor = int(np.ceil(64 / max(1, min(image.shape[:2]))))
        image = upscale_small(image, 64)
        if bbox is not None:
            image = draw_bbox(image, [v * max(factor, 1) for v in bbox], color, thickness=max(1, factor // 2))
        return add_frame(image, color)


def _init_from_df(
    dataset: ImageBaseDataset,
    df: pd.DataFrame,
    required: tuple[str, ...],
    extra_data: dict[str, Any] | None,
    dataset_root: str | Path | None,
    transform: TTransforms | None,
    f_imread: TImReader | None,
    cache_size: int | None,
    input_tensors_key: str,
    index_key: str,
) -> None:
    """Sets up an image dataset from the rows of an OML dataframe.

    ``extra_data`` gets the ``category`` and ``sequence`` columns when the dataframe has them, beside
    the records given by the user (as OML does).
    """
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"`df` misses the column(s) {missing}; it has {list(df.columns)}")
    dataset.df = df.reset_index(drop=True)
    extra = dict(extra_data or {})
    for column in (CATEGORIES_COLUMN, SEQUENCE_COLUMN):
        if column in dataset.df.columns:
            extra[column] = dataset.df[column].to_numpy()
    ImageBaseDataset.__init__(
        dataset,
        paths=dataset.df[PATHS_COLUMN].tolist(),
        dataset_root=dataset_root,
        bboxes=parse_bboxes(dataset.df),
        extra_data=extra,
        transform=transform,
        f_imread=f_imread,
        cache_size=cache_size,
        input_tensors_key=input_tensors_key,
        index_key=index_key,
    )


class ImageLabeledDataset(ImageBaseDataset, ILabeledDataset):
    """Labeled images (a train set): rows of an OML dataframe with at least ``label`` and ``path``.

    ``get_labels()`` gives the int64 labels that batch samplers (``BalanceSampler``) need.
    """

    def __init__(
        self,
        df: pd.DataFrame,
        extra_data: dict[str, Any] | None = None,
        dataset_root: str | Path | None = None,
        transform: TTransforms | None = None,
        f_imread: TImReader | None = None,
        cache_size: int | None = 0,
        input_tensors_key: str = INPUT_TENSORS_KEY,
        labels_key: str = LABELS_KEY,
        index_key: str = INDEX_KEY,
    ):
        _init_from_df(
            self,
            df,
            (LABELS_COLUMN, PATHS_COLUMN),
            extra_data,
            dataset_root,
            transform,
            f_imread,
            cache_size,
            input_tensors_key,
            index_key,
        )
        self.labels_key = labels_key
        self._labels = self.df[LABELS_COLUMN].to_numpy().astype(np.int64)

    def get_labels(self) -> np.ndarray:
        """Labels as int64 ``ndarray[N]``."""
        return self._labels.copy()

    def get_label2category(self) -> dict[int, Any] | None:
        if CATEGORIES_COLUMN not in self.df.columns:
            return None
        return dict(zip(self._labels.tolist(), self.df[CATEGORIES_COLUMN]))

    def __getitem__(self, item: int) -> dict[str, Any]:
        data = super().__getitem__(item)
        data[self.labels_key] = int(self._labels[data[self.index_key]])
        return data

    def visualize(self, item: int, color: TColor) -> np.ndarray:  # type: ignore[override]  # OML: no default
        """As :meth:`ImageBaseDataset.visualize`; ``color`` is required here, as in OML."""
        return super().visualize(item, color)


class ImageQueryGalleryLabeledDataset(ImageLabeledDataset, IQueryGalleryLabeledDataset):  # type: ignore[misc]
    """A validation set: labeled images with ``is_query`` / ``is_gallery`` flags (an item may be both).

    Implements the validation protocol: ``get_labels()``, ``get_query_ids()``, ``get_gallery_ids()``
    (LongTensor[n] of dataset indices), ``extra_data`` with ``category`` / ``sequence``, ``visualize``.
    """

    def __init__(
        self,
        df: pd.DataFrame,
        extra_data: dict[str, Any] | None = None,
        dataset_root: str | Path | None = None,
        transform: TTransforms | None = None,
        f_imread: TImReader | None = None,
        cache_size: int | None = 0,
        input_tensors_key: str = INPUT_TENSORS_KEY,
        labels_key: str = LABELS_KEY,
    ):
        missing = [c for c in (IS_QUERY_COLUMN, IS_GALLERY_COLUMN) if c not in df.columns]
        if missing:
            raise ValueError(f"`df` misses the column(s) {missing}; it has {list(df.columns)}")
        super().__init__(
            df,
            extra_data,
            dataset_root,
            transform,
            f_imread,
            cache_size,
            input_tensors_key=input_tensors_key,
            labels_key=labels_key,
        )
        self._is_query = self.df[IS_QUERY_COLUMN].fillna(False).astype(bool).to_numpy()
        self._is_gallery = self.df[IS_GALLERY_COLUMN].fillna(False).astype(bool).to_numpy()

    def get_query_ids(self) -> torch.Tensor:
        """Dataset indices of the queries, LongTensor[n_query] (ascending)."""
        return torch.from_numpy(np.flatnonzero(self._is_query)).long()

    def get_gallery_ids(self) -> torch.Tensor:
        """Dataset indices of the gallery items, LongTensor[n_gallery] (ascending)."""
        return torch.from_numpy(np.flatnonzero(self._is_gallery)).long()

    def __getitem__(self, item: int) -> dict[str, Any]:
        data = super().__getitem__(item)
        idx = data[self.index_key]
        data[IS_QUERY_KEY] = bool(self._is_query[idx])
        data[IS_GALLERY_KEY] = bool(self._is_gallery[idx])
        return data


class ImageQueryGalleryDataset(ImageBaseDataset, IQueryGalleryDataset):  # type: ignore[misc]
    """Images with ``is_query`` / ``is_gallery`` flags and no labels (inference: retrieve without ground truth)."""

    def __init__(
        self,
        df: pd.DataFrame,
        extra_data: dict[str, Any] | None = None,
        dataset_root: str | Path | None = None,
        transform: TTransforms | None = None,
        f_imread: TImReader | None = None,
        cache_size: int | None = 0,
        input_tensors_key: str = INPUT_TENSORS_KEY,
    ):
        _init_from_df(
            self,
            df,
            (PATHS_COLUMN, IS_QUERY_COLUMN, IS_GALLERY_COLUMN),
            extra_data,
            dataset_root,
            transform,
            f_imread,
            cache_size,
            input_tensors_key,
            INDEX_KEY,
        )
        self._is_query = self.df[IS_QUERY_COLUMN].fillna(False).astype(bool).to_numpy()
        self._is_gallery = self.df[IS_GALLERY_COLUMN].fillna(False).astype(bool).to_numpy()

    def get_query_ids(self) -> torch.Tensor:
        """Dataset indices of the queries, LongTensor[n_query] (ascending)."""
        return torch.from_numpy(np.flatnonzero(self._is_query)).long()

    def get_gallery_ids(self) -> torch.Tensor:
        """Dataset indices of the gallery items, LongTensor[n_gallery] (ascending)."""
        return torch.from_numpy(np.flatnonzero(self._is_gallery)).long()

    def visualize(self, item: int, color: TColor) -> np.ndarray:  # type: ignore[override]  # OML: no default
        """As :meth:`ImageBaseDataset.visualize`; ``color`` is required here, as in OML."""
        return super().visualize(item, color)


def get_retrieval_images_datasets(
    dataset_root: str | Path,
    transforms_train: TTransforms | None,
    transforms_val: TTransforms | None,
    f_imread_train: TImReader | None = None,
    f_imread_val: TImReader | None = None,
    dataframe_name: str = "df.csv",
    cache_size: int = 0,
    verbose: bool = True,
    check_files: bool = True,
) -> tuple[ImageLabeledDataset, ImageQueryGalleryLabeledDataset]:
    """Reads ``dataset_root / dataframe_name``, validates it (every problem reported) and splits it.

    OML's signature; ``transforms_*`` may be ``None`` (the default normalisation of the datasets),
    ``f_imread_*`` read an image path (default: Pillow, RGB), ``verbose`` prints the sizes of the
    splits. ``check_files`` (ours, trailing) also checks that every image file exists.

    Returns ``(train_dataset, valid_dataset)``; raises ``DataFrameFormatError`` on a malformed CSV and
    ``ValueError`` when a split is empty.
    """
    parts = read_retrieval_splits(dataset_root, dataframe_name, check_files)
    train = ImageLabeledDataset(
        parts[TRAIN_SPLIT],
        dataset_root=dataset_root,
        transform=transforms_train,
        f_imread=f_imread_train,
        cache_size=cache_size,
    )
    valid = ImageQueryGalleryLabeledDataset(
        parts[VALIDATION_SPLIT],
        dataset_root=dataset_root,
        transform=transforms_val,
        f_imread=f_imread_val,
        cache_size=cache_size,
    )
    if verbose:
        n_query, n_gallery = len(valid.get_query_ids()), len(valid.get_gallery_ids())
        print(
            f"{Path(dataset_root) / dataframe_name}: train {len(train)} images, "
            f"validation {len(valid)} images ({n_query} queries, {n_gallery} gallery)"
        )
    return train, valid


def get_validation_images_dataset(
    dataset_root: str | Path,
    transforms_val: TTransforms | None = None,
    dataframe_name: str = "df.csv",
    cache_size: int = 0,
    check_files: bool = True,
) -> ImageQueryGalleryLabeledDataset:
    """The validation split of ``dataset_root / dataframe_name`` (validated first), as a query/gallery dataset."""
    valid_df = read_retrieval_splits(dataset_root, dataframe_name, check_files, (VALIDATION_SPLIT,))[
        VALIDATION_SPLIT
    ]
    return ImageQueryGalleryLabeledDataset(
        valid_df, dataset_root=dataset_root, transform=transforms_val, cache_size=cache_size
    )
