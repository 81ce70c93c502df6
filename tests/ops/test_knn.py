"""``oml_fast.ops.knn`` against its reference twin (``oml_fast.reference.knn``)."""

from __future__ import annotations

import pytest
import torch

import oml_fast  # noqa: F401  (loads the op library)
from oml_fast import reference
from oml_fast.ops import knn

METRICS = ("euclidean", "sqeuclidean", "cosine", "dot")


def sample_inputs(
    n_query: int, n_gallery: int, dim: int, dtype: torch.dtype = torch.float32, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    gallery = torch.randn(n_gallery, dim, dtype=torch.float64).to(dtype).to(device)
    queries = torch.randn(n_query, dim, dtype=torch.float64).to(dtype).to(device)
    return queries, gallery


def distance_of(queries, gallery, idx, metric):
    """Float64 distance of each returned (query, gallery index) pair; inf on padding."""
    q = queries.double().cpu()
    g = gallery.double().cpu()
    full = reference.pairwise_distance(q, g, metric) if len(g) else q.new_zeros(len(q), 0)
    idx = idx.cpu()
    out = torch.full(idx.shape, float("inf"), dtype=torch.float64)
    valid = idx >= 0
    rows = torch.arange(len(q))[:, None].expand_as(idx)
    out[valid] = full[rows[valid], idx[valid]]
    return out


def assert_knn_equal(dist, idx, ref_dist, ref_idx, queries, gallery, metric, rtol=1e-5, atol=1e-5):
    """Same padding, same distances; indices equal except between items at (numerically) equal distance."""
    assert dist.shape == ref_dist.shape and idx.shape == ref_idx.shape
    assert idx.dtype == torch.int64
    assert torch.equal(idx.cpu() < 0, ref_idx.cpu() < 0)
    torch.testing.assert_close(dist.cpu().double(), ref_dist.cpu().double(), rtol=rtol, atol=atol)
    # The distances we return are those of the indices we return.
    torch.testing.assert_close(
        dist.cpu().double(), distance_of(queries, gallery, idx, metric), rtol=rtol, atol=atol
    )
    # Ascending rows, no index twice in a row.
    finite = dist.cpu().double().masked_fill(idx.cpu() < 0, float("inf"))
    assert (finite[:, 1:] >= finite[:, :-1]).all()
    for row in idx.cpu():
        valid = row[row >= 0]
        assert len(valid.unique()) == len(valid)


def exclusions(kind: str, n_query: int, n_gallery: int) -> dict:
    """Keys of the exclusion protocols: queries overlap the gallery (ids), sequences (groups), both."""
    keys: dict = {}
    if kind in ("ids", "both"):
        keys["query_ids"] = (
            torch.randperm(n_gallery)[:n_query] if n_query <= n_gallery else torch.arange(n_query)
        )
        keys["gallery_ids"] = torch.arange(n_gallery)
    if kind in ("groups", "both"):
        keys["query_groups"] = torch.randint(0, 7, (n_query,))
        keys["gallery_groups"] = torch.randint(0, 7, (n_gallery,))
    return keys


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", ["none", "ids", "groups", "both"])
@pytest.mark.parametrize("shape", [(37, 53, 8, 5), (150, 1100, 16, 10), (1, 1, 3, 1), (5, 4, 7, 9)])
def test_knn_matches_reference(metric, kind, shape):
    n_query, n_gallery, dim, k = shape
    queries, gallery = sample_inputs(n_query, n_gallery, dim)
    keys = exclusions(kind, n_query, n_gallery)
    dist, idx = knn(queries, gallery, k, metric, **keys)
    ref_dist, ref_idx = reference.knn(queries, gallery, k, metric, **keys)
    assert_knn_equal(dist, idx, ref_dist, ref_idx, queries, gallery, metric)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("metric", METRICS)
def test_knn_dtypes(dtype, metric):
    queries, gallery = sample_inputs(40, 300, 12, dtype)
    keys = exclusions("both", 40, 300)
    dist, idx = knn(queries, gallery, 7, metric, **keys)
    expected_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    assert dist.dtype == expected_dtype
    ref_dist, ref_idx = reference.knn(queries, gallery, 7, metric, **keys)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    assert_knn_equal(dist, idx, ref_dist, ref_idx, queries, gallery, metric, rtol=tol, atol=tol)
    if dtype == torch.float64:
        assert torch.equal(idx, ref_idx)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("k", [1, 3, 100])
def test_knn_exact_ties_break_by_smaller_index(metric, k):
    # Small integer vectors, many exact duplicates: every distance is exact, so indices must match.
    base = torch.randint(-2, 3, (12, 6)).float()
    gallery = base[torch.randint(0, 12, (2500,))]
    queries = base[torch.randint(0, 12, (130,))]
    keys = exclusions("both", 130, 2500)
    dist, idx = knn(queries, gallery, k, metric, **keys)
    ref_dist, ref_idx = reference.knn(queries, gallery, k, metric, **keys)
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(dist, ref_dist)


def test_knn_all_identical_gallery():
    gallery = torch.ones(3000, 4)
    dist, idx = knn(gallery[:3], gallery, 50, query_ids=torch.arange(3), gallery_ids=torch.arange(3000))
    assert torch.equal(dist, torch.zeros(3, 50))
    expected = torch.stack([torch.tensor([j for j in range(51) if j != q][:50]) for q in range(3)])
    assert torch.equal(idx, expected)


def test_knn_far_from_origin_is_exact():
    # Norms ~1e3 and distances ~1e-2: the GEMM expansion |q|^2 + |g|^2 - 2<q, g> loses every digit; the
    # returned neighbours and distances must still be those of the float64 computation.
    offset = torch.full((1, 16), 1000.0, dtype=torch.float64)
    gallery64 = offset + 0.01 * torch.randn(2000, 16, dtype=torch.float64)
    queries64 = offset + 0.01 * torch.randn(30, 16, dtype=torch.float64)
    dist, idx = knn(queries64.float(), gallery64.float(), 10)
    ref_dist, ref_idx = reference.knn(queries64.float().double(), gallery64.float().double(), 10)
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(dist.double(), ref_dist, rtol=1e-6, atol=0)


@pytest.mark.parametrize("k", [1, 10, 64])
def test_knn_k_equal_and_above_gallery_size(k):
    queries, gallery = sample_inputs(6, 10, 5)
    for kk in (10, 13, k):
        dist, idx = knn(queries, gallery, kk, query_ids=torch.arange(6), gallery_ids=torch.arange(10))
        ref_dist, ref_idx = reference.knn(
            queries, gallery, kk, query_ids=torch.arange(6), gallery_ids=torch.arange(10)
        )
        assert_knn_equal(dist, idx, ref_dist, ref_idx, queries, gallery, "euclidean")
        n_valid = min(kk, 9)  # 10 items, the query itself excluded
        assert (idx[:, n_valid:] == -1).all() and torch.isinf(dist[:, n_valid:]).all()
        assert (idx[:, :n_valid] >= 0).all()


def test_knn_all_excluded_rows_are_padding():
    queries, gallery = sample_inputs(4, 20, 3)
    query_groups = torch.tensor([0, 1, 0, 2])
    gallery_groups = torch.zeros(20, dtype=torch.int64)  # every gallery item is in group 0
    dist, idx = knn(queries, gallery, 5, query_groups=query_groups, gallery_groups=gallery_groups)
    assert (idx[[0, 2]] == -1).all() and torch.isinf(dist[[0, 2]]).all()
    assert (idx[[1, 3]] >= 0).all()


def test_knn_empty_inputs():
    dist, idx = knn(torch.randn(0, 4), torch.randn(5, 4), 3)
    assert dist.shape == (0, 3) and idx.shape == (0, 3)
    dist, idx = knn(torch.randn(2, 4), torch.randn(0, 4), 3)
    assert torch.isinf(dist).all() and (idx == -1).all()


def test_knn_zero_vectors_cosine():
    gallery = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]])
    queries = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    dist, idx = knn(queries, gallery, 4, "cosine")
    ref_dist, ref_idx = reference.knn(queries, gallery, 4, "cosine")
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(dist, ref_dist)


