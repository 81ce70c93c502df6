"""A ready query/gallery dataset held in memory, for users who already have embeddings or features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..const import CATEGORIES_COLUMN, SEQUENCE_COLUMN
from ..interfaces.datasets import IQueryGalleryLabeledDataset


def _as_1d(name: str, values: Any, length: int | None, dtype: Any = None) -> np.ndarray:
    array = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
    if dtype is bool:
        _check_bools(name, array)
    if dtype is not None:
        array = array.astype(dtype)
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D, got shape {tuple(array.shape)}")
    if length is not None and len(array) != length:
        raise ValueError(f"`{name}` must have length {length} (one value per item), got {len(array)}")
    return array


def _check_bools(name: str, array: np.ndarray) -> None:
    """Booleans, or numbers that are 0 / 1: strings such as ``"False"`` would all be truthy."""
    if array.dtype.kind == "b":
        return
    if array.dtype.kind in "iuf" and bool(np.isin(array, (0, 1)).all()):
        return
    # Python objects (e.g. a pandas column): bools, or numbers equal to 0 / 1.
    if array.dtype.kind == "O" and all(
        isinstance(v, (bool, np.bool_)) or (isinstance(v, (int, float, np.number)) and v in (0, 1))
        for v in array.reshape(-1)
    ):
        return
    shown = array.reshape(-1)[:3].tolist()
    raise ValueError(
        f"`{name}` must hold booleans (True/False or 1/0), got {array.dtype} values such as {shown} "
        "(strings like 'False' would all count as True: convert them first)"
    )


class InMemoryQueryGalleryDataset(IQueryGalleryLabeledDataset):
    """Labels, a query/gallery split and optional categories/sequences, held in arrays.

    Args:
        labels (array-like[N] int): label of every item.
        is_query (array-like[N] bool): the item is a query; default: every item.
        is_gallery (array-like[N] bool): the item is in the gallery; default: every item.
        input_tensors (Tensor[N, ...]): what ``__getitem__`` returns under ``input_tensors``
            (features or embeddings); default: the item index as a 0-d tensor.
        categories (array-like[N]): per-item category (str or int) for per-category metrics.
        sequences (array-like[N]): per-item sequence id; items of one sequence never retrieve each other.

    >>> ds = InMemoryQueryGalleryDataset(labels=[0, 0, 1], is_query=[True, False, True], categories=["a", "a", "b"])
    >>> len(ds), ds.get_query_ids().tolist(), ds.get_gallery_ids().tolist()
    (3, [0, 2], [0, 1, 2])
    >>> sorted(ds[1].keys())
    ['idx', 'input_tensors', 'is_gallery', 'is_query', 'labels']
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray | Tensor,
        is_query: Sequence[bool] | np.ndarray | Tensor | None = None,
        is_gallery: Sequence[bool] | np.ndarray | Tensor | None = None,
        input_tensors: Tensor | None = None,
        categories: Sequence[Any] | np.ndarray | None = None,
        sequences: Sequence[Any] | np.ndarray | None = None,
    ):
        self._labels = _as_1d("labels", labels, None)
        if not np.issubdtype(self._labels.dtype, np.integer):
            raise ValueError(f"`labels` must be integers, got dtype {self._labels.dtype}")
        self._labels = self._labels.astype(np.int64)
        n = len(self._labels)
        self._is_query = np.ones(n, bool) if is_query is None else _as_1d("is_query", is_query, n, bool)
        self._is_gallery = (
            np.ones(n, bool) if is_gallery is None else _as_1d("is_gallery", is_gallery, n, bool)
        )
        if input_tensors is not None and len(input_tensors) != n:
            raise ValueError(f"`input_tensors` must have {n} rows (one per item), got {len(input_tensors)}")
        self._input_tensors = input_tensors
        self.extra_data: dict[str, Any] = {}
        if categories is not None:
            self.extra_data[CATEGORIES_COLUMN] = _as_1d("categories", categories, n)
        if sequences is not None:
            self.extra_data[SEQUENCE_COLUMN] = _as_1d("sequences", sequences, n)

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, item: int) -> dict[str, Any]:
        if not -len(self) <= item < len(self):
            raise IndexError(f"index {item} is out of range for a dataset of {len(self)} items")
        item = int(item) % len(self)
        tensors = self._input_tensors[item] if self._input_tensors is not None else torch.tensor(item)
        return {
            self.input_tensors_key: tensors,
            self.labels_key: int(self._labels[item]),
            self.index_key: item,
            self.is_query_key: bool(self._is_query[item]),
            self.is_gallery_key: bool(self._is_gallery[item]),
        }

    def get_labels(self) -> np.ndarray:
        return self._labels

    def get_query_ids(self) -> Tensor:
        return torch.from_numpy(np.flatnonzero(self._is_query)).long()

    def get_gallery_ids(self) -> Tensor:
        return torch.from_numpy(np.flatnonzero(self._is_gallery)).long()


__all__ = ["InMemoryQueryGalleryDataset"]
