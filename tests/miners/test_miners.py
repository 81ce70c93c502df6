"""Miners: properties over many random label sets, OML semantics, errors."""

from __future__ import annotations

import itertools

import pytest
import torch

from oml_fast.miners import (
    AllTripletsMiner,
    HardClusterMiner,
    HardTripletsMiner,
    MinerWithBank,
    NHardTripletsMiner,
    PairsMiner,
    TripletMinerWithMemory,
)
from oml_fast.miners.cross_batch import positive_pairs


def balanced_batch(seed: int, n_labels: int, n_instances: int, dim: int = 8):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_labels).repeat_interleave(n_instances)[
        torch.randperm(n_labels * n_instances, generator=g)
    ]
    return torch.randn(len(labels), dim, generator=g, dtype=torch.float64), labels


def random_valid_batch(seed: int):
    """Random label sets: 2..8 labels with 2..6 items each, shuffled."""
    g = torch.Generator().manual_seed(seed)
    n_labels = int(torch.randint(2, 9, (1,), generator=g))
    counts = torch.randint(2, 7, (n_labels,), generator=g)
    labels = torch.repeat_interleave(torch.arange(n_labels) * 7 + 3, counts)
    labels = labels[torch.randperm(len(labels), generator=g)]
    return torch.randn(len(labels), 6, generator=g, dtype=torch.float64), labels


def brute_force_triplets(labels: torch.Tensor) -> set[tuple[int, int, int]]:
    items = range(len(labels))
    return {
        (a, p, n)
        for a, p, n in itertools.product(items, items, items)
        if a != p and labels[a] == labels[p] and labels[n] != labels[a]
    }


@pytest.mark.parametrize("seed", range(20))
def test_all_triplets_miner_is_exhaustive(seed: int) -> None:
    x, labels = random_valid_batch(seed)
    a, p, n = AllTripletsMiner()._sample_ids(x, labels)
    got = set(zip(a.tolist(), p.tolist(), n.tolist()))
    assert len(got) == len(a) and got == brute_force_triplets(labels)


def test_all_triplets_miner_subsamples_and_lists() -> None:
    x, labels = balanced_batch(0, 4, 3)
    torch.manual_seed(0)
    a, p, n = AllTripletsMiner(max_output_triplets=10)._sample(x, labels=labels.tolist())
    assert all(isinstance(ids, list) for ids in (a, p, n))
    assert len(a) == 10 and set(zip(a, p, n)) <= brute_force_triplets(labels)
    with pytest.raises(ValueError, match="max_output_triplets"):
        AllTripletsMiner(0)


@pytest.mark.parametrize("seed", range(25))
def test_hard_triplets_miner_picks_hardest(seed: int) -> None:
    x, labels = random_valid_batch(seed)
    a, p, n = HardTripletsMiner()._sample_ids(x, labels)
    d = torch.cdist(x, x)
    same = labels[:, None] == labels[None, :]
    assert a.tolist() == list(range(len(labels)))
    for i in range(len(labels)):
        others = same[i].clone()
        others[i] = False
        assert p[i] != i and labels[p[i]] == labels[i] and labels[n[i]] != labels[i]
        assert d[i, p[i]] == d[i][others].max()
        assert d[i, n[i]] == d[i][~same[i]].min()


def test_hard_triplets_miner_sample_returns_features_with_grad() -> None:
    x, labels = balanced_batch(1, 3, 2)
    x.requires_grad_(True)
    anchor, positive, negative = HardTripletsMiner().sample(x, labels)
    assert anchor.shape == positive.shape == negative.shape == x.shape
    (anchor.sum() + positive.sum() + negative.sum()).backward()
    assert x.grad is not None


@pytest.mark.parametrize("bad", [[0, 0, 0, 0], [0, 0, 1], [0, 1, 2, 3]])
@pytest.mark.parametrize(
    "miner", [HardTripletsMiner(), NHardTripletsMiner(2, 2), AllTripletsMiner(), PairsMiner()]
)
def test_miners_reject_bad_batches(miner, bad) -> None:
    x = torch.randn(len(bad), 4)
    with pytest.raises(ValueError, match="label"):
        miner.sample(x, torch.tensor(bad))


def test_miners_reject_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="features"):
        HardTripletsMiner().sample(torch.randn(5, 4), torch.tensor([0, 0, 1, 1]))


@pytest.mark.parametrize("seed", range(15))
@pytest.mark.parametrize("n_pos, n_neg", [(1, 1), (2, 3), ((2, 3), (1, 4)), ((1, 1), 2)])
def test_nhard_miner_matches_definition(seed: int, n_pos, n_neg) -> None:
    x, labels = random_valid_batch(seed)
    miner = NHardTripletsMiner(n_pos, n_neg)
    a, p, n = miner._sample_ids(x, labels)
    d = torch.cdist(x, x)
    expected = []
    for i in range(len(labels)):
        cand_p = [j for j in range(len(labels)) if j != i and labels[j] == labels[i]]
        cand_n = [j for j in range(len(labels)) if labels[j] != labels[i]]
        hard_p = sorted(cand_p, key=lambda j: (-float(d[i, j]), j))[miner.positive_slice]
        hard_n = sorted(cand_n, key=lambda j: (float(d[i, j]), j))[miner.negative_slice]
        expected += [(i, pp, nn) for pp in hard_p for nn in hard_n]
    assert list(zip(a.tolist(), p.tolist(), n.tolist())) == expected


