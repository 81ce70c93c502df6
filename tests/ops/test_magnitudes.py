"""Embeddings far from 1 (issue 13, item 2): results right from 1e-20 to 1e18 in float32 and up to 1e150
in float64, for ``knn``, ``pairwise_distance`` and ``hard_mining``.

The ops scale such data by a power of two before squaring (csrc/common/distance_math.h), so the answers
are those of the same data near 1, scaled back. The expected values here come from float64 on the data
divided by its magnitude.
"""

from __future__ import annotations

import math

import pytest
import torch

from oml_fast import reference
from oml_fast.ops import hard_mining, knn, pairwise_distance

METRICS = ("euclidean", "sqeuclidean", "cosine", "dot")
MAGNITUDES = [(torch.float32, 1e-20), (torch.float32, 1e18), (torch.float64, 1e-20), (torch.float64, 1e150)]


def _data(n: int, dim: int, dtype: torch.dtype, magnitude: float, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(n, dim, generator=generator, dtype=torch.float64) * magnitude).to(dtype)


def _scale_power(metric: str) -> int:
    return {"euclidean": 1, "sqeuclidean": 2, "dot": 2, "cosine": 0}[metric]


@pytest.mark.parametrize("dtype,magnitude", MAGNITUDES)
@pytest.mark.parametrize("metric", METRICS)
def test_knn_far_from_one(dtype, magnitude, metric):
    gallery = _data(300, 16, dtype, magnitude)
    queries = torch.cat([gallery[:5], _data(20, 16, dtype, magnitude, seed=1)])
    dist, idx = knn(queries, gallery, 7, metric)
    unit = magnitude ** _scale_power(metric)
    ref_dist, ref_idx = reference.knn(queries.double() / magnitude, gallery.double() / magnitude, 7, metric)
    assert torch.equal(idx, ref_idx)
    assert torch.isfinite(dist).all()
    torch.testing.assert_close(dist.double() / unit, ref_dist, rtol=1e-5, atol=1e-6)
    if metric in ("euclidean", "sqeuclidean"):
        assert (dist[:5, 0] == 0).all()  # a query that is a gallery row finds itself at exactly 0


def test_knn_huge_outlier_does_not_hide_the_exact_neighbour():
    """The fuzzing find of issue 13: 1.8e19 squared overflows float32 unless the data is scaled first."""
    x = torch.tensor([[0.0], [0.0], [1.8e19]])
    dist, idx = knn(x, x, 1)
    assert idx.flatten().tolist() == [0, 0, 2]
    assert dist.flatten().tolist() == [0.0, 0.0, 0.0]
    dist, idx = knn(x, x, 3, query_ids=torch.arange(3), gallery_ids=torch.arange(3))
    assert idx.tolist() == [[1, 2, -1], [0, 2, -1], [0, 1, -1]]
    assert dist[2, :2].tolist() == [1.8e19, 1.8e19] or torch.allclose(dist[2, :2], torch.tensor(1.8e19))


@pytest.mark.parametrize("dtype,magnitude", MAGNITUDES + [(torch.float32, 1e20), (torch.float64, 1e200)])
@pytest.mark.parametrize("metric", METRICS)
def test_pairwise_distance_far_from_one(dtype, magnitude, metric):
    x1, x2 = _data(9, 8, dtype, magnitude), _data(6, 8, dtype, magnitude, seed=1)
    x2[0] = x1[0]
    got = pairwise_distance(x1, x2, metric).double()
    want = reference.pairwise_distance(x1.double() / magnitude, x2.double() / magnitude, metric)
    power = _scale_power(metric)
    if power * math.log10(magnitude) > math.log10(torch.finfo(dtype).max):
        # The result itself is beyond the dtype (|a - b|^2 of 1e20 rows in float32): inf, never NaN.
        assert not torch.isnan(got).any()
        assert torch.isinf(got[1:, 1:]).all() and (got[0, 0] == 0 or metric == "dot")
        return
    unit = magnitude**power
    torch.testing.assert_close(got / unit, want, rtol=1e-4, atol=1e-5)
    if metric in ("euclidean", "sqeuclidean"):
        assert got[0, 0] == 0  # identical rows: exactly 0, as documented


@pytest.mark.parametrize("dtype,magnitude", MAGNITUDES + [(torch.float32, 1e20)])
@pytest.mark.parametrize("metric", METRICS)
def test_hard_mining_far_from_one(dtype, magnitude, metric):
    x = _data(64, 8, dtype, magnitude)
    labels = torch.arange(64) % 4
    got = hard_mining(x, labels, 2, 2, metric)
    want = reference.hard_mining((x.double() / magnitude), labels, 2, 2, metric)
    assert (got[0] >= 0).all(), "positives lost"
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "dot"])
def test_knn_exact_under_reduced_precision_matmul(metric):
    """torch.set_float32_matmul_precision("medium") lets oneDNN run float32 GEMMs in bfloat16 on CPUs
    that have bf16 dot products: the error band follows, so the result stays exact."""
    generator = torch.Generator().manual_seed(3)
    gallery = (100 + 0.01 * torch.randn(2000, 16, generator=generator, dtype=torch.float64)).float()
    queries = gallery[:30] + 0.001 * torch.randn(30, 16, generator=generator)
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        dist, idx = knn(queries, gallery, 10, metric)
    finally:
        torch.set_float32_matmul_precision(before)
    ref_dist, ref_idx = reference.knn(queries.double(), gallery.double(), 10, metric)
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(dist.double(), ref_dist, rtol=1e-6, atol=1e-6)
