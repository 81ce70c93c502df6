"""Losses: references, stability, gradients, reductions, logs, errors."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from oml_fast.losses import (
    ArcFaceLoss,
    ArcFaceLossWithMLP,
    ContrastiveLoss,
    SurrogatePrecision,
    TripletLoss,
    TripletLossPlain,
    TripletLossWithMiner,
    label_smoothing,
    surrogate_precision,
)
from oml_fast.miners import AllTripletsMiner, HardTripletsMiner, PairsMiner, TripletMinerWithMemory


def triplets(seed: int, n: int = 20, dim: int = 8, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, dim, generator=g, dtype=dtype) for _ in range(3)]


@pytest.mark.parametrize("margin", [0.1, 0.5, 2.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_triplet_loss_equals_torch_triplet_margin_loss(margin: float, reduction: str) -> None:
    a, p, n = triplets(0)
    got = TripletLoss(margin=margin, reduction=reduction)(a, p, n)
    # torch adds eps=1e-6 inside the norm; the difference is far below the tolerance.
    want = torch.nn.TripletMarginLoss(margin=margin, p=2, reduction=reduction)(a, p, n)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_soft_triplet_loss_of_identical_vectors_is_log2_with_finite_grad() -> None:
    x = torch.ones(4, 3, requires_grad=True)
    loss = TripletLoss(margin=None)(x, x, x)
    assert loss.item() == pytest.approx(math.log(2))
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_soft_triplet_loss_is_stable_for_large_gaps() -> None:
    a = torch.zeros(2, 1)
    p = torch.tensor([[200.0], [1.0]], requires_grad=True)
    n = torch.tensor([[0.0], [300.0]])
    loss = TripletLoss(margin=None, reduction="none")(a, p, n)
    assert torch.isfinite(loss).all()
    assert loss[0].item() == pytest.approx(200.0) and loss[1].item() == pytest.approx(0.0, abs=1e-30)
    loss.sum().backward()
    assert torch.isfinite(p.grad).all()


def test_soft_triplet_loss_equals_log1p_exp_in_float64() -> None:
    a, p, n = triplets(1)
    got = TripletLoss(margin=None, reduction="none")(a, p, n)
    want = torch.log1p(torch.exp((a - p).norm(dim=1) - (a - n).norm(dim=1)))
    torch.testing.assert_close(got, want)


def test_triplet_loss_gradcheck() -> None:
    a, p, n = (t.requires_grad_(True) for t in triplets(2, n=5, dim=3))
    assert torch.autograd.gradcheck(lambda *t: TripletLoss(margin=0.3)(*t), (a, p, n))
    assert torch.autograd.gradcheck(lambda *t: TripletLoss(margin=None)(*t), (a, p, n))


def test_triplet_loss_logs_and_errors() -> None:
    a, p, n = triplets(3)
    criterion = TripletLoss(margin=0.2, need_logs=True)
    criterion(a, p, n)
    assert set(criterion.last_logs) == {"active_tri", "pos_dist", "neg_dist"}
    assert all(isinstance(v, float) for v in criterion.last_logs.values())
    with pytest.raises(ValueError, match="margin"):
        TripletLoss(margin=0.0)
    with pytest.raises(ValueError, match="reduction"):
        TripletLoss(margin=0.1, reduction="max")
    with pytest.raises(ValueError, match="shape"):
        criterion(a, p, n[:3])


def test_triplet_loss_plain() -> None:
    a, p, n = triplets(4, n=6)
    stacked = torch.stack([a, p, n], dim=1).reshape(18, -1)
    torch.testing.assert_close(TripletLossPlain(margin=0.5)(stacked), TripletLoss(margin=0.5)(a, p, n))
    with pytest.raises(ValueError, match="divisible by 3"):
        TripletLossPlain(margin=0.5)(stacked[:4])


@pytest.mark.parametrize("margin", [None, 0.3])
def test_triplet_loss_with_hard_miner_equals_dense_batch_hard(margin) -> None:
    g = torch.Generator().manual_seed(5)
    labels = torch.arange(8).repeat_interleave(4)
    x = torch.randn(32, 16, generator=g, dtype=torch.float64, requires_grad=True)
    got = TripletLossWithMiner(margin=margin, miner=HardTripletsMiner())(x, labels)
    d = torch.cdist(x, x)
    same = labels[:, None] == labels[None, :]
    d_ap = d.masked_fill(~same, -1).amax(1)
    d_an = d.masked_fill(same, float("inf")).amin(1)
    want = (
        torch.nn.functional.softplus(d_ap - d_an) if margin is None else torch.relu(margin + d_ap - d_an)
    ).mean()
    torch.testing.assert_close(got, want)
    grad_got = torch.autograd.grad(got, x)[0]
    grad_want = torch.autograd.grad(want, x)[0]
    torch.testing.assert_close(grad_got, grad_want)


def test_triplet_loss_with_miner_reductions_and_logs() -> None:
    labels = torch.arange(4).repeat_interleave(3)
    x = torch.randn(12, 5)
    for reduction, shape in [("mean", ()), ("sum", ()), ("none", (4 * 3 * 2 * 9,))]:
        criterion = TripletLossWithMiner(
            margin=0.2, reduction=reduction, need_logs=True
        )  # default: all triplets
        assert isinstance(criterion.miner, AllTripletsMiner)
        assert criterion(x, labels.tolist()).shape == shape
        assert isinstance(criterion.last_logs["active_tri"], float)


def test_triplet_loss_with_memory_miner_logs() -> None:
    torch.manual_seed(0)
    criterion = TripletLossWithMiner(margin=0.2, miner=TripletMinerWithMemory(2, 3), need_logs=True)
    for _step in range(3):
        x = torch.randn(8, 4, requires_grad=True)
        loss = criterion(x, torch.arange(4).repeat_interleave(2))
        loss.backward()
    assert loss.dim() == 0
    for key in ("orig_active_tri", "bank_active_tri", "pos_dist_orig", "neg_dist_bank", "active_tri"):
        assert isinstance(criterion.last_logs[key], float)


def test_contrastive_loss() -> None:
    x = torch.tensor([[0.0], [1.0], [3.0], [3.5]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    criterion = ContrastiveLoss(
        pos_margin=0.25, neg_margin=2.6, miner=PairsMiner(hard_mining=False), reduction="none"
    )
    loss = criterion(x, labels)
    # pairs: (0,1) d=1, (2,3) d=.5 | negatives (0,2)=3, (0,3)=3.5, (1,2)=2, (1,3)=2.5
    torch.testing.assert_close(loss, torch.tensor([0.75, 0.25, 0.0, 0.0, 0.6, 0.1]))
    with pytest.raises(ValueError, match="pos_margin"):
        ContrastiveLoss(pos_margin=1.0, neg_margin=0.5)


def test_label_smoothing() -> None:
    y = torch.tensor([0, 3])
    flat = label_smoothing(y, 4, 0.2)
    torch.testing.assert_close(flat.sum(1), torch.ones(2))
    assert flat[0, 0].item() == pytest.approx(0.85)
    cat = label_smoothing(y, 4, 0.2, categories=torch.tensor([0, 0, 1, 1]))
    torch.testing.assert_close(cat, torch.tensor([[0.9, 0.1, 0.0, 0.0], [0.0, 0.0, 0.1, 0.9]]))


def test_arcface_matches_formula_and_has_finite_grads_at_cos_one() -> None:
    torch.manual_seed(0)
    criterion = ArcFaceLoss(in_features=6, num_classes=4, m=0.3, s=10)
    x = torch.randn(5, 6)
    y = torch.tensor([0, 1, 2, 3, 0])
    cos = torch.nn.functional.normalize(x) @ torch.nn.functional.normalize(criterion.weight).T
    theta = torch.acos(cos.clamp(-1, 1))
    target = torch.where(cos > -math.cos(0.3), torch.cos(theta + 0.3), cos - math.sin(0.3) * 0.3)
    logits = torch.where(torch.nn.functional.one_hot(y, 4).bool(), target, cos) * 10
    torch.testing.assert_close(
        criterion(x, y), torch.nn.functional.cross_entropy(logits, y), rtol=1e-4, atol=1e-4
    )
    assert 0.0 <= criterion.last_logs["accuracy"] <= 1.0
    # An embedding exactly along a class weight: OML's sqrt(1 - cos^2) gives NaN gradients here.
    x_exact = criterion.weight.detach()[:2].clone().requires_grad_(True)
    criterion(x_exact, torch.tensor([0, 1])).backward()
    assert torch.isfinite(x_exact.grad).all() and torch.isfinite(criterion.weight.grad).all()


def test_arcface_label_smoothing_by_category_and_errors() -> None:
    criterion = ArcFaceLoss(8, 4, smoothing_epsilon=0.2, label2category={0: "a", 1: "a", 2: "b", 3: "b"})
    loss = criterion(torch.randn(3, 8), torch.tensor([0, 2, 3]))
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="smoothing_epsilon"):
        ArcFaceLoss(8, 4, smoothing_epsilon=1.0)
    with pytest.raises(ValueError, match="label2category"):
        ArcFaceLoss(8, 4, smoothing_epsilon=0.1, label2category={0: 0})
    with pytest.raises(ValueError, match="labels"):
        criterion(torch.randn(2, 8), torch.tensor([0, 4]))
    mlp = ArcFaceLossWithMLP(8, 4, mlp_features=[16, 6], reduction="none")
    assert mlp(torch.randn(3, 8), torch.tensor([0, 1, 2])).shape == (3,)
    assert "accuracy" in mlp.last_logs


def naive_surrogate_precision(distances, mask_gt, k, t1, t2):
    # OML's O(B^3)-memory formula, verbatim in meaning.
    diff = distances - distances.unsqueeze(0).permute(2, 1, 0)
    rank = torch.sigmoid(diff / t2).sum(dim=0)
    return (
        (torch.sigmoid((k - rank) / t1) * mask_gt).sum(dim=1) / torch.clip(mask_gt.sum(dim=1), max=k)
    ).mean()


def test_surrogate_precision_matches_naive_formula_and_gradcheck(monkeypatch) -> None:
    import sys

    module = sys.modules["oml_fast.functional.losses"]
    monkeypatch.setattr(module, "_CHUNK_ELEMENTS", 50)  # force several chunks
    g = torch.Generator().manual_seed(0)
    d = torch.rand(7, 7, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(7, 7, generator=g) > 0.5
    got = surrogate_precision(d, mask, k=3, t1=0.5, t2=0.1)
    want = naive_surrogate_precision(d, mask.double(), 3, 0.5, 0.1)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.autograd.grad(got, d)[0], torch.autograd.grad(want, d)[0])
    assert torch.autograd.gradcheck(lambda t: surrogate_precision(t, mask, 3, 0.5, 0.1), (d,))


def test_surrogate_precision_loss_and_batch_512() -> None:
    labels = torch.arange(128).repeat_interleave(4)
    x = torch.randn(512, 32, requires_grad=True)
    loss = SurrogatePrecision(k=3)(x, labels)  # the naive form would need 512^3 floats (0.5 GB) per tensor
    loss.backward()
    assert 0 <= loss.item() <= 1 and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="k"):
        SurrogatePrecision(k=0)


def test_arcface_label2category_without_smoothing_is_ignored_like_oml():
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="ignored"):
        with_mapping = ArcFaceLoss(4, 3, label2category={0: "a", 1: "b", 2: "a"})
    plain = ArcFaceLoss(4, 3)
    plain.load_state_dict(with_mapping.state_dict())
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    torch.testing.assert_close(with_mapping(x, y), plain(x, y))


# ----- the NaN policy (issue 13, docs/hostile_inputs.md): a batch with NaN / inf features gives NaN -----


@functools.cache
def _digits_rows() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = torch.cat([torch.nonzero(torch.as_tensor(digits.target) == c).flatten()[:4] for c in range(4)])
    features = torch.as_tensor(digits.data[rows.numpy()], dtype=torch.float32) / 16
    return features, torch.as_tensor(digits.target[rows.numpy()])


def _digits_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """16 sklearn digits, 4 of each of the classes 0-3 (features a leaf that requires grad)."""
    features, labels = _digits_rows()
    return features.clone().requires_grad_(), labels


def _miner_criteria() -> list:
    from oml_fast.miners import HardClusterMiner, NHardTripletsMiner

    return [
        TripletLossWithMiner(0.1, HardTripletsMiner()),
        TripletLossWithMiner(0.1, NHardTripletsMiner(2, 2)),
        TripletLossWithMiner(0.1, NHardTripletsMiner((4, 4), 1)),  # no anchor has a 4th positive
        TripletLossWithMiner(None, AllTripletsMiner(), reduction="sum"),
        TripletLossWithMiner(0.1, HardClusterMiner()),
        ContrastiveLoss(),
        ContrastiveLoss(miner=PairsMiner(hard_mining=False)),
    ]


@pytest.mark.parametrize(
    ("bad", "position"), [(float("nan"), "one-entry"), (float("inf"), "one-entry"), (float("nan"), "all")]
)
@pytest.mark.parametrize("index", range(7))
def test_non_finite_features_give_a_nan_loss(bad, position, index):
    criterion = _miner_criteria()[index]
    features, labels = _digits_batch()
    poisoned = features.clone()
    if position == "all":
        poisoned = features * 0 + bad  # still in the graph
    else:
        poisoned[5, 3] = bad
    loss = criterion(poisoned, labels)
    assert loss.shape == () and torch.isnan(loss), loss
    loss.backward()  # the graph still runs (the gradient is not meaningful)
    assert torch.isfinite(criterion(features, labels))


def test_non_finite_features_reduction_none_marks_the_triplets_that_hold_them():
    features, labels = _digits_batch()
    poisoned = features.detach().clone()
    poisoned[5] = float("nan")
    loss = TripletLossWithMiner(0.1, HardTripletsMiner(), reduction="none")(poisoned, labels)
    assert loss.shape == (16,) and torch.isnan(loss[5])  # the row is anchor 5 of batch-hard
    a, p, n = HardTripletsMiner()._sample_ids(torch.nan_to_num(poisoned, nan=0.0), labels)
    holds_row = (a == 5) | (p == 5) | (n == 5)
    assert torch.equal(torch.isnan(loss), holds_row)
