"""OML's miner and loss contracts: ``_sample`` on lists of ints, custom miners, logs, error classes."""

from __future__ import annotations

import functools

import pytest
import torch
from sklearn.datasets import load_digits

from oml_fast.errors import InvalidInputError
from oml_fast.interfaces.criterions import ITripletLossWithMiner
from oml_fast.interfaces.miners import ITripletsMinerInBatch
from oml_fast.losses import TripletLoss, TripletLossWithMiner
from oml_fast.miners import (
    AllTripletsMiner,
    HardTripletsMiner,
    MinerWithBank,
    NHardTripletsMiner,
    TripletMinerWithMemory,
    get_available_triplets,
)


@functools.cache
def digits_batch(n_labels: int = 4, n_instances: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_instances`` images of each of the first ``n_labels`` digits, pixels as features."""
    data = load_digits()
    x, y = torch.tensor(data.data, dtype=torch.float32) / 16, torch.tensor(data.target)
    ids = torch.cat([torch.nonzero(y == label)[:n_instances, 0] for label in range(n_labels)])
    return x[ids], y[ids]


class FirstNegativeMiner(ITripletsMinerInBatch):
    """Written to OML's contract: labels arrive as a list of ints, indices go out as lists."""

    def __init__(self) -> None:
        self.seen_labels: object = None

    def _sample(self, features: torch.Tensor, labels: list[int]) -> tuple[list[int], list[int], list[int]]:
        self.seen_labels = labels
        ids_a, ids_p, ids_n = [], [], []
        for a, label in enumerate(labels):
            p = next(i for i, other in enumerate(labels) if other == label and i != a)
            n = next(i for i, other in enumerate(labels) if other != label)
            ids_a.append(a), ids_p.append(p), ids_n.append(n)
        return ids_a, ids_p, ids_n


@pytest.mark.parametrize("miner", [HardTripletsMiner(), NHardTripletsMiner(2, (1, 3)), AllTripletsMiner()])
def test_sample_of_in_batch_miners_takes_and_returns_lists(miner) -> None:
    x, y = digits_batch()
    ids = miner._sample(x, labels=y.tolist())
    assert all(isinstance(part, list) and all(isinstance(i, int) for i in part) for part in ids)
    anchors, positives, negatives = miner.sample(x, y)
    assert (
        torch.equal(anchors, x[ids[0]])
        and torch.equal(positives, x[ids[1]])
        and torch.equal(negatives, x[ids[2]])
    )


def test_get_available_triplets_is_every_triplet() -> None:
    labels = [0, 0, 1, 1, 1]
    ids_a, ids_p, ids_n = get_available_triplets(labels)
    expected = {
        (a, p, n)
        for a in range(5)
        for p in range(5)
        for n in range(5)
        if a != p and labels[a] == labels[p] and labels[n] != labels[a]
    }
    assert set(zip(ids_a, ids_p, ids_n)) == expected and len(ids_a) == len(expected)


def test_custom_miner_written_to_oml_contract_trains() -> None:
    x, y = digits_batch()
    miner = FirstNegativeMiner()
    anchors, positives, negatives = miner.sample(x, y)
    assert miner.seen_labels == y.tolist() and len(anchors) == len(x)
    features = x.clone().requires_grad_(True)
    loss = TripletLossWithMiner(margin=0.5, miner=miner)(features, y)
    loss.backward()
    assert features.grad is not None and torch.isfinite(loss)


def test_subclass_overriding_sample_the_oml_way_is_used() -> None:
    """A user subclass of one of our miners that overrides ``_sample`` gets its own ``_sample`` called."""

    class ReversedHard(HardTripletsMiner):
        def _sample(self, features, labels):
            ids_a, ids_p, ids_n = super()._sample(features, labels)
            return ids_a[::-1], ids_p[::-1], ids_n[::-1]

    x, y = digits_batch()
    anchors, _, _ = ReversedHard().sample(x, y)
    assert torch.equal(anchors, x.flip(0))


def test_nhard_miner_with_huge_n_does_not_allocate_the_cube() -> None:
    x, y = digits_batch(n_labels=3, n_instances=4)
    huge = NHardTripletsMiner(n_positive=10**6, n_negative=10**6)
    got = huge._sample(x, labels=y.tolist())
    assert sorted(zip(*got)) == sorted(zip(*AllTripletsMiner()._sample(labels=y.tolist())))


def test_triplet_loss_with_miner_merges_the_miner_logs() -> None:
    x, y = digits_batch()
    miner = MinerWithBank(bank_size_in_batches=1, miner=NHardTripletsMiner(2, 2), need_logs=True)
    criterion = TripletLossWithMiner(margin=0.2, miner=miner, need_logs=True)
    assert isinstance(criterion, ITripletLossWithMiner) and criterion.criterion_name == "triplet"
    criterion(x, y)
    criterion(x, y)  # the bank is full now: the miner reports bank items
    assert {"positives_from_bank", "negatives_from_bank", "active_tri"} <= set(criterion.last_logs)
    assert criterion.last_logs["positives_from_bank"] > 0


@pytest.mark.parametrize(
    "call",
    [
        lambda: HardTripletsMiner().sample(torch.randn(3, 2), torch.tensor([0, 0, 1])),
        lambda: NHardTripletsMiner(n_positive=(3, 2)),
        lambda: TripletLoss(margin=-1.0),
        lambda: TripletLossWithMiner(margin=0.1, reduction="avg"),
        lambda: FirstNegativeMiner().sample(torch.randn(4, 2), [0, 1, 2, 3]),
    ],
    ids=["one-item-label", "nhard-range", "margin", "reduction", "custom-miner-labels"],
)
def test_where_oml_asserts_we_raise_value_and_assertion_errors(call) -> None:
    with pytest.raises(InvalidInputError) as info:
        call()
    assert isinstance(info.value, ValueError) and isinstance(info.value, AssertionError)


def test_memory_miner_helpers_of_oml():
    miner = TripletMinerWithMemory(bank_size_in_batches=1, tri_expand_k=2)
    pairs = miner.get_pos_pairs({7: torch.tensor([4, 9]), 8: torch.tensor([1]), 5: torch.tensor([0, 2, 3])})
    assert sorted(map(tuple, pairs.tolist())) == sorted(
        [(4, 9), (9, 4), (0, 2), (2, 0), (0, 3), (3, 0), (2, 3), (3, 2)]
    )
    assert len(miner.get_pos_pairs({1: torch.tensor([0, 1])}, n=5)) == 5
    assert miner.get_pos_pairs({1: torch.tensor([0]), 2: torch.tensor([1])}, n=3).shape == (0, 2)
    a, p, n = miner.take_tri_by_mask(
        torch.arange(3), torch.arange(3) + 3, torch.arange(3) + 6, torch.tensor([True, False, True])
    )
    assert (a.tolist(), p.tolist(), n.tolist()) == ([0, 2], [3, 5], [6, 8])
