"""oml_fast's losses agree with OML 4.0's (values and gradients) on seeded random cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from deviations import adjusts_for
from oml_agreement import assert_close, grads, oml_call
from random_cases import SEEDS, random_batch_labels, seeded


@adjusts_for("soft-margin-stable")
@pytest.mark.parametrize("seed", SEEDS)
def test_triplet_loss(seed: int) -> None:
    """Value and gradients; margin or soft margin (moderate inputs), reductions, float32 and float64."""
    from oml.losses.triplet import TripletLoss as OmlTripletLoss

    from oml_fast.losses import TripletLoss

    rng = seeded(seed)
    b, dim = int(rng.randint(1, 40)), int(rng.randint(1, 16))
    dtype = torch.float64 if rng.rand() < 0.3 else torch.float32
    margin = [None, 0.1, 0.5, 1.0, 2.0][rng.randint(0, 5)]
    reduction = ["mean", "sum", "none"][rng.randint(0, 3)]
    a, p, n = (torch.from_numpy(rng.randn(b, dim)).to(dtype) for _ in range(3))
    if rng.rand() < 0.2:  # identical anchor/positive rows: zero distance
        p[: b // 2] = a[: b // 2]
    loss_b, grads_b = grads(OmlTripletLoss(margin=margin, reduction=reduction), a, p, n)
    loss_a, grads_a = grads(TripletLoss(margin=margin, reduction=reduction), a, p, n)
    assert_close(loss_a, loss_b, "loss")
    for name, g_a, g_b in zip("apn", grads_a, grads_b):
        assert_close(g_a, g_b, f"grad {name}")


@adjusts_for("soft-margin-stable")
def test_soft_margin_at_100_is_finite_where_oml_overflows() -> None:
    from oml.losses.triplet import TripletLoss as OmlTripletLoss

    from oml_fast.losses import TripletLoss

    a, p, n = torch.zeros(1, 1), torch.tensor([[100.0]]), torch.zeros(1, 1)
    assert math.isinf(float(OmlTripletLoss(margin=None)(a, p, n)))
    assert float(TripletLoss(margin=None)(a, p, n)) == pytest.approx(100.0, abs=1e-4)


MINERS = ("hard", "all", "nhard")


@pytest.mark.parametrize("miner", MINERS)
@pytest.mark.parametrize("seed", SEEDS)
def test_triplet_loss_with_miner(seed: int, miner: str) -> None:
    """Value and gradient wrt features with the Hard / All / NHard(2, 2) miners, mean and sum."""
    from oml.losses.triplet import TripletLossWithMiner as OmlTripletLossWithMiner
    from oml.miners.inbatch_all_tri import AllTripletsMiner as OmlAll
    from oml.miners.inbatch_hard_tri import HardTripletsMiner as OmlHard
    from oml.miners.inbatch_nhard_tri import NHardTripletsMiner as OmlNHard

    from oml_fast.losses import TripletLossWithMiner
    from oml_fast.miners import AllTripletsMiner, HardTripletsMiner, NHardTripletsMiner

    rng = seeded(seed)
    labels = random_batch_labels(rng)
    features = torch.from_numpy(rng.randn(len(labels), int(rng.randint(2, 16))).astype(np.float32))
    margin = [None, 0.2, 1.0][rng.randint(0, 3)]
    reduction = ["mean", "sum"][rng.randint(0, 2)]
    oml_miner, our_miner = {
        "hard": (OmlHard(), HardTripletsMiner()),
        "all": (OmlAll(), AllTripletsMiner()),
        "nhard": (OmlNHard(2, 2), NHardTripletsMiner(2, 2)),
    }[miner]
    oml_loss = OmlTripletLossWithMiner(margin=margin, miner=oml_miner, reduction=reduction)
    our_loss = TripletLossWithMiner(margin=margin, miner=our_miner, reduction=reduction)
    loss_b, (grad_b,) = grads(lambda f: oml_loss(f, labels), features)
    loss_a, (grad_a,) = grads(lambda f: our_loss(f, labels), features)
    assert_close(loss_a, loss_b, "loss")
    assert_close(grad_a, grad_b, "grad")


@adjusts_for("arcface-sine-clamp")
@pytest.mark.parametrize("seed", SEEDS)
def test_arcface(seed: int) -> None:
    """Same weights; value and gradients wrt x and weight; m, s, label smoothing with and without
    label2category. Where OML's gradient is NaN (|cos| = 1), ours must be finite."""
    from oml.losses.arcface import ArcFaceLoss as OmlArcFaceLoss

    from oml_fast.losses import ArcFaceLoss

    rng = seeded(seed)
    dim, n_classes, b = int(rng.randint(2, 16)), int(rng.randint(2, 12)), int(rng.randint(1, 30))
    eps = float(rng.choice([0.0, 0.1, 0.3]))
    label2category = None
    if eps and rng.rand() < 0.5:
        label2category = {i: ["a", "b", "c"][int(rng.randint(0, 3))] for i in range(n_classes)}
    kwargs = {
        "m": float(rng.uniform(0.1, 0.8)),
        "s": float(rng.choice([1.0, 16.0, 64.0])),
        "smoothing_epsilon": eps,
        "label2category": label2category,
        "reduction": ["mean", "sum", "none"][rng.randint(0, 3)],
    }
    theirs = OmlArcFaceLoss(dim, n_classes, **kwargs)
    ours = ArcFaceLoss(dim, n_classes, **kwargs)
    with torch.no_grad():
        ours.weight.copy_(theirs.weight)
    x = torch.from_numpy(rng.randn(b, dim).astype(np.float32))
    y = torch.from_numpy(rng.randint(0, n_classes, b)).long()
    loss_b, (grad_x_b,) = grads(lambda v: theirs(v, y), x)
    loss_a, (grad_x_a,) = grads(lambda v: ours(v, y), x)
    assert_close(loss_a, loss_b, "loss", 1e-4)
    assert theirs.weight.grad is not None and ours.weight.grad is not None
    if bool(torch.isnan(grad_x_b).any() or torch.isnan(theirs.weight.grad).any()):
        assert bool(torch.isfinite(grad_x_a).all()), "our grad x must be finite where OML's is NaN"
        assert bool(torch.isfinite(ours.weight.grad).all()), "our grad weight must be finite"
        return
    assert_close(grad_x_a, grad_x_b, "grad x", 1e-4)
    assert_close(ours.weight.grad, theirs.weight.grad, "grad weight", 1e-4)


