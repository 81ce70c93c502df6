"""The CPU knn's bfloat16 screening (issue 15, item 5) gives exactly the results of the float32 one.

On CPUs with AVX512-BF16 the float32 search screens candidates with a bfloat16 GEMM and a proven error
bound (``csrc/common/distance_math.h``: ``bf16_error_factor``), then resolves them exactly as before.
``OML_FAST_KNN_SCREEN`` picks the screen: ``fp32`` (the float32 GEMM), ``bf16`` (the native kernel,
emulated where the CPU lacks it), ``bf16-emulated`` (a float32 GEMM of bfloat16-rounded copies, same
bound). Each case below runs every screen on the same inputs and asks for bitwise equal outputs: same ids,
same distances, same tie rule (smaller index first).
"""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits

from oml_fast import reference
from oml_fast.ops import knn

METRICS = ("euclidean", "sqeuclidean", "cosine", "dot")
SCREENS = ("bf16", "bf16-emulated")


def _knn_with(monkeypatch, screen: str, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    monkeypatch.setenv("OML_FAST_KNN_SCREEN", screen)
    return knn(*args, **kwargs)


def _assert_same_as_fp32(monkeypatch, queries, gallery, k, metric="euclidean", **keys) -> None:
    want = _knn_with(monkeypatch, "fp32", queries, gallery, k, metric, **keys)
    for screen in SCREENS:
        got = _knn_with(monkeypatch, screen, queries, gallery, k, metric, **keys)
        assert torch.equal(got[1], want[1]), (screen, metric)
        assert torch.equal(got[0], want[0]), (screen, metric)


def _gaussian(n: int, dim: int, seed: int) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("metric", METRICS)
def test_random_data_with_exclusions(monkeypatch, metric):
    # Several gallery tiles (1024 columns each), a column count that is not a multiple of 32, odd D.
    gallery = _gaussian(2100, 33, 0)
    queries = torch.cat([gallery[:40], _gaussian(30, 33, 1)])
    keys = {
        "query_ids": torch.cat([torch.arange(40), torch.arange(10_000, 10_030)]),
        "gallery_ids": torch.arange(2100),
        "query_groups": torch.randint(0, 5, (70,), generator=torch.Generator().manual_seed(2)),
        "gallery_groups": torch.randint(0, 5, (2100,), generator=torch.Generator().manual_seed(3)),
    }
    _assert_same_as_fp32(monkeypatch, queries, gallery, 10, metric, **keys)
    want = reference.knn(queries, gallery, 10, metric, **keys)
    got = _knn_with(monkeypatch, "bf16", queries, gallery, 10, metric, **keys)
    assert torch.equal(got[1], want[1])


@pytest.mark.parametrize("metric", METRICS)
def test_digits_clustered_real_data(monkeypatch, metric):
    # sklearn digits: non-negative pixel counts 0..16, tight classes, many near-duplicates.
    data = torch.from_numpy(load_digits().data).float()
    queries, gallery = data[:300], data
    keys = {"query_ids": torch.arange(300), "gallery_ids": torch.arange(len(data))}
    _assert_same_as_fp32(monkeypatch, queries, gallery, 10, metric, **keys)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("k", [1, 3, 100])
def test_duplicates_and_exact_ties(monkeypatch, metric, k):
    # Small integer vectors, many exact duplicates: ties must break by the smaller index.
    generator = torch.Generator().manual_seed(4)
    base = torch.randint(-2, 3, (12, 6), generator=generator).float()
    gallery = base[torch.randint(0, 12, (2500,), generator=generator)]
    queries = base[torch.randint(0, 12, (130,), generator=generator)]
    _assert_same_as_fp32(monkeypatch, queries, gallery, k, metric)
    want = reference.knn(queries, gallery, k, metric)
    got = _knn_with(monkeypatch, "bf16", queries, gallery, k, metric)
    assert torch.equal(got[1], want[1])


def test_far_from_origin(monkeypatch):
    # Norms ~1e3, distances ~1e-2: every candidate falls inside the bfloat16 band; still exact.
    generator = torch.Generator().manual_seed(5)
    offset = torch.full((1, 16), 1000.0, dtype=torch.float64)
    gallery = (offset + 0.01 * torch.randn(2000, 16, generator=generator, dtype=torch.float64)).float()
    queries = (offset + 0.01 * torch.randn(30, 16, generator=generator, dtype=torch.float64)).float()
    _assert_same_as_fp32(monkeypatch, queries, gallery, 10)
    want = reference.knn(queries.double(), gallery.double(), 10)
    assert torch.equal(_knn_with(monkeypatch, "bf16", queries, gallery, 10)[1], want[1])


@pytest.mark.parametrize("metric", METRICS)
def test_outliers_zero_rows_and_near_ties(monkeypatch, metric):
    gallery = _gaussian(1500, 8, 6)
    gallery[100:140] = gallery[7]  # 41 exact duplicates: more near-ties than k
    gallery[300] *= 1000  # an outlier norm
    gallery[301] = 0  # a zero row (cosine: distance 1 to everything)
    gallery[302] = gallery[8] * (1 + 2**-9)  # differs from row 8 below bfloat16's resolution
    queries = torch.cat([gallery[:12], torch.zeros(1, 8), gallery[300:303]])
    keys = {"query_ids": torch.arange(len(queries)), "gallery_ids": torch.arange(1500)}
    _assert_same_as_fp32(monkeypatch, queries, gallery, 5, metric, **keys)


@pytest.mark.parametrize("magnitude", [1e-20, 1e18])
@pytest.mark.parametrize("metric", METRICS)
def test_magnitudes_and_subnormal_bfloat16_values(monkeypatch, magnitude, metric):
    gallery = _gaussian(600, 16, 7) * magnitude
    gallery[:, 0] *= 1e-30  # after scaling, entries below bfloat16's normal range (flushed by DAZ)
    queries = torch.cat([gallery[:5], _gaussian(20, 16, 8) * magnitude])
    _assert_same_as_fp32(monkeypatch, queries, gallery, 7, metric)


def test_bad_knob_names_the_variable(monkeypatch):
    monkeypatch.setenv("OML_FAST_KNN_SCREEN", "int8")
    with pytest.raises(ValueError, match="OML_FAST_KNN_SCREEN"):
        knn(torch.randn(3, 4), torch.randn(5, 4), 2)


def test_float64_ignores_the_knob(monkeypatch):
    queries, gallery = _gaussian(20, 8, 9).double(), _gaussian(300, 8, 10).double()
    _assert_same_as_fp32(monkeypatch, queries, gallery, 5)
