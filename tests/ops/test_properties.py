"""Property-based tests (hypothesis): every op against its pure-PyTorch twin (issue 13, item 3).

Embeddings are drawn on a small integer grid scaled by a power of two: then every inner product and
squared distance is exact in floating point, so the op and its twin must agree bit for bit --
including the order of ties, which the grid makes frequent (duplicate rows, equal distances). The
scale moves the data across magnitudes; shapes include 0 and 1 and sizes that are not multiples of
any tile. A failure prints the example and a ``@reproduce_failure`` blob to replay it.

The example budget is bounded (``HYPOTHESIS_PROFILE=ci``, the default, keeps the file to ~30 s on
2 cores; ``HYPOTHESIS_PROFILE=thorough`` runs 10x more).
"""

from __future__ import annotations

import os

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from oml_fast import ops, reference  # noqa: E402

# "ci" (the default) draws the same examples on every run, so CI is reproducible; "thorough"
# (HYPOTHESIS_PROFILE=thorough) draws new random ones, 10x as many, to hunt for bugs.
settings.register_profile(
    "ci",
    max_examples=40,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", parent=settings.get_profile("ci"), max_examples=400, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

EXACT_METRICS = ("euclidean", "sqeuclidean", "dot")  # exact on the grid; cosine divides
SIZES = st.sampled_from([0, 1, 2, 3, 7, 31, 257, 1025])  # 257 / 1025: just past a tile


@st.composite
def grid_embeddings(draw, n: int, dim: int, dtype: torch.dtype, scale_exp: int) -> torch.Tensor:
    """[n, dim] values in {-4..4} * 2**scale_exp, with some rows repeated (ties)."""
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(-4, 5, (n, dim), generator=generator).to(torch.float64)
    if n > 2 and draw(st.booleans()):
        repeats = torch.randint(0, n, (n // 3,), generator=generator)
        x[torch.randint(0, n, (n // 3,), generator=generator)] = x[repeats]
    return (x * 2.0**scale_exp).to(dtype)


def _scale_range(dtype: torch.dtype, metric: str = "euclidean") -> tuple[int, int]:
    """Magnitudes of issue 13 item 2: float32 from 1e-20 (2**-66) to 1e18 (2**60), float64 up to 1e150
    (2**498). Data outside [2**-20, 2**20] (float32) / [2**-200, 2**200] (float64) is scaled by a power of
    two inside the ops; the range covers both regimes. Squared distances and dot products of grid rows
    reach 64 * D * 2**(2e): for those metrics the range stops where the output itself would overflow or
    become subnormal in float32."""
    if dtype == torch.float64:
        return (-400, 498)
    return (-66, 60) if metric == "euclidean" else (-62, 56)


@st.composite
def exclusion_keys(draw, n_query: int, n_gallery: int) -> dict[str, torch.Tensor]:
    keys: dict[str, torch.Tensor] = {}
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    if draw(st.booleans()):
        keys["query_ids"] = torch.randint(0, max(n_gallery, 1) + 2, (n_query,), generator=generator)
        keys["gallery_ids"] = torch.randperm(n_gallery, generator=generator)
    if draw(st.booleans()):
        n_groups = draw(st.integers(1, 6))
        keys["query_groups"] = torch.randint(0, n_groups, (n_query,), generator=generator)
        keys["gallery_groups"] = torch.randint(0, n_groups, (n_gallery,), generator=generator)
    return keys


@given(data=st.data())
def test_knn_equals_its_twin_bit_for_bit(data):
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    metric = data.draw(st.sampled_from(EXACT_METRICS), label="metric")
    n_query = data.draw(st.sampled_from([0, 1, 2, 5, 13]), label="n_query")
    n_gallery = data.draw(SIZES, label="n_gallery")
    dim = data.draw(st.integers(1, 19), label="dim")
    scale_exp = data.draw(st.integers(*_scale_range(dtype, metric)), label="scale_exp")
    queries = data.draw(grid_embeddings(n_query, dim, dtype, scale_exp), label="queries")
    gallery = data.draw(grid_embeddings(n_gallery, dim, dtype, scale_exp), label="gallery")
    if n_query and n_gallery and data.draw(st.booleans(), label="queries are gallery rows"):
        queries = gallery[torch.arange(n_query) % n_gallery].clone()
    k = data.draw(st.integers(1, n_gallery + 3), label="k")
    keys = data.draw(exclusion_keys(n_query, n_gallery), label="keys")
    if data.draw(st.booleans(), label="non-contiguous"):
        queries = torch.cat([queries, queries], dim=1)[:, ::2]
        gallery = torch.cat([gallery, gallery], dim=1)[:, ::2]
    dist, idx = ops.knn(queries, gallery, k, metric, **keys)
    ref_dist, ref_idx = reference.knn(queries, gallery, k, metric, **keys)
    assert torch.equal(idx, ref_idx)
    # Squared distances are exact on the grid; the square root may round the last bit differently
    # (the op takes it in float64, the twin in the input dtype).
    tolerance = 0 if metric != "euclidean" else 2 * torch.finfo(dtype).eps
    torch.testing.assert_close(dist, ref_dist, rtol=tolerance, atol=0)


@given(data=st.data())
def test_knn_cosine_agrees_with_its_twin(data):
    """Cosine divides by norms, so values agree to rounding and indices up to near-ties; the cosine is
    scale-free, at every magnitude (only an all-zero row counts as zero)."""
    n_gallery = data.draw(st.sampled_from([1, 2, 7, 31, 257]), label="n_gallery")
    dim = data.draw(st.integers(1, 12), label="dim")
    scale_exp = data.draw(st.integers(*_scale_range(torch.float64)), label="scale_exp")
    queries = data.draw(grid_embeddings(5, dim, torch.float64, scale_exp), label="queries")
    gallery = data.draw(grid_embeddings(n_gallery, dim, torch.float64, scale_exp), label="gallery")
    k = data.draw(st.integers(1, n_gallery + 2), label="k")
    dist, idx = ops.knn(queries, gallery, k, "cosine")
    ref_dist, ref_idx = reference.knn(queries, gallery, k, "cosine")
    torch.testing.assert_close(dist, ref_dist, rtol=1e-12, atol=1e-12)
    assert torch.equal(idx < 0, ref_idx < 0)
    # Where indices differ, the two items are at the same distance (to rounding).
    full = reference.pairwise_distance(queries, gallery, "cosine")
    rows = torch.arange(5)[:, None].expand_as(idx)
    valid = idx >= 0
    torch.testing.assert_close(full[rows[valid], idx[valid]], full[rows[valid], ref_idx[valid]])


@given(data=st.data())
def test_pairwise_distance_equals_its_twin(data):
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    metric = data.draw(st.sampled_from(EXACT_METRICS), label="metric")
    n, m = data.draw(SIZES, label="n"), data.draw(st.sampled_from([0, 1, 3, 33, 130]), label="m")
    dim = data.draw(st.integers(1, 19), label="dim")
    scale_exp = data.draw(st.integers(*_scale_range(dtype, metric)), label="scale_exp")
    x1 = data.draw(grid_embeddings(n, dim, dtype, scale_exp), label="x1")
    x2 = data.draw(grid_embeddings(m, dim, dtype, scale_exp), label="x2")
    got, want = ops.pairwise_distance(x1, x2, metric), reference.pairwise_distance(x1, x2, metric)
    # sqrt and the recompute path may round the last bit differently from the twin's direct sum
    tolerance = 0 if metric != "euclidean" else 4 * torch.finfo(dtype).eps
    torch.testing.assert_close(got, want, rtol=tolerance, atol=0)


@given(data=st.data())
def test_hard_mining_equals_its_twin(data):
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    metric = data.draw(st.sampled_from(EXACT_METRICS), label="metric")
    batch = data.draw(st.sampled_from([1, 2, 3, 9, 64, 257]), label="batch")
    dim = data.draw(st.integers(1, 12), label="dim")
    scale_exp = data.draw(st.integers(*_scale_range(dtype)), label="scale_exp")
    x = data.draw(grid_embeddings(batch, dim, dtype, scale_exp), label="embeddings")
    n_classes = data.draw(st.integers(1, 8), label="n_classes")
    labels = torch.randint(
        0, n_classes, (batch,), generator=torch.Generator().manual_seed(data.draw(st.integers(0, 999)))
    )
    n_pos, n_neg = data.draw(st.integers(0, 5), label="n_pos"), data.draw(st.integers(0, 5), label="n_neg")
    got_pos, got_neg = ops.hard_mining(x, labels, n_pos, n_neg, metric)
    want_pos, want_neg = reference.hard_mining(x, labels, n_pos, n_neg, metric)
    assert torch.equal(got_pos, want_pos)
    assert torch.equal(got_neg, want_neg)


@given(data=st.data())
def test_relevance_and_metrics_equal_their_twins(data):
    n_query = data.draw(st.sampled_from([0, 1, 4, 37]), label="n_query")
    n_gallery = data.draw(st.sampled_from([1, 5, 60]), label="n_gallery")
    width = data.draw(st.integers(0, n_gallery), label="K")
    generator = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    order = torch.argsort(torch.rand(n_query, n_gallery, generator=generator), dim=1)[:, :width]
    lengths = torch.randint(0, width + 1, (n_query,), generator=generator)
    retrieved = order.masked_fill(torch.arange(width)[None, :] >= lengths[:, None], -1)
    n_labels = data.draw(st.integers(1, 6), label="n_labels")
    query_labels = torch.randint(0, n_labels, (n_query,), generator=generator)
    gallery_labels = torch.randint(0, n_labels, (n_gallery,), generator=generator)
    got = ops.retrieval_relevance(retrieved, query_labels, gallery_labels)
    want = reference.retrieval_relevance(retrieved, query_labels, gallery_labels)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    top_k = data.draw(st.lists(st.integers(1, n_gallery + 2), min_size=1, max_size=3), label="top_k")
    is_relevant, n_gt = got
    n_gt = torch.maximum(n_gt, is_relevant.sum(1))  # consistent inputs: hits never exceed n_gt
    metrics = ops.retrieval_metrics(is_relevant, n_gt, lengths, top_k, top_k, top_k)
    ref_metrics = reference.retrieval_metrics(is_relevant, n_gt, lengths, top_k, top_k, top_k)
    for value, ref_value in zip(metrics, ref_metrics):
        torch.testing.assert_close(value, ref_value, equal_nan=True)


@st.composite
def duplicated_rows(draw, n: int, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """[n, dim] made of a few distinct random rows (any float values), each repeated: exact ties."""
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    n_distinct = draw(st.integers(1, max(1, min(n, 6))))
    scale = 10.0 ** draw(st.integers(-6, 6))
    base = torch.randn(n_distinct, dim, generator=generator, dtype=torch.float64) * scale
    base += draw(st.sampled_from([0.0, 1.0, 100.0])) * scale  # away from the origin too
    return base[torch.randint(0, n_distinct, (n,), generator=generator)].to(dtype)


@given(data=st.data())
def test_identical_rows_are_returned_in_index_order(data):
    """Ties between identical rows go to the smaller index, whatever the values (knn, hard_mining)."""
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    metric = data.draw(st.sampled_from(["euclidean", "sqeuclidean", "cosine", "dot"]), label="metric")
    n = data.draw(st.sampled_from([2, 5, 9, 40, 300]), label="n")
    dim = data.draw(st.integers(1, 9), label="dim")
    x = data.draw(duplicated_rows(n, dim, dtype), label="rows")
    k = data.draw(st.integers(1, n), label="k")
    dist, idx = ops.knn(x, x, k, metric, torch.arange(n), torch.arange(n))
    _, ref_idx = reference.knn(x.double(), x.double(), k, metric, torch.arange(n), torch.arange(n))
    assert torch.equal(idx, ref_idx)
    labels = torch.randint(0, 3, (n,), generator=torch.Generator().manual_seed(n))
    got = ops.hard_mining(x, labels, 2, 2, metric)
    want = reference.hard_mining(x.double(), labels, 2, 2, metric)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