def test_nhard_one_one_equals_hard_miner() -> None:
    x, labels = random_valid_batch(3)
    got = NHardTripletsMiner(1, 1)._sample(x, labels=labels.tolist())
    want = HardTripletsMiner()._sample(x, labels=labels.tolist())
    assert got == want and all(isinstance(ids, list) for ids in got)


def test_nhard_ignore_anchor_mask() -> None:
    x, labels = balanced_batch(2, 3, 4)
    ignore = torch.zeros(len(labels), dtype=torch.bool)
    ignore[6:] = True
    a, p, n = NHardTripletsMiner(2, 2)._sample_ids(x, labels, ignore_anchor_mask=ignore)
    assert set(a.tolist()) == set(range(6)) and len(a) == 6 * 4


@pytest.mark.parametrize("arg", [0, -1, (0, 2), (3, 2), (2,), 1.5, "2", True])
def test_nhard_rejects_bad_ranges(arg) -> None:
    with pytest.raises((ValueError, TypeError), match="n_positive"):
        NHardTripletsMiner(n_positive=arg)


def test_hard_cluster_miner() -> None:
    x, labels = balanced_batch(4, 4, 3)
    anchors, positives, negatives = HardClusterMiner().sample(x, labels)
    assert anchors.shape == (4, x.shape[1])
    for k, label in enumerate(sorted(set(labels.tolist()))):
        members = x[labels == label]
        torch.testing.assert_close(anchors[k], members.mean(0))
        far = ((members - members.mean(0)) ** 2).sum(1).argmax()
        torch.testing.assert_close(positives[k], members[far])
        dists = torch.cdist(anchors[k : k + 1], anchors)[0]
        dists[k] = float("inf")
        torch.testing.assert_close(negatives[k], anchors[dists.argmin()])
    with pytest.raises(ValueError, match="same number"):
        HardClusterMiner().sample(torch.randn(5, 2), [0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="2 labels"):
        HardClusterMiner().sample(torch.randn(3, 2), [0, 0, 0])


def test_pairs_miner() -> None:
    x, labels = balanced_batch(5, 3, 3)
    for hard in (True, False):
        a, b, is_negative = PairsMiner(hard_mining=hard).sample(x, labels)
        assert (a < b).all()
        assert torch.equal(labels[a] != labels[b], is_negative)
        assert len(set(zip(a.tolist(), b.tolist()))) == len(a)
    a, b, is_negative = PairsMiner(hard_mining=False).sample(x, labels)
    assert int((~is_negative).sum()) == 3 * 3 and int(is_negative.sum()) == 9 * 8 // 2 - 9


def test_positive_pairs_never_loops_without_pairs() -> None:
    assert positive_pairs(torch.arange(10), n=5).shape == (0, 2)
    pairs = positive_pairs(torch.tensor([1, 1, 2]), n=7)
    assert pairs.shape == (7, 2) and set(map(tuple, pairs.tolist())) <= {(0, 1), (1, 0)}


@pytest.mark.parametrize("bank_size_in_batches", [1, 2, 3])
@pytest.mark.parametrize("tri_expand_k", [1, 3])
def test_triplet_miner_with_memory(bank_size_in_batches: int, tri_expand_k: int) -> None:
    torch.manual_seed(0)
    miner = TripletMinerWithMemory(bank_size_in_batches, tri_expand_k)
    for step in range(4):  # more steps than bank slots: the bank wraps around
        x, labels = balanced_batch(step, 3, 2)
        x.requires_grad_(True)
        a, p, n, is_orig = miner.sample(x, labels)
        n_batch = len(brute_force_triplets(labels))
        assert int(is_orig.sum()) == n_batch and is_orig[-n_batch:].all()
        assert len(a) <= tri_expand_k * n_batch
        if tri_expand_k == 1:
            assert len(a) == n_batch
        else:
            assert len(a) > n_batch
        (a.sum() + p.sum() + n.sum()).backward()
    assert not miner.bank_features.requires_grad
    with pytest.raises(ValueError, match="size of the first"):
        miner.sample(torch.randn(8, 8, dtype=torch.float64), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))


def test_triplet_miner_with_memory_bank_triplets_have_distinct_labels() -> None:
    torch.manual_seed(1)
    miner = TripletMinerWithMemory(bank_size_in_batches=2, tri_expand_k=5)
    for step in range(3):
        x, labels = balanced_batch(step, 4, 2, dim=3)
        x = x + labels[:, None] * 100.0  # features encode the label, so triplets can be checked
        a, p, n, _ = miner.sample(x, labels)
        if step >= 2:  # the bank holds real batches now
            lab = lambda f: torch.round(f[:, 0] / 100.0)  # noqa: E731
            assert torch.equal(lab(a), lab(p)) and (lab(a) != lab(n)).all()


def test_miner_with_bank() -> None:
    miner = MinerWithBank(bank_size_in_batches=2, miner=NHardTripletsMiner(2, 2), need_logs=True)
    sizes = []
    for step in range(4):
        x, labels = balanced_batch(step, 3, 2)
        x.requires_grad_(True)
        a, p, n = miner.sample(x, labels)
        sizes.append(len(a))
        (a.sum() + p.sum() + n.sum()).backward()
    assert sizes[0] == 6 * 1 * 2 and sizes[-1] == 6 * 2 * 2
    logs = miner.last_logs
    assert logs["positives_from_bank"] + logs["positives_from_batch"] == 2
    assert logs["negatives_from_bank"] + logs["negatives_from_batch"] == 2
    with pytest.raises(TypeError, match="NHardTripletsMiner"):
        MinerWithBank(1, HardTripletsMiner())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bank_size_in_batches"):
        MinerWithBank(0, NHardTripletsMiner())
