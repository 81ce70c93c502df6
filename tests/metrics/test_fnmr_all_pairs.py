"""FNMR@FMR over all pairs, streamed through the ``_pair_distance_histogram`` op, against the definition
computed on the dense distance matrix (bit for bit). The op itself: tests/ops/test_fnmr.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oml_fast.functional.metrics import calc_fnmr_at_fmr
from oml_fast.metrics import fnmr as fnmr_module
from oml_fast.metrics.fnmr import calc_fnmr_at_fmr_all_pairs
from oml_fast.ops import pairwise_distance


def _dense_fnmr(emb, labels, ids, groups, fmr_vals, metric):
    """The definition, on the full distance matrix (small inputs only)."""
    dist = pairwise_distance(emb, emb, metric)
    same = labels[:, None] == labels[None, :]
    keep = ids[:, None] != ids[None, :]
    if groups is not None:
        keep &= groups[:, None] != groups[None, :]
    return calc_fnmr_at_fmr(dist[same & keep].numpy(), dist[~same & keep].numpy(), fmr_vals)


@pytest.mark.parametrize("seed", range(8))
def test_streamed_fnmr_equals_the_dense_definition(seed, monkeypatch):
    # Small bins, caps and tiles force several refinement passes (histogram and collect windows).
    monkeypatch.setattr(fnmr_module, "N_BINS", (4, 16)[seed % 2])
    monkeypatch.setattr(fnmr_module, "MAX_COLLECT", 5)
    monkeypatch.setattr(fnmr_module, "TILE_ELEMENTS", 50)
    rng = np.random.default_rng(seed)
    n, dtype = 40, (torch.float32, torch.float64)[seed % 2]
    emb = rng.integers(0, 3, (n, 2)) if seed % 3 == 0 else rng.standard_normal((n, 4))
    emb = torch.from_numpy(emb).to(dtype)
    labels = torch.from_numpy(rng.integers(0, 4, n)).to(torch.int32 if seed % 4 == 1 else torch.int64)
    if seed % 4 == 3:  # float labels are factorised, with the same equality
        labels = labels.double() / 3
    ids = torch.arange(n)
    groups = torch.from_numpy(rng.integers(0, 10, n)) if seed % 2 else None
    fmr_vals = (0.0, 0.001, 0.013, 0.1, 0.5, 0.77, 1.0)
    metric = ("euclidean", "sqeuclidean", "cosine", "dot")[seed % 4]
    streamed = calc_fnmr_at_fmr_all_pairs(
        emb, emb, labels, labels, fmr_vals, ids, ids, groups, groups, metric
    )
    assert torch.equal(streamed, _dense_fnmr(emb, labels, ids, groups, fmr_vals, metric).float())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_streamed_fnmr_of_half_embeddings_equals_the_dense_definition(dtype, monkeypatch):
    monkeypatch.setattr(fnmr_module, "MAX_COLLECT", 7)
    monkeypatch.setattr(fnmr_module, "N_BINS", 4)
    rng = np.random.default_rng(0)
    emb = torch.from_numpy(rng.standard_normal((30, 8))).to(dtype)
    labels = torch.from_numpy(rng.integers(0, 3, 30))
    ids = torch.arange(30)
    fmr_vals = (0.1, 0.5, 0.93)
    streamed = calc_fnmr_at_fmr_all_pairs(emb, emb, labels, labels, fmr_vals, ids, ids)
    dist = pairwise_distance(emb, emb)
    if dtype == torch.bfloat16:  # numpy has no bfloat16: float32 holds the same values
        dist = dist.float()
    same, keep = labels[:, None] == labels[None, :], ids[:, None] != ids[None, :]
    dense = calc_fnmr_at_fmr(dist[same & keep].numpy(), dist[~same & keep].numpy(), fmr_vals)
    assert torch.equal(streamed, dense.float())


def test_no_negative_pair_gives_nan_with_a_warning():
    emb = torch.randn(4, 3)
    labels = torch.zeros(4, dtype=torch.long)
    with pytest.warns(UserWarning, match="no negative pair"):
        result = calc_fnmr_at_fmr_all_pairs(emb, emb, labels, labels, (0.1,))
    assert torch.isnan(result).all()
