"""Turning a ``DataLoader`` into a DDP one (OML's ``oml.ddp.patching``), any sampler or batch sampler kept.

:class:`DDPSamplerWrapper` lists what the wrapped (batch) sampler yields for the epoch, identically on
every rank (the global random generators are seeded with ``seed + epoch`` while it is read, then
restored), and gives rank ``r`` the items ``r, r + W, ...`` of that list, padded with its first
items so that every rank gets ``ceil(n / W)`` (or cut to ``floor(n / W)``). Batches of a batch
sampler are never split, so ``n_labels x n_instances`` batches survive.

>>> from torch.utils.data import SequentialSampler
>>> list(DDPSamplerWrapper(SequentialSampler(range(5)), shuffle_samples_between_gpus=False))  # no DDP: as is
[0, 1, 2, 3, 4]
"""

from __future__ import annotations

import inspect
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, Sampler

from oml_fast.ddp.utils import WarningDDP, get_rank_safe, get_world_size_safe, is_ddp
from oml_fast.distributed.samplers import ForkedGlobalRNG

logger = logging.getLogger(__name__)


class DDPSamplerWrapper(Sampler):  # type: ignore[type-arg]
    """Splits the output of any sampler or batch sampler between the ranks.

    Args:
        sampler: a sampler (yields indices) or batch sampler (yields lists of indices) with ``len``.
        shuffle_samples_between_gpus: shuffle the epoch's items (the same permutation on every rank)
            before dealing them out; the order inside a batch is the sampler's.
        pad_data_to_num_gpus: pad with repeated items so that every rank gets ``ceil(n / W)`` items
            (``False``: cut to ``floor(n / W)``).
        seed: base seed of the epochs (equal on every rank).

    The epoch advances by one at each iteration (or is set by :meth:`set_epoch`). Without a process
    group, the sampler's items come back unchanged (shuffled when asked).
    """

    def __init__(
        self,
        sampler: Any,
        shuffle_samples_between_gpus: bool = True,
        pad_data_to_num_gpus: bool = True,
        seed: int = 0,
    ):
        if not hasattr(sampler, "__len__"):
            raise TypeError(f"`sampler` must have a length, got {type(sampler).__name__}")
        self.sampler = sampler
        self.shuffle = bool(shuffle_samples_between_gpus)
        self.drop_last = not pad_data_to_num_gpus
        self.seed = int(seed)
        self.epoch = 0
        self._epoch_was_set = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self._epoch_was_set = True

    def _world(self) -> tuple[int, int]:
        return get_rank_safe(), max(1, get_world_size_safe())

    def __len__(self) -> int:
        n, world_size = len(self.sampler), self._world()[1]
        return n // world_size if self.drop_last else math.ceil(n / world_size)

    def __iter__(self) -> Iterator[Any]:
        rank, world_size = self._world()
        with ForkedGlobalRNG(self.seed + self.epoch):
            items = list(self.sampler)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            items = [items[i] for i in torch.randperm(len(items), generator=generator).tolist()]
        if not self._epoch_was_set:
            self.epoch += 1
        self._epoch_was_set = False
        n = len(items)
        per_rank = n // world_size if self.drop_last else math.ceil(n / world_size)
        total = per_rank * world_size
        if (
            total > n
        ):  # padding by repeating from the start (several times when there are fewer items than ranks)
            items = (items * math.ceil(total / max(n, 1)))[:total]
        yield from items[rank:total:world_size]


def extract_loader_parameters(
    loader: DataLoader, ignore_data_related_parameters: bool = False
) -> dict[str, Any]:
    """The ``DataLoader`` arguments of ``loader`` (``num_workers``, ``collate_fn``, ...); with
    ``ignore_data_related_parameters`` without the dataset, the (batch) sampler, ``batch_size``,
    ``shuffle`` and ``drop_last``."""
    ignored = {"self"}
    if ignore_data_related_parameters:
        ignored |= {"sampler", "batch_sampler", "drop_last", "shuffle", "batch_size", "dataset"}
    return {
        name: getattr(loader, name)
        for name in inspect.signature(DataLoader.__init__).parameters
        if name not in ignored and hasattr(loader, name)
    }


def patch_dataloader_to_ddp(loader: DataLoader) -> DataLoader:
    """A copy of ``loader`` whose sampler (or batch sampler) is wrapped in :class:`DDPSamplerWrapper`
    (no shuffling between ranks, padding on): each rank gets its share, the same amount on every rank.

    Without a process group, ``loader`` itself comes back (with a :class:`WarningDDP`).
    """
    if not is_ddp():
        warnings.warn(WarningDDP(patch_dataloader_to_ddp.__name__), stacklevel=2)
        return loader
    kwargs = extract_loader_parameters(loader, ignore_data_related_parameters=True)
    # A loader built with `batch_size` has exactly torch's BatchSampler around its sampler: then the
    # sampler is wrapped and batched again; any other batch sampler is wrapped whole.
    if type(loader.batch_sampler) is BatchSampler:
        wrapper = DDPSamplerWrapper(
            loader.sampler, shuffle_samples_between_gpus=False, pad_data_to_num_gpus=True
        )
        patched = DataLoader(
            loader.dataset,
            sampler=wrapper,
            batch_size=loader.batch_size,
            drop_last=loader.drop_last,
            **kwargs,
        )
        what = f"sampler '{type(loader.sampler).__name__}'"
    else:
        wrapper = DDPSamplerWrapper(
            loader.batch_sampler, shuffle_samples_between_gpus=False, pad_data_to_num_gpus=True
        )
        patched = DataLoader(loader.dataset, batch_sampler=wrapper, **kwargs)
        what = f"batch sampler '{type(loader.batch_sampler).__name__}'"
    logger.info("DataLoader with %s is patched to DDP", what)
    return patched


def check_loaders_is_patched(loaders: DataLoader | Sequence[DataLoader]) -> bool:
    """Whether every loader's (batch) sampler is a :class:`DDPSamplerWrapper`."""
    loaders = [loaders] if isinstance(loaders, DataLoader) else list(loaders)
    return all(
        isinstance(loader.batch_sampler, DDPSamplerWrapper) or isinstance(loader.sampler, DDPSamplerWrapper)
        for loader in loaders
    )


__all__ = [
    "DDPSamplerWrapper",
    "check_loaders_is_patched",
    "extract_loader_parameters",
    "patch_dataloader_to_ddp",
]
