"""Batch samplers: structure, no repeats within an epoch, lengths, seeding, errors, DataLoader use."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from oml_fast.samplers import BalanceSampler, CategoryBalanceSampler, DistinctCategoryBalanceSampler


def random_labels(seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    n_labels = int(rng.integers(4, 30))
    counts = rng.integers(2, 12, size=n_labels)
    labels = np.repeat(np.arange(n_labels) * 3 + 1, counts)
    rng.shuffle(labels)
    return labels.tolist()


@pytest.mark.parametrize("seed", range(25))
def test_balance_sampler_properties(seed: int) -> None:
    labels = random_labels(seed)
    n_unique = len(set(labels))
    rng = np.random.default_rng(seed + 100)
    n_labels, n_instances = int(rng.integers(2, n_unique + 1)), int(rng.integers(2, 8))
    sampler = BalanceSampler(labels, n_labels=n_labels, n_instances=n_instances, seed=seed)
    assert len(sampler) == n_unique // n_labels and sampler.batch_size == n_labels * n_instances
    counts = Counter(labels)
    for _epoch in range(2):
        batches = list(sampler)
        assert len(batches) == len(sampler)
        seen_labels: list[int] = []
        for batch in batches:
            assert len(batch) == n_labels * n_instances
            batch_labels = Counter(labels[i] for i in batch)
            assert len(batch_labels) == n_labels and set(batch_labels.values()) == {n_instances}
            for label in batch_labels:
                ids = [i for i in batch if labels[i] == label]
                # all distinct when the label has enough items; otherwise every item appears
                if counts[label] >= n_instances:
                    assert len(set(ids)) == n_instances
                else:
                    assert len(set(ids)) == counts[label]
            seen_labels.extend(batch_labels)
        assert len(seen_labels) == len(set(seen_labels))  # labels never repeat within an epoch


def test_balance_sampler_seeding() -> None:
    labels = random_labels(0)
    a = BalanceSampler(labels, 3, 2, seed=7)
    b = BalanceSampler(labels, 3, 2, seed=7)
    epoch_a1, epoch_a2 = list(a), list(a)
    assert epoch_a1 == list(b) and epoch_a2 == list(b)
    assert epoch_a1 != epoch_a2  # consecutive epochs differ
    np.random.seed(3)
    first = list(BalanceSampler(labels, 3, 2))
    np.random.seed(3)
    assert first == list(BalanceSampler(labels, 3, 2))  # seed=None follows numpy's global seed


def test_balance_sampler_with_dataloader() -> None:
    labels = random_labels(1)
    dataset = torch.utils.data.TensorDataset(torch.arange(len(labels)), torch.tensor(labels))
    sampler = BalanceSampler(labels, n_labels=2, n_instances=3, seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler)
    batches = list(loader)
    assert len(batches) == len(sampler) and all(len(b[0]) == 6 for b in batches)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_labels": 1, "n_instances": 2}, ValueError, "n_labels"),
        ({"n_labels": 100, "n_instances": 2}, ValueError, "n_labels"),
        ({"n_labels": 2, "n_instances": 1}, ValueError, "n_instances"),
        ({"n_labels": 2.0, "n_instances": 2}, TypeError, "n_labels"),
    ],
)
def test_balance_sampler_errors(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        BalanceSampler([0, 0, 1, 1, 2, 2], **kwargs)


def test_balance_sampler_rejects_singletons() -> None:
    with pytest.raises(ValueError, match="at least 2 items"):
        BalanceSampler([0, 0, 1, 2, 2], 2, 2)


def categories_for(labels: list[int], n_categories: int, seed: int) -> dict[int, int]:
    rng = np.random.default_rng(seed)
    unique = sorted(set(labels))
    cats = {label: i % n_categories for i, label in enumerate(rng.permutation(unique).tolist())}
    return cats


@pytest.mark.parametrize("seed", range(15))
def test_category_balance_sampler_properties(seed: int) -> None:
    labels = random_labels(seed)
    label2category = categories_for(labels, 3, seed)
    sampler = CategoryBalanceSampler(
        labels, label2category, n_categories=2, n_labels=2, n_instances=3, seed=seed
    )
    assert len(sampler) == math.ceil(len(set(labels)) / 2) and sampler.batch_size == 12
    for batch in sampler:
        assert len(batch) == 12
        cats = Counter(label2category[labels[i]] for i in batch)
        assert len(cats) == 2 and set(cats.values()) == {6}


def test_category_balance_sampler_resample_labels_and_errors() -> None:
    labels = [0, 0, 1, 1, 2, 2]
    label2category = {0: "a", 1: "a", 2: "b"}
    with pytest.raises(ValueError, match="resample_labels"):
        CategoryBalanceSampler(labels, label2category, 1, 2, 2)
    sampler = CategoryBalanceSampler(labels, label2category, 1, 2, 2, resample_labels=True, seed=0)
    assert all(len(batch) == 4 for batch in sampler)
    with pytest.raises(ValueError, match="category"):
        CategoryBalanceSampler(labels, {0: "a", 1: "a"}, 1, 2, 2)
    with pytest.raises(ValueError, match="n_categories"):
        CategoryBalanceSampler(labels, label2category, 3, 2, 2, resample_labels=True)


@pytest.mark.parametrize("seed", range(15))
def test_distinct_category_balance_sampler_properties(seed: int) -> None:
    labels = random_labels(seed)
    label2category = categories_for(labels, 2, seed)
    n_per_cat = min(Counter(label2category.values()).values())
    n_labels = min(2, n_per_cat)
    if n_labels < 2:
        pytest.skip("category too small for this label set")
    sampler = DistinctCategoryBalanceSampler(labels, label2category, 1, n_labels, 2, epoch_size=7, seed=seed)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 7
    used: dict[int, set[int]] = {}
    for batch in batches:
        assert len(batch) == n_labels * 2
        batch_labels = {labels[i] for i in batch}
        (category,) = {label2category[label] for label in batch_labels}
        assert len(batch_labels) == n_labels
        fresh = batch_labels - used.get(category, set())
        all_labels = {label for label, c in label2category.items() if c == category}
        remaining = all_labels - used.get(category, set())
        # fresh labels are taken first; old ones only top up an almost exhausted category
        assert len(fresh) == min(n_labels, len(remaining)) or len(remaining) == 0
        used.setdefault(category, set()).update(batch_labels)
        if used[category] == all_labels:
            used[category] = set()


def test_distinct_category_balance_sampler_errors() -> None:
    with pytest.raises(ValueError, match="epoch_size"):
        DistinctCategoryBalanceSampler([0, 0, 1, 1], {0: 0, 1: 0}, 1, 2, 2, epoch_size=0)
