"""Pairs of items of any dataset (OML's ``oml.datasets.pairs.PairDataset``), e.g. for pairwise models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from oml_fast.const import INDEX_KEY, INPUT_TENSORS_KEY_1, INPUT_TENSORS_KEY_2
from oml_fast.interfaces.datasets import IBaseDataset, IPairDataset


class PairDataset(IPairDataset):
    """Item ``i`` is ``{input_tensors_1: base[a][key], input_tensors_2: base[b][key], idx: i}`` for
    ``(a, b) = pair_ids[i]`` (``key`` is the base dataset's ``input_tensors_key``).

    >>> from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
    >>> pairs = PairDataset(InMemoryQueryGalleryDataset(labels=[0, 1, 2]), pair_ids=[(0, 2)])
    >>> pairs[0]
    {'input_tensors_1': tensor(0), 'input_tensors_2': tensor(2), 'idx': 0}
    """

    def __init__(
        self,
        base_dataset: IBaseDataset,
        pair_ids: Sequence[tuple[int, int]],
        input_tensors_key_1: str = INPUT_TENSORS_KEY_1,
        input_tensors_key_2: str = INPUT_TENSORS_KEY_2,
        index_key: str = INDEX_KEY,
    ):
        self.base_dataset = base_dataset
        self.pair_ids = pair_ids
        self.input_tensors_key_1 = input_tensors_key_1
        self.input_tensors_key_2 = input_tensors_key_2
        self.index_key = index_key

    def __getitem__(self, item: int) -> dict[str, Any]:
        first, second = self.pair_ids[item]
        key = self.base_dataset.input_tensors_key
        return {
            self.input_tensors_key_1: self.base_dataset[int(first)][key],
            self.input_tensors_key_2: self.base_dataset[int(second)][key],
            self.index_key: item,
        }

    def __len__(self) -> int:
        return len(self.pair_ids)


__all__ = ["PairDataset"]
