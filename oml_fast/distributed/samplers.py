"""Samplers for data-parallel runs: whole batches of a batch sampler per rank, and shards of a sequence.

Both read the rank and the world size when they are iterated (not when built), so they can be
created before the process group exists (as Lightning does) and are plain pass-throughs in a single
process.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sized
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from .comm import get_rank, get_world_size, is_distributed


class ForkedGlobalRNG:
    """Seeds Python's, NumPy's and torch's global generators for a block, then restores their states.

    Batch samplers that draw from the global generators (OML's do) then produce the same epoch on every
    rank, and the caller's random stream is left as it was.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self) -> None:
        self._states = (random.getstate(), np.random.get_state(), torch.random.get_rng_state())
        random.seed(self.seed)
        np.random.seed(self.seed % 2**32)
        torch.manual_seed(self.seed)

    def __exit__(self, *exc: Any) -> None:
        random.setstate(self._states[0])
        np.random.set_state(self._states[1])
        torch.random.set_rng_state(self._states[2])


class DDPBatchSamplerWrapper:
    """Gives each rank whole batches of a batch sampler, the same number of batches on every rank.

    Per epoch, the wrapped batch sampler is iterated once on every rank, with the global random
    generators seeded by ``seed + epoch`` (then restored), so that every rank sees the same list of
    batches; rank ``r`` takes batches ``r, r + W, r + 2W, ...`` (``W`` = world size). A batch is never
    split, so ``n_labels x n_instances`` structure (and the miners that rely on it) survive.
    When the number of batches is not a multiple of ``W``, the list is padded by repeating its first
    batches (``drop_last=False``, as ``DistributedSampler``) or cut (``drop_last=True``).

    The wrapped sampler must give the same batches on every rank for a given global seed: true for
    samplers that draw from the global generators (``seed=None``) and for samplers built with the same
    explicit ``seed`` on every rank (their own generator advances one epoch per iteration on each rank).

    The epoch is set by :meth:`set_epoch`, and otherwise advances by one at each iteration.
    In a single process the wrapper yields the wrapped sampler's batches unchanged.

    Args:
        batch_sampler: any iterable of lists of indices with ``len()`` (e.g. ``BalanceSampler``).
        seed: base seed of the epochs; must be equal on every rank.
        drop_last: cut the extra batches instead of padding.

    >>> wrapper = DDPBatchSamplerWrapper([[0, 1], [2, 3], [4, 5]])
    >>> list(wrapper), len(wrapper)  # one process: unchanged
    ([[0, 1], [2, 3], [4, 5]], 3)
    >>> wrapper.batches_of_rank([[0, 1], [2, 3], [4, 5]], rank=1, world_size=2)
    [[2, 3], [0, 1]]
    """

    def __init__(self, batch_sampler: Iterable[list[int]], seed: int = 0, drop_last: bool = False):
        if not isinstance(batch_sampler, Sized):
            raise TypeError(f"`batch_sampler` must have a length, got {type(batch_sampler).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"`seed` must be an int, got {seed!r}")
        self.batch_sampler = batch_sampler
        self.seed = int(seed)
        self.drop_last = drop_last
        self.epoch = 0
        self._epoch_was_set = False

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch of the next iteration (all ranks must set the same)."""
        self.epoch = int(epoch)
        self._epoch_was_set = True

    def batches_of_rank(self, batches: list[list[int]], rank: int, world_size: int) -> list[list[int]]:
        """The batches ``rank`` takes out of the full list of an epoch."""
        n = len(batches)
        n_per_rank = n // world_size if self.drop_last else math.ceil(n / world_size)
        total = n_per_rank * world_size
        if total > n:  # pad by repeating from the start (several times if there are fewer batches than ranks)
            batches = (batches * math.ceil(total / max(n, 1)))[:total]
        return batches[rank:total:world_size]

    def __len__(self) -> int:
        n, world_size = len(self.batch_sampler), get_world_size()  # type: ignore[arg-type]
        return n // world_size if self.drop_last else math.ceil(n / world_size)

    def __iter__(self) -> Iterator[list[int]]:
        if not is_distributed():
            yield from self.batch_sampler
            return
        with ForkedGlobalRNG(self.seed + self.epoch):
            batches = [list(batch) for batch in self.batch_sampler]
        if not self._epoch_was_set:
            self.epoch += 1
        self._epoch_was_set = False
        yield from self.batches_of_rank(batches, get_rank(), get_world_size())

    @property
    def batch_size(self) -> Any:
        return getattr(self.batch_sampler, "batch_size", None)


class RankShardSampler(Sampler[int]):
    """Rank ``r`` of ``W`` gets items ``r, r + W, r + 2W, ...`` of ``0 .. n_items - 1``, padded with the
    first items so that every rank has ``ceil(n_items / W)`` (``DistributedSampler(shuffle=False)``'s
    order). Meant for validation loaders: the duplicates are harmless where items carry their index
    (``EmbeddingMetrics`` places rows by index). One process: ``0 .. n_items - 1`` in order.

    >>> list(RankShardSampler(5))
    [0, 1, 2, 3, 4]
    >>> RankShardSampler.indices_of_rank(5, rank=1, world_size=2)
    [1, 3, 0]
    """

    def __init__(self, data_source: Sized | int):
        self.n_items = data_source if isinstance(data_source, int) else len(data_source)

    @staticmethod
    def indices_of_rank(n_items: int, rank: int, world_size: int) -> list[int]:
        per_rank = math.ceil(n_items / world_size)
        indices = list(range(n_items))
        indices = (indices * math.ceil(per_rank * world_size / max(n_items, 1)))[: per_rank * world_size]
        return indices[rank::world_size]

    def __len__(self) -> int:
        return math.ceil(self.n_items / get_world_size())

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices_of_rank(self.n_items, get_rank(), get_world_size()))


__all__ = ["DDPBatchSamplerWrapper", "RankShardSampler"]
