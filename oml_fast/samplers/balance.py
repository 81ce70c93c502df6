"""``n_labels x n_instances`` batches, every label used at most once per epoch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .base import SeededBatchSampler, check_positive_int, labels_to_list, smart_sample


class BalanceSampler(SeededBatchSampler):
    """Batches of ``n_instances`` items for each of ``n_labels`` labels (P x K sampling of
    "In Defense of the Triplet Loss for Person Re-Identification").

    Per epoch, labels are drawn without repetition, ``n_labels`` per batch, so an epoch has
    ``n_unique_labels // n_labels`` batches (the remainder is dropped). A label with fewer than
    ``n_instances`` items gives all of them plus random repeats.

    Args:
        labels: the label of every dataset item.
        n_labels: labels per batch (2 .. number of unique labels).
        n_instances: items per label (>= 2).
        seed: see :class:`SeededBatchSampler`.

    Raises ``ValueError`` / ``TypeError`` for invalid arguments, and when a label has a single item.

    >>> sampler = BalanceSampler([0, 0, 1, 1, 1, 2, 2], n_labels=2, n_instances=2, seed=0)
    >>> len(sampler), sampler.batch_size, [len(batch) for batch in sampler]
    (1, 4, [4])
    """

    def __init__(
        self, labels: Sequence[Any] | np.ndarray, n_labels: int, n_instances: int, seed: int | None = None
    ):
        super().__init__(seed)
        labels_list = labels_to_list(labels)
        counts = Counter(labels_list)
        self.n_labels = check_positive_int(n_labels, "n_labels", 2)
        self.n_instances = check_positive_int(n_instances, "n_instances", 2)
        if self.n_labels > len(counts):
            raise InvalidInputError(
                f"`n_labels` ({n_labels}) exceeds the number of unique labels ({len(counts)})"
            )
        small = [label for label, n in counts.items() if n < 2]
        if small:
            raise InvalidInputError(
                f"every label needs at least 2 items; {len(small)} have one, e.g. {small[:5]}"
            )
        self._labels = np.asarray(labels_list)
        self._unq_labels = sorted(counts, key=lambda v: (str(type(v)), v))
        self.lbl2idx: dict[Any, list[int]] = {label: [] for label in self._unq_labels}
        for index, label in enumerate(labels_list):
            self.lbl2idx[label].append(index)
        self._batch_size = self.n_labels * self.n_instances
        self._batches_in_epoch = len(self._unq_labels) // self.n_labels

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def __len__(self) -> int:
        return self._batches_in_epoch

    def __iter__(self) -> Iterator[list[int]]:
        rng = self._epoch_rng()
        order = rng.permutation(len(self._unq_labels))
        batches = []
        for b in range(len(self)):
            batch: list[int] = []
            for label_pos in order[b * self.n_labels : (b + 1) * self.n_labels]:
                batch.extend(smart_sample(self.lbl2idx[self._unq_labels[label_pos]], self.n_instances, rng))
            batches.append(batch)
        return iter(batches)


__all__ = ["BalanceSampler"]
