"""Accumulator: collects batches of tensors, arrays and lists until a known number of items is reached
(OML 4.x's ``oml.metrics.accumulation``, same names and behaviour).

With ``indices`` given to :meth:`Accumulator.update_data`, :meth:`Accumulator.sync` returns the items
sorted by index, each index once (the first occurrence wins), gathered from every process under
``torch.distributed``. :class:`~oml_fast.metrics.EmbeddingMetrics` keeps its embeddings in one (``.acc``).

>>> acc = Accumulator(keys_to_accumulate=("embeddings",))
>>> acc.refresh(num_samples=3)
>>> acc.update_data({"embeddings": torch.tensor([[2.0], [0.0]])}, indices=[2, 0])
>>> acc.update_data({"embeddings": torch.tensor([[1.0]])}, indices=[1])
>>> acc.is_storage_full(), acc.sync().storage["embeddings"].flatten().tolist()
(True, [0.0, 1.0, 2.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import InvalidInputError

TStorage = dict[str, Tensor | np.ndarray | list[Any]]


def _world_size() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _gather_storage(storage: TStorage, world_size: int) -> TStorage:
    """Every process's storage, concatenated in rank order (on the CPU, as OML)."""
    local = {key: value.cpu() if isinstance(value, Tensor) else value for key, value in storage.items()}
    gathered: list[Any] = [None] * world_size
    torch.distributed.all_gather_object(gathered, local)
    keys = [set(part) for part in gathered]
    if any(k != keys[0] for k in keys):
        raise InvalidInputError(
            f"accumulators hold different keys on different ranks: {[sorted(k) for k in keys]}"
        )
    merged: TStorage = {}
    for key, first in gathered[0].items():
        parts = [part[key] for part in gathered]
        if isinstance(first, Tensor):
            merged[key] = torch.cat(parts)
        elif isinstance(first, np.ndarray):
            merged[key] = np.concatenate(parts)
        else:
            merged[key] = [item for part in parts for item in part]
    return merged


def _unique_by_ids(ids: Sequence[int], data: Any) -> Any:
    """``data`` ordered by ``ids``, one row per distinct id (its first occurrence)."""
    _, first = np.unique(np.asarray(ids), return_index=True)
    if len(first) == len(data) and bool((first == np.arange(len(first))).all()):
        return data  # already in order, no duplicates (a sequential loader): no copy
    if isinstance(data, Tensor):
        return data[torch.from_numpy(first).to(data.device)]
    if isinstance(data, np.ndarray):
        return data[first]
    return [data[i] for i in first]


