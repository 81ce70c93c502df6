"""Batches of ``n_categories x n_labels x n_instances`` items, categories drawn per batch."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .base import SeededBatchSampler, check_positive_int, labels_to_list, smart_sample


def _category_index(labels_list: list[Any], label2category: Mapping[Any, Any]) -> dict[Any, list[Any]]:
    unique_labels = set(labels_list)
    missing = [label for label in unique_labels if label not in label2category]
    if missing:
        raise InvalidInputError(
            f"every label needs a category in `label2category`; missing for {sorted(missing)[:5]}"
        )
    extra = [label for label in label2category if label not in unique_labels]
    if extra:
        raise InvalidInputError(
            f"`label2category` has labels that are not in `labels`: {sorted(extra, key=str)[:5]}"
        )
    category2labels: dict[Any, list[Any]] = {}
    for label in sorted(unique_labels, key=lambda v: (str(type(v)), v)):
        category2labels.setdefault(label2category[label], []).append(label)
    return dict(sorted(category2labels.items(), key=lambda kv: (str(type(kv[0])), kv[0])))


def _label_index(labels_list: list[Any]) -> dict[Any, list[int]]:
    index: dict[Any, list[int]] = {}
    for i, label in enumerate(labels_list):
        index.setdefault(label, []).append(i)
    return index


class CategoryBalanceSampler(SeededBatchSampler):
    """Each batch: ``n_categories`` categories (without repetition, optionally weighted by their
    number of labels), ``n_labels`` labels of each, ``n_instances`` items of each label.

    Args:
        labels: the label of every dataset item (each label needs >= 2 items).
        label2category: the category of every label.
        n_categories: categories per batch (1 .. number of categories).
        n_labels: labels per category (2 .. number of labels).
        n_instances: items per label (>= 2; smaller labels are up-sampled).
        resample_labels: if ``False`` every category needs ``n_labels`` labels (else ``ValueError``);
            if ``True`` small categories repeat labels.
        weight_categories: draw categories with probability proportional to their number of labels.
        seed: see :class:`SeededBatchSampler`.

    ``len = ceil(n_unique_labels / n_labels)`` batches per epoch (OML's definition).

    >>> labels = [0, 0, 1, 1, 2, 2, 3, 3]
    >>> sampler = CategoryBalanceSampler(labels, {0: "a", 1: "a", 2: "b", 3: "b"}, 1, 2, 2, seed=0)
    >>> len(sampler), sampler.batch_size
    (2, 4)
    """

    def __init__(
        self,
        labels: Sequence[Any] | np.ndarray,
        label2category: Mapping[Any, Any],
        n_categories: int,
        n_labels: int,
        n_instances: int,
        resample_labels: bool = False,
        weight_categories: bool = True,
        seed: int | None = None,
    ):
        super().__init__(seed)
        labels_list = labels_to_list(labels)
        category2labels = _category_index(labels_list, label2category)
        n_unique = len(set(labels_list))
        self.n_categories = check_positive_int(n_categories, "n_categories", 1)
        self.n_labels = check_positive_int(n_labels, "n_labels", 2)
        self.n_instances = check_positive_int(n_instances, "n_instances", 2)
        if self.n_categories > len(category2labels):
            raise InvalidInputError(
                f"`n_categories` ({n_categories}) exceeds the number of categories ({len(category2labels)})"
            )
        if self.n_labels > n_unique:
            raise InvalidInputError(
                f"`n_labels` ({n_labels}) exceeds the number of unique labels ({n_unique})"
            )
        if any(n < 2 for n in Counter(labels_list).values()):
            raise InvalidInputError("every label needs at least 2 items")
        if not resample_labels:
            small = [c for c, labs in category2labels.items() if len(labs) < self.n_labels]
            if small:
                raise InvalidInputError(
                    f"every category needs at least n_labels={n_labels} labels (or set resample_labels=True); "
                    f"too small: {small[:5]}"
                )
        self.resample_labels = resample_labels
        self.weight_categories = weight_categories
        self._category2labels = category2labels
        self._label2index = _label_index(labels_list)
        self._categories = list(category2labels)
        sizes = np.array([len(category2labels[c]) for c in self._categories], dtype=float)
        self._category_weights = sizes / sizes.sum() if weight_categories else None
        if weight_categories and int((sizes > 0).sum()) < self.n_categories:
            raise InvalidInputError("not enough categories with labels for `n_categories`")
        self._batch_number = math.ceil(n_unique / self.n_labels)

    @property
    def batch_size(self) -> int:
        return self.n_categories * self.n_labels * self.n_instances

    def __len__(self) -> int:
        return self._batch_number

    def __iter__(self) -> Iterator[list[int]]:
        rng = self._epoch_rng()
        batches = []
        for _ in range(len(self)):
            chosen = rng.choice(
                len(self._categories), size=self.n_categories, replace=False, p=self._category_weights
            )
            batch: list[int] = []
            for c in chosen:
                for label in smart_sample(self._category2labels[self._categories[c]], self.n_labels, rng):
                    batch.extend(smart_sample(self._label2index[label], self.n_instances, rng))
            batches.append(batch)
        return iter(batches)


class DistinctCategoryBalanceSampler(SeededBatchSampler):
    """Like :class:`CategoryBalanceSampler`, but labels are not repeated until every label of a
    category has been used: each batch takes ``n_categories`` categories among those with unused
    labels, ``n_labels`` unused labels of each (topped up with already used labels of the category
    when fewer remain), ``n_instances`` items per label. When fewer than ``n_categories`` categories
    have unused labels, the state resets. ``epoch_size`` batches per epoch.

    Args:
        labels, label2category, n_categories, n_labels, n_instances: as in
            :class:`CategoryBalanceSampler` (every category needs ``n_labels`` labels).
        epoch_size: batches per epoch (>= 1).
        seed: see :class:`SeededBatchSampler`.

    >>> labels = [0, 0, 1, 1, 2, 2, 3, 3]
    >>> sampler = DistinctCategoryBalanceSampler(labels, {0: 0, 1: 0, 2: 1, 3: 1}, 1, 2, 2, epoch_size=3, seed=0)
    >>> len(sampler), [len(batch) for batch in sampler]
    (3, [4, 4, 4])
    """

    def __init__(
        self,
        labels: Sequence[Any] | np.ndarray,
        label2category: Mapping[Any, Any],
        n_categories: int,
        n_labels: int,
        n_instances: int,
        epoch_size: int,
        seed: int | None = None,
    ):
        super().__init__(seed)
        labels_list = labels_to_list(labels)
        category2labels = _category_index(labels_list, label2category)
        n_unique = len(set(labels_list))
        self.n_categories = check_positive_int(n_categories, "n_categories", 1)
        self.n_labels = check_positive_int(n_labels, "n_labels", 2)
        self.n_instances = check_positive_int(n_instances, "n_instances", 2)
        self.epoch_size = check_positive_int(epoch_size, "epoch_size", 1)
        if self.n_categories > len(category2labels):
            raise InvalidInputError(
                f"`n_categories` ({n_categories}) exceeds the number of categories ({len(category2labels)})"
            )
        if self.n_labels > n_unique:
            raise InvalidInputError(
                f"`n_labels` ({n_labels}) exceeds the number of unique labels ({n_unique})"
            )
        if any(n < 2 for n in Counter(labels_list).values()):
            raise InvalidInputError("every label needs at least 2 items")
        small = [c for c, labs in category2labels.items() if len(labs) < self.n_labels]
        if small:
            raise InvalidInputError(
                f"every category needs at least n_labels={n_labels} labels; too small: {small[:5]}"
            )
        self._category2labels = category2labels
        self._label2index = _label_index(labels_list)

    @property
    def batch_size(self) -> int:
        return self.n_categories * self.n_labels * self.n_instances

    def __len__(self) -> int:
        return self.epoch_size

    def __iter__(self) -> Iterator[list[int]]:
        rng = self._epoch_rng()
        unused = {c: list(labs) for c, labs in self._category2labels.items()}
        used: dict[Any, list[Any]] = {c: [] for c in self._category2labels}
        batches = []
        for _ in range(len(self)):
            if len(unused) < self.n_categories:
                unused = {c: list(labs) for c, labs in self._category2labels.items()}
                used = {c: [] for c in self._category2labels}
            available = list(unused)
            chosen = [available[i] for i in rng.choice(len(available), size=self.n_categories, replace=False)]
            batch: list[int] = []
            for category in chosen:
                fresh = unused[category]
                if self.n_labels <= len(fresh):
                    picked = [fresh[i] for i in rng.choice(len(fresh), size=self.n_labels, replace=False)]
                else:
                    old = used[category]
                    refill = [
                        old[i] for i in rng.choice(len(old), size=self.n_labels - len(fresh), replace=False)
                    ]
                    picked = list(fresh) + refill
                for label in picked:
                    batch.extend(smart_sample(self._label2index[label], self.n_instances, rng))
                picked_set = set(picked)
                unused[category] = [label for label in fresh if label not in picked_set]
                used[category].extend(label for label in picked if label not in used[category])
                if not unused[category]:
                    del unused[category]
            batches.append(batch)
        return iter(batches)


__all__ = ["CategoryBalanceSampler", "DistinctCategoryBalanceSampler"]
