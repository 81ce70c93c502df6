"""Labels and query/gallery flags from an OML dataframe, around any base dataset (OML's ``DF*Dataset``).

A base dataset (texts, audio) turns item ``i`` into tensors; these wrappers add what the rows of
the dataframe say about item ``i``: its ``label``, whether it is a query and / or a gallery item,
and the ``category`` / ``sequence`` columns (merged into ``extra_data``, as OML does). Row ``i`` of
``df`` (after ``reset_index``) is item ``i`` of the base dataset.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from oml_fast.const import (
    CATEGORIES_COLUMN,
    IS_GALLERY_COLUMN,
    IS_GALLERY_KEY,
    IS_QUERY_COLUMN,
    IS_QUERY_KEY,
    LABELS_COLUMN,
    LABELS_KEY,
    SEQUENCE_COLUMN,
    TColor,
)
from oml_fast.datasets.dataframe import _as_int, _rows, parse_bool
from oml_fast.interfaces.datasets import (
    IBaseDataset,
    IHTMLVisualizableDataset,
    ILabeledDataset,
    IQueryGalleryDataset,
    IQueryGalleryLabeledDataset,
    IVisualizableDataset,
)


def _require_columns(df: pd.DataFrame, columns: tuple[str, ...], owner: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{owner}: `df` must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{owner}: `df` misses the column(s) {missing}; it has {list(df.columns)}")


def _labels(df: pd.DataFrame, owner: str) -> np.ndarray:
    values = [_as_int(v) for v in df[LABELS_COLUMN]]
    bad = [i for i, v in enumerate(values) if v is None]
    if bad:
        raise ValueError(f"{owner}: column '{LABELS_COLUMN}' is not an integer at {_rows(bad)}")
    return np.asarray(values, dtype=np.int64)


def _flags(df: pd.DataFrame, column: str, owner: str) -> np.ndarray:
    values = [parse_bool(v) for v in df[column]]
    bad = [i for i, v in enumerate(values) if v is None]
    if bad:
        raise ValueError(f"{owner}: column '{column}' is not a bool (True/False/1/0) at {_rows(bad)}")
    return np.asarray(values, dtype=bool)


def check_extra_data(extra_data: dict[str, Any] | None, n_items: int, unit: str = "items") -> dict[str, Any]:
    """``extra_data`` as a dict, every record checked to have ``n_items`` entries."""
    extra_data = dict(extra_data or {})
    for key, record in extra_data.items():
        if len(record) != n_items:
            raise ValueError(
                f"`extra_data['{key}']` has {len(record)} entries but there are {n_items} {unit}"
            )
    return extra_data


def check_index(item: int, n_items: int) -> int:
    """``item`` as a position in ``0 .. n_items - 1`` (negative counts from the end); IndexError outside."""
    if not -n_items <= item < n_items:
        raise IndexError(f"index {item} out of range for a dataset of {n_items} items")
    return int(item) % n_items


def put_extra_data(data: dict[str, Any], extra_data: dict[str, Any], item: int) -> dict[str, Any]:
    """Adds the ``extra_data`` values of ``item`` to ``data`` (numpy scalars as Python ones)."""
    for key, record in extra_data.items():
        if key in data:
            raise ValueError(f"`extra_data` key '{key}' clashes with a key the dataset sets itself")
        value = record[item]
        data[key] = value.item() if isinstance(value, np.generic) else value
    return data


def _merge_extra_data(dataset: IBaseDataset, df: pd.DataFrame, extra_data: dict[str, Any] | None) -> None:
    """Adds ``extra_data`` and the ``category`` / ``sequence`` columns to ``dataset.extra_data``."""
    extra = dict(extra_data or {})
    for column in (CATEGORIES_COLUMN, SEQUENCE_COLUMN):
        if column in df.columns:
            extra[column] = df[column].to_numpy()
    dataset.extra_data.update(check_extra_data(extra, len(dataset)))


class _DFDataset(IBaseDataset):
    """What the three wrappers share: the base dataset, the rows, the keys, visualisation delegation."""

    _dataset: IBaseDataset
    df: pd.DataFrame

    def _wrap(self, dataset: IBaseDataset, df: pd.DataFrame, extra_data: dict[str, Any] | None) -> None:
        if len(df) != len(dataset):
            raise ValueError(
                f"{type(self).__name__}: `df` has {len(df)} rows but the base dataset has {len(dataset)} items"
            )
        _merge_extra_data(dataset, df, extra_data)
        self._dataset = dataset
        self.df = df
        self.extra_data = dataset.extra_data
        self.index_key = dataset.index_key
        self.input_tensors_key = dataset.input_tensors_key

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, item: int) -> dict[str, Any]:
        return self._dataset[item]

    def visualize(self, item: int, color: TColor) -> np.ndarray:
        """The base dataset's picture of ``item`` (see its ``visualize``)."""
        if not isinstance(self._dataset, IVisualizableDataset):
            raise TypeError(f"{type(self._dataset).__name__} cannot draw its items")
        return self._dataset.visualize(item=item, color=color)

    def visualize_as_html(self, item: int, title: str, color: TColor) -> str:
        """The base dataset's HTML block of ``item`` (see its ``visualize_as_html``)."""
        if not isinstance(self._dataset, IHTMLVisualizableDataset):
            raise TypeError(f"{type(self._dataset).__name__} cannot show its items as HTML")
        return self._dataset.visualize_as_html(item=item, title=title, color=color)