class Accumulator:
    """Collects values of several keys (``torch.Tensor``, ``np.ndarray`` or lists) batch by batch.

    Args:
        keys_to_accumulate: the keys taken from each ``data_dict`` given to :meth:`update_data` (unique).

    Tensors are stored on the CPU, as OML does; setting ``storage_device = None`` keeps them on the
    device of the first batch (``EmbeddingMetrics`` does, so that the search runs where the model ran).
    """

    storage_device: str | torch.device | None = "cpu"
    # False when the caller has already gathered every process's items into this accumulator.
    gather_across_processes: bool = True

    def __init__(self, keys_to_accumulate: Sequence[str]):
        keys = tuple(keys_to_accumulate)
        if len(keys) != len(set(keys)):
            raise InvalidInputError(f"All the keys have to be unique, got {list(keys)}")
        self.keys_to_accumulate = keys
        self.num_samples: int | None = None
        self._collected_samples = 0
        self._storage: TStorage = {}
        self._indices_key = "__element_indices"  # the order of the items, when indices are given

    def refresh(self, num_samples: int) -> None:
        """Starts over, for ``num_samples`` items (a positive int: the memory to allocate)."""
        if (
            isinstance(num_samples, bool)
            or not isinstance(num_samples, (int, np.integer))
            or num_samples <= 0
        ):
            raise InvalidInputError(f"`num_samples` must be a positive int, got {num_samples!r}")
        self.num_samples = int(num_samples)
        self._collected_samples = 0
        self._storage = {}

    def _allocate_memory_if_need(self, key: str, batch_value: Any) -> None:
        if self.num_samples is None:
            raise ValueError(
                f"The parameter for memory allocation has not been set up. Are you sure you've called "
                f"{self.refresh.__name__}?"
            )
        if key in self._storage:
            return
        if isinstance(batch_value, Tensor):
            device = batch_value.device if self.storage_device is None else self.storage_device
            self._storage[key] = torch.empty(
                (self.num_samples, *batch_value.shape[1:]), dtype=batch_value.dtype, device=device
            )
        elif isinstance(batch_value, np.ndarray):
            self._storage[key] = np.empty((self.num_samples, *batch_value.shape[1:]), dtype=batch_value.dtype)
        elif isinstance(batch_value, (list, tuple)):
            self._storage[key] = []
        else:
            raise TypeError(f"Type '{type(batch_value)}' is not available for accumulating")

    def _put_in_storage(self, key: str, batch_value: Any) -> None:
        start, stop = self._collected_samples, self._collected_samples + len(batch_value)
        stored = self._storage[key]
        if isinstance(stored, list):
            stored.extend(list(batch_value))
            return
        if not isinstance(batch_value, type(stored)):
            raise TypeError(
                f"`{key}` changed type: {type(stored).__name__} before, now {type(batch_value).__name__}"
            )
        if tuple(batch_value.shape[1:]) != tuple(stored.shape[1:]):
            raise InvalidInputError(
                f"`{key}` changed shape: items of {tuple(stored.shape[1:])} before, now {tuple(batch_value.shape[1:])}"
            )
        if isinstance(stored, Tensor) and isinstance(batch_value, Tensor):
            stored[start:stop] = batch_value.detach().to(device=stored.device, dtype=stored.dtype)
        elif isinstance(stored, np.ndarray) and isinstance(batch_value, np.ndarray):
            stored[start:stop] = batch_value

    def update_data(self, data_dict: dict[str, Any], indices: Sequence[int] | Tensor | None = None) -> None:
        """Stores one batch.

        Args:
            data_dict: holds every key of ``keys_to_accumulate``; all values of one length (the batch size).
            indices: the items' global indices (a list of ints; a tensor or array is converted). Given once,
                they must be given with every batch; :meth:`sync` then orders the items by them and drops
                duplicates (DDP padding, or a shuffled loader).
        """
        keys = list(self.keys_to_accumulate)
        data = {key: data_dict[key] for key in keys}
        if indices is None:
            if self._indices_key in self._storage:
                raise InvalidInputError("We are tracking ids, but they are not currently provided.")
        else:
            if self._collected_samples > 0 and self._indices_key not in self._storage:
                raise RuntimeError("You provided ids, but seems like you had not done it before.")
            if isinstance(indices, (Tensor, np.ndarray)):
                indices = indices.reshape(-1).tolist()
            keys.append(self._indices_key)
            data[self._indices_key] = list(indices)  # type: ignore[arg-type]
        for key in keys:
            if not isinstance(data[key], (Tensor, np.ndarray, list, tuple)):
                raise TypeError(f"Type '{type(data[key])}' is not available for accumulating (`{key}`)")
        lengths = [len(data[key]) for key in keys]
        if any(n != lengths[0] for n in lengths):
            raise InvalidInputError(f"Lengths of data are not equal, lengths: {dict(zip(keys, lengths))}")
        if self.num_samples is not None and self._collected_samples + lengths[0] > self.num_samples:
            raise InvalidInputError(
                f"the accumulator was refreshed for {self.num_samples} items, but this batch of {lengths[0]} "
                f"comes after {self._collected_samples}"
            )
        for key in keys:
            self._allocate_memory_if_need(key, data[key])
            self._put_in_storage(key, data[key])
        self._collected_samples += lengths[0]

    @property
    def storage(self) -> TStorage:
        return self._storage

    @property
    def collected_samples(self) -> int:
        return self._collected_samples

    def is_storage_full(self) -> bool:
        return self.num_samples == self._collected_samples

    def sync(self) -> Accumulator:
        """Gathers the storages of every process (``torch.distributed``), then, if indices were given, sorts the
        items by index and drops duplicates. Returns ``self`` when there is nothing to change, else a new,
        full accumulator."""
        if not self.is_storage_full():
            raise ValueError(f"Cannot sync. Collected: {self._collected_samples}/{self.num_samples} items.")
        storage, rebuild = self._storage, False
        world_size = _world_size()
        if world_size > 1 and self.gather_across_processes:
            storage, rebuild = _gather_storage(self._storage, world_size), True
        indices = None
        if self._indices_key in storage:
            ids = storage[self._indices_key]
            storage = {key: _unique_by_ids(ids, value) for key, value in storage.items()}  # type: ignore[arg-type]
            indices, rebuild = storage.pop(self._indices_key), True
        if not rebuild:
            return self
        # The new accumulator takes the reordered storage as it is (no second copy of the data).
        synced = Accumulator(self.keys_to_accumulate)
        synced.storage_device = self.storage_device
        synced.gather_across_processes = self.gather_across_processes
        synced.num_samples = synced._collected_samples = len(next(iter(storage.values())))
        synced._storage = dict(storage)
        if indices is not None:
            synced._storage[self._indices_key] = list(indices)  # type: ignore[arg-type]
        return synced


__all__ = ["TStorage", "Accumulator"]
