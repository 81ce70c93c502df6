"""oml_fast's in-batch miners and batch samplers agree with OML 4.0's on seeded random cases.

Miners are compared on their triplets (mapped back to batch indices; features are distinct). Samplers
draw random indices on both sides, so they are compared on length, batch size and batch structure.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
import torch
from deviations import adjusts_for
from oml_agreement import oml_call, triplet_ids
from random_cases import SEEDS, random_batch_labels, seeded


@adjusts_for("hard-miner-anchor")
@pytest.mark.parametrize("seed", SEEDS)
def test_hard_miner(seed: int) -> None:
    """Distinct features: the anchor is never the farthest of its positives on either side."""
    from oml.miners.inbatch_hard_tri import HardTripletsMiner as OmlHardTripletsMiner

    from oml_fast.miners import HardTripletsMiner

    rng = seeded(seed)
    labels = random_batch_labels(rng)
    features = torch.from_numpy(rng.randn(len(labels), int(rng.randint(1, 16))).astype(np.float32))
    theirs = triplet_ids(features, oml_call(OmlHardTripletsMiner().sample, features, labels))
    ours = triplet_ids(features, HardTripletsMiner().sample(features, labels))
    assert ours == theirs


@adjusts_for("hard-miner-anchor")
def test_hard_miner_never_picks_the_anchor_as_its_positive() -> None:
    """The deviation itself: items 0 and 1 are exact duplicates of one label. OML's hardest positive of
    anchor 0 is the anchor itself (distance 0, first index); ours is item 1. Compared on the triplet
    ids of ``_sample`` (OML's interface), as the duplicated rows cannot tell the two apart."""
    from oml.miners.inbatch_hard_tri import HardTripletsMiner as OmlHardTripletsMiner

    from oml_fast.miners import HardTripletsMiner

    features, labels = torch.tensor([[0.0], [0.0], [5.0], [6.0]]), torch.tensor([0, 0, 1, 1])
    oml_anchors, oml_positives, _ = OmlHardTripletsMiner()._sample(features, labels.tolist())
    anchors, positives, _ = HardTripletsMiner()._sample(features, labels)
    assert any(int(a) == int(p) for a, p in zip(oml_anchors, oml_positives))
    assert all(int(a) != int(p) for a, p in zip(anchors, positives))


@pytest.mark.parametrize("seed", SEEDS)
def test_all_miner(seed: int) -> None:
    """The set of all triplets; with max_output_triplets: the count and that every one is valid."""
    from oml.miners.inbatch_all_tri import AllTripletsMiner as OmlAllTripletsMiner

    from oml_fast.miners import AllTripletsMiner

    rng = seeded(seed)
    labels = random_batch_labels(rng)
    features = torch.from_numpy(rng.randn(len(labels), 4).astype(np.float32))
    theirs = sorted(triplet_ids(features, oml_call(OmlAllTripletsMiner().sample, features, labels)))
    ours = sorted(triplet_ids(features, AllTripletsMiner().sample(features, labels)))
    assert ours == theirs
    limit = int(rng.randint(1, len(theirs) + 10))
    theirs_limited = triplet_ids(
        features, oml_call(OmlAllTripletsMiner(max_output_triplets=limit).sample, features, labels)
    )
    ours_limited = triplet_ids(features, AllTripletsMiner(max_output_triplets=limit).sample(features, labels))
    assert len(ours_limited) == len(theirs_limited), f"count with max_output_triplets={limit}"
    assert len(set(ours_limited)) == len(ours_limited), "a repeated triplet"
    assert set(ours_limited) <= set(theirs), "an invalid triplet"


def _random_n(rng: np.random.RandomState) -> Any:
    """n_positive / n_negative of NHardTripletsMiner: an int (top n) or a (lo, hi) range."""
    if rng.rand() < 0.5:
        return int(rng.randint(1, 5))
    lo = int(rng.randint(1, 4))
    return (lo, lo + int(rng.randint(1, 3)))


@pytest.mark.parametrize("seed", SEEDS)
def test_nhard_miner(seed: int) -> None:
    """The multiset of triplets, n as int and as (lo, hi) ranges."""
    from oml.miners.inbatch_nhard_tri import NHardTripletsMiner as OmlNHardTripletsMiner

    from oml_fast.miners import NHardTripletsMiner

    rng = seeded(seed)
    labels = random_batch_labels(rng)
    features = torch.from_numpy(rng.randn(len(labels), int(rng.randint(1, 10))).astype(np.float32))
    n_pos, n_neg = _random_n(rng), _random_n(rng)
    oml_miner = OmlNHardTripletsMiner(n_pos, n_neg)
    theirs = oml_call(oml_miner.sample, features, labels, raises="oml-raises-nhard-range")
    ours = NHardTripletsMiner(n_pos, n_neg).sample(features, labels)
    assert sorted(triplet_ids(features, ours)) == sorted(triplet_ids(features, theirs))


def _balance_problems(
    batches: list[list[int]], labels: np.ndarray, n_labels: int, n_instances: int
) -> list[str]:
    """What breaks BalanceSampler's contract: n_labels x n_instances per batch, no label twice in an
    epoch, no repeated item unless its label is small."""
    problems = []
    seen: set[Any] = set()
    counts = Counter(labels.tolist())
    for batch in batches:
        if len(batch) != n_labels * n_instances:
            problems.append(f"batch of {len(batch)} items")
        per_label = Counter(labels[batch].tolist())
        if len(per_label) != n_labels or any(v != n_instances for v in per_label.values()):
            problems.append(f"labels x counts {dict(per_label)}")
        if seen & set(per_label):
            problems.append("label repeated within the epoch")
        seen |= set(per_label)
        for label in per_label:
            items = [i for i in batch if labels[i] == label]
            if counts[label] >= n_instances and len(set(items)) != len(items):
                problems.append(f"label {label} with {counts[label]} items sampled with repeats")
    return problems


@pytest.mark.parametrize("seed", SEEDS)
def test_balance_sampler(seed: int) -> None:
    from oml.samplers.balance import BalanceSampler as OmlBalanceSampler

    from oml_fast.samplers import BalanceSampler

    rng = seeded(seed)
    n_unique = int(rng.randint(2, 30))
    labels = np.repeat(rng.permutation(1000)[:n_unique], rng.randint(2, 10, n_unique))
    labels = labels[rng.permutation(len(labels))]
    n_labels, n_instances = int(rng.randint(2, n_unique + 1)), int(rng.randint(2, 8))
    theirs = oml_call(OmlBalanceSampler, labels.tolist(), n_labels, n_instances)
    ours = BalanceSampler(labels.tolist(), n_labels, n_instances)
    assert len(ours) == len(theirs)
    assert ours.batch_size == theirs.batch_size
    batches_b, batches_a = list(theirs), list(ours)
    assert len(batches_a) == len(batches_b), "batches per epoch"
    assert _balance_problems(batches_b, labels, n_labels, n_instances) == [], "OML's batches"
    assert _balance_problems(batches_a, labels, n_labels, n_instances) == [], "our batches"


def _category_problems(
    batches: list[list[int]],
    labels: np.ndarray,
    label2category: dict[Any, Any],
    n_categories: int,
    n_labels: int,
    n_instances: int,
    distinct_labels: bool,
) -> list[str]:
    """What breaks the category samplers' contract: categories x labels x instances per batch."""
    problems = []
    for batch in batches:
        if len(batch) != n_categories * n_labels * n_instances:
            problems.append(f"batch of {len(batch)} items")
        per_category = Counter(label2category[labels[i]] for i in batch)
        if len(per_category) != n_categories or any(
            v != n_labels * n_instances for v in per_category.values()
        ):
            problems.append(f"categories x counts {dict(per_category)}")
        per_label = Counter(labels[batch].tolist())
        if any(v % n_instances for v in per_label.values()):
            problems.append(f"label counts not multiples of n_instances: {dict(per_label)}")
        if distinct_labels and (
            any(v != n_instances for v in per_label.values()) or len(per_label) != n_categories * n_labels
        ):
            problems.append(f"labels x counts {dict(per_label)}")
    return problems


CATEGORY_SAMPLERS = ("CategoryBalanceSampler", "DistinctCategoryBalanceSampler")


@pytest.mark.parametrize("sampler", CATEGORY_SAMPLERS)
@pytest.mark.parametrize("seed", SEEDS)
def test_category_samplers(seed: int, sampler: str) -> None:
    from oml.samplers.category_balance import CategoryBalanceSampler as OmlCategoryBalanceSampler
    from oml.samplers.distinct_category_balance import (
        DistinctCategoryBalanceSampler as OmlDistinctCategoryBalanceSampler,
    )

    from oml_fast.samplers import CategoryBalanceSampler, DistinctCategoryBalanceSampler

    rng = seeded(seed)
    n_cat, n_labels = int(rng.randint(1, 5)), int(rng.randint(2, 5))
    label2category: dict[int, int] = {}
    for category in range(n_cat):
        for _ in range(int(rng.randint(n_labels, n_labels + 4))):
            label2category[len(label2category)] = category
    n_unique = len(label2category)
    labels = np.repeat(np.arange(n_unique), rng.randint(2, 7, n_unique))
    labels = labels[rng.permutation(len(labels))]
    n_categories, n_instances = int(rng.randint(1, n_cat + 1)), int(rng.randint(2, 5))
    args = (labels.tolist(), label2category, n_categories, n_labels, n_instances)
    if sampler == "CategoryBalanceSampler":
        kwargs: dict[str, Any] = {
            "resample_labels": bool(rng.rand() < 0.5),
            "weight_categories": bool(rng.rand() < 0.5),
        }
        theirs = oml_call(OmlCategoryBalanceSampler, *args, **kwargs)
        ours: Any = CategoryBalanceSampler(*args, **kwargs)
        distinct_labels = not kwargs["resample_labels"]
    else:
        epoch_size = int(rng.randint(1, 12))
        theirs = oml_call(OmlDistinctCategoryBalanceSampler, *args, epoch_size=epoch_size)
        ours = DistinctCategoryBalanceSampler(*args, epoch_size=epoch_size)
        distinct_labels = True
    assert len(ours) == len(theirs)
    assert ours.batch_size == theirs.batch_size
    batches_b, batches_a = list(theirs), list(ours)
    assert len(batches_a) == len(batches_b), "batches per epoch"
    structure = (labels, label2category, n_categories, n_labels, n_instances, distinct_labels)
    assert _category_problems(batches_b, *structure) == [], "OML's batches"
    assert _category_problems(batches_a, *structure) == [], "our batches"