@adjusts_for("arcface-sine-clamp")
def test_arcface_gradient_at_unit_cosine_is_finite_where_oml_is_nan() -> None:
    from oml.losses.arcface import ArcFaceLoss as OmlArcFaceLoss

    from oml_fast.losses import ArcFaceLoss

    theirs, ours = OmlArcFaceLoss(2, 2), ArcFaceLoss(2, 2)
    with torch.no_grad():
        theirs.weight.copy_(torch.eye(2))
        ours.weight.copy_(torch.eye(2))
    x, y = torch.tensor([[3.0, 0.0]]), torch.tensor([0])  # parallel to class 0's weight: cos = 1
    _, (grad_b,) = grads(lambda v: theirs(v, y), x)
    _, (grad_a,) = grads(lambda v: ours(v, y), x)
    assert bool(torch.isnan(grad_b).any())
    assert bool(torch.isfinite(grad_a).all())


def test_arcface_label2category_without_smoothing_is_ignored_as_in_oml() -> None:
    from oml.losses.arcface import ArcFaceLoss as OmlArcFaceLoss

    from oml_fast.losses import ArcFaceLoss

    label2category = {0: "a", 1: "b", 2: "a"}
    theirs = OmlArcFaceLoss(4, 3, label2category=label2category)
    ours = ArcFaceLoss(4, 3, label2category=label2category)
    with torch.no_grad():
        ours.weight.copy_(theirs.weight)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    assert_close(ours(x, y), theirs(x, y), "loss")


@pytest.mark.parametrize("seed", SEEDS)
def test_surrogate_precision(seed: int) -> None:
    """Value and gradient; k, temperatures, reductions. The loss is compared in float64: OML's
    torch.cdist (matrix-multiply path above 25 rows) leaves the diagonal at ~1e-3 instead of 0 in
    float32, which moves OML's value by ~1e-4 at t2=1. The formula (surrogate_precision) is compared in
    float32 on identical distances."""
    from oml.functional.losses import surrogate_precision as oml_surrogate_precision
    from oml.losses.surrogate_precision import SurrogatePrecision as OmlSurrogatePrecision

    from oml_fast.losses import SurrogatePrecision, surrogate_precision

    rng = seeded(seed)
    b, dim = int(rng.randint(2, 40)), int(rng.randint(1, 12))
    labels = torch.from_numpy(rng.randint(0, max(1, b // 3), b)).long()
    k = int(rng.randint(1, 6))
    t1, t2 = float(rng.choice([0.5, 1.0, 2.0])), float(rng.choice([0.01, 0.1, 1.0]))
    reduction = ["mean", "sum", "none"][rng.randint(0, 3)]
    features = torch.from_numpy(rng.randn(b, dim))
    loss_b, (grad_b,) = grads(lambda f: OmlSurrogatePrecision(k, t1, t2, reduction)(f, labels), features)
    loss_a, (grad_a,) = grads(lambda f: SurrogatePrecision(k, t1, t2, reduction)(f, labels), features)
    assert_close(loss_a, loss_b, "loss (float64)", 1e-6)
    assert_close(grad_a, grad_b, "grad (float64)", 1e-6)
    distances = torch.cdist(features, features).float()
    mask = labels[:, None] == labels[None, :]
    args = {"k": k + 1, "t1": t1, "t2": t2, "reduction": reduction}
    value_b, (grad_d_b,) = grads(lambda d: oml_call(oml_surrogate_precision, d, mask, **args), distances)
    value_a, (grad_d_a,) = grads(lambda d: surrogate_precision(d, mask, **args), distances)
    assert_close(value_a, value_b, "surrogate_precision (float32)")
    assert_close(grad_d_a, grad_d_b, "surrogate_precision grad (float32)")