class _Labeled(_DFDataset, ILabeledDataset):
    _labels: np.ndarray
    labels_key: str

    def get_labels(self) -> np.ndarray:
        """Labels as int64 ``ndarray[N]``."""
        return self._labels.copy()

    def get_label2category(self) -> dict[int, Any] | None:
        if CATEGORIES_COLUMN not in self.df.columns:
            return None
        return dict(zip(self._labels.tolist(), self.df[CATEGORIES_COLUMN]))

    def _add_label(self, data: dict[str, Any]) -> dict[str, Any]:
        data[self.labels_key] = int(self._labels[data[self.index_key]])
        return data


class DFLabeledDataset(_Labeled):
    """``dataset`` with the labels of ``df`` (a train set); items gain ``labels_key``."""

    def __init__(
        self,
        dataset: IBaseDataset,
        df: pd.DataFrame,
        extra_data: dict[str, Any] | None = None,
        labels_key: str = LABELS_KEY,
    ):
        owner = type(self).__name__
        _require_columns(df, (LABELS_COLUMN,), owner)
        df = df.reset_index(drop=True)
        self._labels = _labels(df, owner)
        self._wrap(dataset, df, extra_data)
        self.labels_key = labels_key

    def __getitem__(self, item: int) -> dict[str, Any]:
        return self._add_label(self._dataset[item])


class _QueryGallery(_DFDataset, IQueryGalleryDataset):
    _is_query: np.ndarray
    _is_gallery: np.ndarray

    def _read_flags(self, df: pd.DataFrame) -> None:
        owner = type(self).__name__
        self._is_query = _flags(df, IS_QUERY_COLUMN, owner)
        self._is_gallery = _flags(df, IS_GALLERY_COLUMN, owner)

    def get_query_ids(self) -> torch.Tensor:
        """Dataset indices of the queries, LongTensor[n_query] (ascending)."""
        return torch.from_numpy(np.flatnonzero(self._is_query)).long()

    def get_gallery_ids(self) -> torch.Tensor:
        """Dataset indices of the gallery items, LongTensor[n_gallery] (ascending)."""
        return torch.from_numpy(np.flatnonzero(self._is_gallery)).long()

    def __getitem__(self, item: int) -> dict[str, Any]:
        data = self._dataset[item]
        idx = data[self.index_key]
        data[IS_QUERY_KEY] = bool(self._is_query[idx])
        data[IS_GALLERY_KEY] = bool(self._is_gallery[idx])
        return data


class DFQueryGalleryDataset(_QueryGallery):
    """``dataset`` with the ``is_query`` / ``is_gallery`` flags of ``df`` and no labels (inference)."""

    def __init__(self, dataset: IBaseDataset, df: pd.DataFrame, extra_data: dict[str, Any] | None = None):
        _require_columns(df, (IS_QUERY_COLUMN, IS_GALLERY_COLUMN), type(self).__name__)
        df = df.reset_index(drop=True)
        self._read_flags(df)
        self._wrap(dataset, df, extra_data)


class DFQueryGalleryLabeledDataset(_QueryGallery, _Labeled, IQueryGalleryLabeledDataset):  # type: ignore[misc]
    """``dataset`` with labels and query / gallery flags from ``df`` (a validation set)."""

    def __init__(
        self,
        dataset: IBaseDataset,
        df: pd.DataFrame,
        extra_data: dict[str, Any] | None = None,
        labels_key: str = LABELS_KEY,
    ):
        owner = type(self).__name__
        _require_columns(df, (LABELS_COLUMN, IS_QUERY_COLUMN, IS_GALLERY_COLUMN), owner)
        df = df.reset_index(drop=True)
        self._labels = _labels(df, owner)
        self._read_flags(df)
        self._wrap(dataset, df, extra_data)
        self.labels_key = labels_key

    def __getitem__(self, item: int) -> dict[str, Any]:
        return self._add_label(super().__getitem__(item))


__all__ = [
    "DFLabeledDataset",
    "DFQueryGalleryDataset",
    "DFQueryGalleryLabeledDataset",
    "check_extra_data",
    "check_index",
    "put_extra_data",
]
