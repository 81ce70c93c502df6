"""A few training steps on scikit-learn's digits (real images, offline) lower every loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from oml_fast.losses import ArcFaceLoss, ContrastiveLoss, SurrogatePrecision, TripletLossWithMiner
from oml_fast.miners import (
    AllTripletsMiner,
    HardClusterMiner,
    HardTripletsMiner,
    MinerWithBank,
    NHardTripletsMiner,
    PairsMiner,
    TripletMinerWithMemory,
)
from oml_fast.samplers import BalanceSampler


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    data = load_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float32)
    return x, torch.tensor(data.target, dtype=torch.long)


CRITERIA = {
    "triplet_hard": lambda: TripletLossWithMiner(margin=0.2, miner=HardTripletsMiner()),
    "triplet_soft_all": lambda: TripletLossWithMiner(
        margin=None, miner=AllTripletsMiner(max_output_triplets=3000)
    ),
    "triplet_nhard": lambda: TripletLossWithMiner(margin=0.2, miner=NHardTripletsMiner((1, 3), 2)),
    "triplet_cluster": lambda: TripletLossWithMiner(margin=0.2, miner=HardClusterMiner()),
    "triplet_memory": lambda: TripletLossWithMiner(margin=1.0, miner=TripletMinerWithMemory(2, 3)),
    "triplet_bank": lambda: TripletLossWithMiner(
        margin=0.2, miner=MinerWithBank(2, NHardTripletsMiner(2, 2))
    ),
    "contrastive": lambda: ContrastiveLoss(neg_margin=1.0, miner=PairsMiner(hard_mining=False)),
    "arcface": lambda: ArcFaceLoss(in_features=16, num_classes=10, m=0.3, s=16),
    "surrogate_precision": lambda: SurrogatePrecision(k=3, temperature1=1.0, temperature2=0.05),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CRITERIA))
def test_training_lowers_the_loss(digits, name: str) -> None:
    x, y = digits
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 16))
    criterion = CRITERIA[name]()
    # The memory bank holds features of earlier steps; with a fast-moving model they go stale, so it
    # gets a smaller step (with lr=3e-3 its in-batch loss rises after ~10 steps on this tiny model).
    lr = 1e-3 if name == "triplet_memory" else 3e-3
    optimizer = torch.optim.Adam(list(model.parameters()) + list(criterion.parameters()), lr=lr)
    sampler = BalanceSampler(y.tolist(), n_labels=5, n_instances=8, seed=0)

    # A fixed evaluation batch (same structure as training batches), before and after training.
    eval_ids = next(iter(BalanceSampler(y.tolist(), n_labels=5, n_instances=8, seed=123)))
    # The memory miner's fresh bank holds placeholders; judge its training on the in-batch triplets.
    fresh = (
        TripletLossWithMiner(margin=1.0, miner=AllTripletsMiner())
        if name == "triplet_memory"
        else CRITERIA[name]()
    )
    if isinstance(criterion, torch.nn.Module) and list(criterion.parameters()):
        fresh = criterion  # ArcFace: its class weights are part of what is learned

    def evaluate() -> float:
        torch.manual_seed(1)
        with torch.no_grad():
            return float(fresh(model(x[eval_ids]), y[eval_ids]))

    before = evaluate()
    steps = 0
    while steps < 30:
        for batch in sampler:
            loss = criterion(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
    after = evaluate()
    assert np.isfinite(after) and after < 0.8 * before, (before, after)
