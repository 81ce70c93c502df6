"""Determinism and thread safety of the CPU ops: the same bits for 1 and 2 threads, for repeated
calls, and for calls made concurrently from Python threads (issue 13, item 5).

Sizes are chosen so that the kernels split the work into several tiles and threads (and are not
multiples of any tile size), with duplicate rows so that ties must be broken the same way each time.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from oml_fast.ops import hard_mining, knn, pairwise_distance, retrieval_metrics, retrieval_relevance


def _embeddings(n: int, dim: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    x[n // 2 : n // 2 + 7] = x[:7]  # exact duplicates: ties in distance
    return x.to(dtype)


def _knn_case() -> tuple[torch.Tensor, ...]:
    queries, gallery = _embeddings(301, 37, 0), _embeddings(1503, 37, 1)
    gallery[:301] = queries  # every query also in the gallery ...
    ids = torch.arange(1503)
    groups = torch.arange(1503) % 97
    # ... and excluded by id, and by group for some
    return knn(queries, gallery, 25, "euclidean", ids[:301], ids, groups[:301], groups)


def _distance_case() -> tuple[torch.Tensor, ...]:
    return (pairwise_distance(_embeddings(517, 65, 2), _embeddings(433, 65, 3), "cosine"),)


def _mining_case() -> tuple[torch.Tensor, ...]:
    x = _embeddings(611, 33, 4)
    labels = torch.arange(611) % 23
    return hard_mining(x, labels, 3, 5, "euclidean")


def _relevance_metrics_case() -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(5)
    retrieved = torch.argsort(torch.rand(700, 900, generator=generator), dim=1)[:, :40]
    retrieved[::5, 30:] = -1  # shorter lists
    query_labels = torch.randint(0, 30, (700,), generator=generator)
    gallery_labels = torch.randint(0, 30, (900,), generator=generator)
    is_relevant, n_gt = retrieval_relevance(retrieved, query_labels, gallery_labels)
    n_retrieved = (retrieved >= 0).sum(1)
    metrics = retrieval_metrics(is_relevant, n_gt, n_retrieved, [1, 5, 40], [5, 10], [5, 40])
    return (is_relevant, n_gt, *metrics)


CASES: dict[str, Callable[[], tuple[torch.Tensor, ...]]] = {
    "knn": _knn_case,
    "pairwise_distance": _distance_case,
    "hard_mining": _mining_case,
    "relevance+metrics": _relevance_metrics_case,
}


def _assert_bit_identical(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        # equal_nan: NaN precision (queries without positives) is a value, not a difference
        torch.testing.assert_close(x, y, rtol=0, atol=0, equal_nan=True)


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", list(CASES))
def test_one_and_two_threads_give_the_same_bits(name: str, restore_threads):
    torch.set_num_threads(1)
    single = CASES[name]()
    torch.set_num_threads(2)
    double = CASES[name]()
    _assert_bit_identical(single, double)


@pytest.mark.parametrize("name", list(CASES))
def test_repeated_calls_give_the_same_bits(name: str):
    first = CASES[name]()
    for _ in range(2):
        _assert_bit_identical(first, CASES[name]())


@pytest.mark.parametrize("name", list(CASES))
def test_concurrent_calls_from_python_threads_equal_sequential_ones(name: str):
    expected = CASES[name]()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: CASES[name](), range(6)))
    for result in results:
        _assert_bit_identical(expected, result)