def test_knn_thread_count_does_not_change_results():
    queries, gallery = sample_inputs(300, 1500, 24)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = knn(queries, gallery, 20)
        torch.set_num_threads(2)
        double = knn(queries, gallery, 20)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(single[0], double[0]) and torch.equal(single[1], double[1])


def test_knn_non_contiguous_inputs():
    queries, gallery = sample_inputs(30, 200, 10)
    dist, idx = knn(queries.T.contiguous().T, gallery[::1].T.contiguous().T, 5)
    ref_dist, ref_idx = knn(queries.contiguous(), gallery.contiguous(), 5)
    assert torch.equal(idx, ref_idx) and torch.equal(dist, ref_dist)


def test_knn_opcheck():
    queries, gallery = sample_inputs(9, 31, 4)
    keys = exclusions("both", 9, 31)
    args = (queries, gallery, 4, "euclidean", *keys.values())
    torch.library.opcheck(torch.ops.oml_fast.knn.default, args)
    torch.library.opcheck(torch.ops.oml_fast.knn.default, (queries.double(), gallery.double(), 40, "cosine"))


def test_knn_under_torch_compile():
    queries, gallery = sample_inputs(9, 31, 4)

    @torch.compile(backend="aot_eager", fullgraph=True)
    def search(q, g):
        dist, idx = knn(q, g, 3, "dot")
        return dist * 2, idx

    dist, idx = search(queries, gallery)
    ref_dist, ref_idx = knn(queries, gallery, 3, "dot")
    assert torch.equal(idx, ref_idx) and torch.equal(dist, ref_dist * 2)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda q, g: knn(q, g[:, :3], 2), ValueError, "same number of columns"),
        (lambda q, g: knn(q, g.double(), 2), TypeError, "same dtype"),
        (lambda q, g: knn(q.long(), g.long(), 2), TypeError, "queries"),
        (lambda q, g: knn(q[0], g, 2), ValueError, "queries"),
        (lambda q, g: knn(q, g, 0), ValueError, "`k`"),
        (lambda q, g: knn(q, g, -3), ValueError, "`k`"),
        (lambda q, g: knn(q, g, 2, "manhattan"), ValueError, "metric"),
        (lambda q, g: knn(q, g, 2, query_ids=torch.arange(4)), ValueError, "gallery_ids"),
        (lambda q, g: knn(q, g, 2, query_groups=torch.arange(4)), ValueError, "gallery_groups"),
        (
            lambda q, g: knn(q, g, 2, query_ids=torch.arange(3), gallery_ids=torch.arange(6)),
            ValueError,
            "query_ids",
        ),
        (
            lambda q, g: knn(q, g, 2, query_ids=torch.arange(4), gallery_ids=torch.arange(6.0)),
            TypeError,
            "gallery_ids",
        ),
        (
            lambda q, g: knn(q, g, 2, query_groups=torch.zeros(4, 1).long(), gallery_groups=torch.arange(6)),
            ValueError,
            "query_groups",
        ),
        (
            lambda q, g: knn(q.index_fill(0, torch.tensor([1]), float("nan")), g, 2),
            ValueError,
            "queries.*NaN",
        ),
        (
            lambda q, g: knn(q, g.index_fill(0, torch.tensor([5]), float("inf")), 2),
            ValueError,
            "gallery.*inf",
        ),
    ],
)
def test_knn_bad_input(call, error, match):
    queries, gallery = sample_inputs(4, 6, 5)
    with pytest.raises(error, match=match):
        call(queries, gallery)


