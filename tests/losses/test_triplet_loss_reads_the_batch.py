"""TripletLossWithMiner reads in-batch triplets straight from the batch (``triplet_distances``): the same
loss and gradient as gathering the triplets and calling ``TripletLoss``, for every in-batch miner."""

from __future__ import annotations

import pytest
import torch

from oml_fast.losses import TripletLoss, TripletLossWithMiner
from oml_fast.losses._common import triplet_distances
from oml_fast.miners import AllTripletsMiner, HardTripletsMiner, NHardTripletsMiner


def gathered_loss(
    criterion: TripletLossWithMiner, features: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    anchor, positive, negative = criterion.miner.sample(features=features, labels=labels)
    return TripletLoss(margin=criterion.tri_loss.margin, reduction=criterion.reduction)(
        anchor, positive, negative
    )


@pytest.mark.parametrize(
    "miner", [HardTripletsMiner(), AllTripletsMiner(), NHardTripletsMiner(n_positive=2, n_negative=3)]
)
@pytest.mark.parametrize("margin", [0.2, None])
def test_same_loss_and_gradient_as_gathered_triplets(miner, margin) -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(24) % 6
    base = torch.randn(24, 16, generator=g, dtype=torch.float64)
    base[5] = base[11]  # a zero-distance pair: gradient 0, not NaN
    criterion = TripletLossWithMiner(margin=margin, miner=miner, need_logs=True)
    x1, x2 = base.clone().requires_grad_(), base.clone().requires_grad_()
    fused = criterion(x1, labels)
    logs = dict(criterion.last_logs)
    reference = gathered_loss(criterion, x2, labels)
    fused.backward()
    reference.backward()
    torch.testing.assert_close(fused, reference, rtol=1e-12, atol=0)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-12, atol=1e-15)
    assert torch.isfinite(x1.grad).all()
    assert set(logs) >= {"active_tri", "pos_dist", "neg_dist"}


def test_gradcheck_with_and_without_anchor_ids() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 5, generator=g, dtype=torch.float64, requires_grad=True)
    ids = torch.randint(0, 12, (3, 20), generator=g)
    assert torch.autograd.gradcheck(lambda f: triplet_distances(f, ids[0], ids[1], ids[2]), (x,))
    assert torch.autograd.gradcheck(lambda f: triplet_distances(f, None, ids[1, :12], ids[2, :12]), (x,))


def test_one_output_used() -> None:
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    d_ap, _ = triplet_distances(x, None, torch.tensor([1, 0, 3, 2, 5, 4]), torch.tensor([2, 3, 4, 5, 0, 1]))
    d_ap.sum().backward()
    assert torch.isfinite(x.grad).all()
