"""Shared parts of the batch samplers: argument checks, seeding and up-sampling of small classes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..interfaces.samplers import IBatchSampler


def smart_sample(array: Sequence[Any], k: int, rng: np.random.Generator) -> list[Any]:
    """``k`` items of ``array``: without repetition when it has enough, otherwise all of them plus
    ``k - len(array)`` drawn with repetition.

    >>> sorted(smart_sample([1, 2], 3, np.random.default_rng(0)))[:2]
    [1, 2]
    """
    items = list(array)
    if len(items) < k:
        extra = rng.choice(len(items), size=k - len(items), replace=True)
        return items + [items[i] for i in extra]
    return [items[i] for i in rng.choice(len(items), size=k, replace=False)]


def check_positive_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if value < minimum:
        raise InvalidInputError(f"`{name}` must be >= {minimum}, got {value}")
    return int(value)


def labels_to_list(labels: Sequence[Any] | np.ndarray) -> list[Any]:
    flat = np.asarray(labels)
    if flat.ndim != 1:
        raise InvalidInputError(f"`labels` must be 1-D, got shape {flat.shape}")
    if flat.size == 0:
        raise InvalidInputError("`labels` is empty")
    return flat.tolist()


class SeededBatchSampler(IBatchSampler):
    """Base of our batch samplers (OML's :class:`~oml_fast.interfaces.samplers.IBatchSampler` plus a seed).

    Randomness: with ``seed`` set, the sampler owns a generator seeded once, so a new sampler with the
    same seed yields the same sequence of epochs, and consecutive epochs differ. With ``seed=None``
    each epoch draws its seed from numpy's global RNG, so ``np.random.seed`` / Lightning's
    ``seed_everything`` make runs reproducible (as OML, which uses the global RNG).
    """

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def _epoch_rng(self) -> np.random.Generator:
        if self._rng is not None:
            return self._rng
        return np.random.default_rng(np.random.randint(0, 2**31 - 1))

    @property
    def batch_size(self) -> int:
        raise NotImplementedError


__all__ = ["IBatchSampler", "SeededBatchSampler", "smart_sample", "check_positive_int", "labels_to_list"]