@pytest.mark.slow
def test_knn_large_against_reference():
    queries, gallery = sample_inputs(700, 5000, 64)
    keys = exclusions("both", 700, 5000)
    for k in (1, 100, 1024):
        dist, idx = knn(queries, gallery, k, **keys)
        ref_dist, ref_idx = reference.knn(queries, gallery, k, **keys)
        assert_knn_equal(dist, idx, ref_dist, ref_idx, queries, gallery, "euclidean")


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("k", [1, 10, 1024])
def test_knn_cuda_matches_cpu(dtype, metric, k):
    queries, gallery = sample_inputs(300, 3000, 40, dtype)
    keys = exclusions("both", 300, 3000)
    dist, idx = knn(queries.cuda(), gallery.cuda(), k, metric, **{n: t.cuda() for n, t in keys.items()})
    cpu_dist, cpu_idx = knn(queries, gallery, k, metric, **keys)
    assert dist.device.type == "cuda" and dist.dtype == cpu_dist.dtype
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert_knn_equal(dist, idx, cpu_dist, cpu_idx, queries, gallery, metric, rtol=tol, atol=tol)


@pytest.mark.cuda
def test_knn_cuda_exact_ties_and_padding():
    base = torch.randint(-2, 3, (12, 6)).float()
    gallery = base[torch.randint(0, 12, (2500,))]
    queries = base[torch.randint(0, 12, (130,))]
    keys = exclusions("both", 130, 2500)
    for k in (5, 300, 3000):
        dist, idx = knn(queries.cuda(), gallery.cuda(), k, **{n: t.cuda() for n, t in keys.items()})
        cpu_dist, cpu_idx = knn(queries, gallery, k, **keys)
        assert torch.equal(idx.cpu(), cpu_idx)
        torch.testing.assert_close(dist.cpu(), cpu_dist)
