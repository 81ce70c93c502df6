"""hard_mining's two CPU paths give the same selections: the symmetric panel path (each inner product
computed once for both of its anchors, candidates kept in per-thread lists) and the per-row path
(``OML_FAST_MINING_PATH=rows``), on random and numerically hostile inputs, and both equal the
pure-PyTorch reference where its float64 keys decide the same way."""

from __future__ import annotations

import pytest
import torch

import oml_fast  # noqa: F401  (loads the op library)
from oml_fast.ops import hard_mining
from oml_fast.reference import hard_mining as hard_mining_ref

METRICS = ["euclidean", "sqeuclidean", "cosine", "dot"]


def both_paths(monkeypatch, *args, **kwargs):
    monkeypatch.setenv("OML_FAST_MINING_PATH", "rows")
    rows = hard_mining(*args, **kwargs)
    monkeypatch.setenv("OML_FAST_MINING_PATH", "symmetric")
    symmetric = hard_mining(*args, **kwargs)
    return rows, symmetric


def assert_same(a, b) -> None:
    assert torch.equal(a[0], b[0]), (a[0] != b[0]).nonzero()[:5]
    assert torch.equal(a[1], b[1]), (a[1] != b[1]).nonzero()[:5]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", range(4))
def test_paths_agree_on_random_batches(monkeypatch, metric: str, dtype: torch.dtype, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    batch = int(torch.randint(2, 1200, (1,), generator=g))  # several panels per thread at the top end
    dim = int(torch.randint(1, 70, (1,), generator=g))
    x = torch.randn(batch, dim, generator=g).to(dtype)
    labels = torch.randint(0, max(2, batch // 4), (batch,), generator=g)
    n_pos, n_neg = int(torch.randint(0, 9, (1,), generator=g)), int(torch.randint(0, 9, (1,), generator=g))
    mask = torch.rand(batch, generator=g) > 0.3 if seed % 2 else None
    rows, symmetric = both_paths(monkeypatch, x, labels, n_pos, n_neg, metric, mask)
    assert_same(rows, symmetric)
    if dtype == torch.float64:
        assert_same(symmetric, hard_mining_ref(x, labels, n_pos, n_neg, metric, mask))


@pytest.mark.parametrize("n", [1, 3])
def test_far_from_origin_is_exact(monkeypatch, n: int) -> None:
    # Offset 1000, noise 0.01: the GEMM keys cancel almost every digit; only the exact keys rank.
    g = torch.Generator().manual_seed(1)
    x = (1000 + 0.01 * torch.randn(600, 16, generator=g, dtype=torch.float64)).float()
    labels = torch.randint(0, 40, (600,), generator=g)
    rows, symmetric = both_paths(monkeypatch, x, labels, n, n)
    assert_same(rows, symmetric)
    assert_same(symmetric, hard_mining_ref(x.double(), labels, n, n))


def test_exact_duplicates_overflow_the_lists_and_stay_exact(monkeypatch) -> None:
    # 300 copies of 4 points: every anchor has ~75 exact ties per side, far more than a candidate list
    # holds, so the lists overflow and those anchors take the per-row path; ties go to the smaller index.
    g = torch.Generator().manual_seed(2)
    points = torch.randn(4, 8, generator=g)
    x = points.repeat(300, 1)
    labels = torch.randint(0, 3, (1200,), generator=g)
    rows, symmetric = both_paths(monkeypatch, x, labels, 2, 2)
    assert_same(rows, symmetric)
    assert_same(symmetric, hard_mining_ref(x.double(), labels, 2, 2))


def test_one_outlier_and_zero_rows(monkeypatch) -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(500, 32, generator=g)
    x[7] *= 1000  # one huge row widens only its own error terms
    x[11] = 0  # a zero row: distance 1 to everything under the cosine
    labels = torch.randint(0, 50, (500,), generator=g)
    for metric in METRICS:
        rows, symmetric = both_paths(monkeypatch, x, labels, 1, 1, metric)
        assert_same(rows, symmetric)
        assert_same(symmetric, hard_mining_ref(x.double(), labels, 1, 1, metric))


def test_large_n_takes_the_per_row_path(monkeypatch) -> None:
    x = torch.randn(200, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    labels = torch.arange(200) % 5
    rows, symmetric = both_paths(monkeypatch, x, labels, 12, 30)
    assert_same(rows, symmetric)
    assert_same(symmetric, hard_mining_ref(x, labels, 12, 30))


def test_one_thread_and_tiny_batches(monkeypatch) -> None:
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        for batch in [2, 3, 17, 130]:
            x = torch.randn(batch, 5, generator=torch.Generator().manual_seed(batch), dtype=torch.float64)
            labels = torch.arange(batch) % 3
            rows, symmetric = both_paths(monkeypatch, x, labels, 1, 2)
            assert_same(rows, symmetric)
            assert_same(symmetric, hard_mining_ref(x, labels, 1, 2))
    finally:
        torch.set_num_threads(threads)


def test_unknown_path_knob_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("OML_FAST_MINING_PATH", "fast")
    with pytest.raises(ValueError, match="OML_FAST_MINING_PATH"):
        hard_mining(torch.randn(4, 2), torch.tensor([0, 0, 1, 1]), 1, 1)
