"""A host imitation, in PyTorch, of the candidate selection of the CUDA ``knn`` kernel
(csrc/retrieval/cuda/knn_cuda.cu), run on the numerically hostile inputs of issue 14 -- the way to test
the algorithm without a GPU.

What is imitated, step for step: the GEMM of the (mean-centred, for the euclidean metrics) data in float32,
optionally with inputs rounded to TF32 (what ``allow_tf32`` / ``set_float32_matmul_precision("high")``
gives); the per-item interval ``[v - E, v + E]`` of every ranking value with the bound of
csrc/common/distance_math.h for the GEMM's precision; the per-query block that admits, 256 columns at a
time, every non-excluded item whose lower end is at most the threshold, and merges when its buffer fills
(threshold = the largest upper end among the k smallest lower ends; items above it dropped); the overflow
flag when more than ``list_capacity`` items stay inside the band, which sends the query to the exact
fallback; and the finish (exact float64 distances of the kept items, sorted by (distance, index)).

The path for k above the on-chip limit (``knn_large_k``: buffers sized from shapes alone, rows with more
candidates than W flagged on the device and answered from the whole gallery) is imitated as well.

The old kernel (a fixed margin of k + 32 candidates ranked by uncentred fp32 GEMM values) is imitated too,
to show that these inputs do break a selection that is not exact by construction.
"""

from __future__ import annotations

import math

import pytest
import torch

from oml_fast import reference
from tests.ops.gemm_imitation import error_factor, order_by, ranking_terms, round_mantissa

THREADS = 256  # kThreads: columns a block admits per step
GALLERY_CHUNK = 8192  # kGalleryChunk: columns per GEMM / kernel launch


def exact_topk(queries, gallery, k, metric, excluded, dist=None):
    """The exact fallback (and the definition): float64 distances, (distance, index) order."""
    if dist is None:
        dist = reference.pairwise_distance(queries.double(), gallery.double(), metric)
    dist = dist.masked_fill(excluded, math.inf)
    order = torch.sort(dist, dim=1, stable=True).indices[:, :k]
    return order.masked_fill(torch.gather(dist, 1, order) == math.inf, -1)


def merge(lower, upper, index, k_eff, threshold):
    """One merge of the select kernel: sort list + buffer by (lower end, index); the threshold becomes
    the largest upper end among the k smallest lower ends; entries above it are dropped."""
    order = order_by(lower, index)
    lower, upper, index = lower[order], upper[order], index[order]
    if len(lower) >= k_eff:
        threshold = min(threshold, float(upper[:k_eff].max()))
    keep = lower <= threshold
    return lower[keep], upper[keep], index[keep], threshold


def intervals(queries, gallery, metric, mantissa_bits):
    """[Nq, Ng] lower and upper ends of every ranking value, as the kernels compute them (acc_t = float32)."""
    q, g = queries.float(), gallery.float()
    if metric in ("euclidean", "sqeuclidean"):
        centre = g.double().mean(0).float()  # distances are unchanged; no offset cancellation
        q, g = q - centre, g - centre
    alpha = error_factor(q.shape[1], mantissa_bits)
    bias, scale, e_self, e_cross = ranking_terms(g, metric, alpha)
    q_norm = q.double().norm(dim=1)
    gemm_q, gemm_g = (
        (round_mantissa(q, mantissa_bits), round_mantissa(g, mantissa_bits)) if mantissa_bits < 24 else (q, g)
    )
    products = (gemm_q @ gemm_g.T).double()  # float32 GEMM (accumulation order aside)
    values = (bias + scale * products).float()  # the kernel's acc_t arithmetic
    half = (e_self[None, :] + q_norm[:, None] * e_cross[None, :]).float()
    lower, upper_of = values - half, values + half
    return lower, upper_of


def imitate_cuda_knn(
    queries, gallery, k, metric="euclidean", excluded=None, mantissa_bits=24, list_capacity=None
):
    """Indices [Nq, k] the CUDA kernel returns, and how many queries overflowed into the fallback."""
    n_query, n_gallery = len(queries), len(gallery)
    k_eff = min(k, n_gallery)
    capacity = list_capacity or min(2 * k_eff + 64, n_gallery)
    excluded = torch.zeros(n_query, n_gallery, dtype=torch.bool) if excluded is None else excluded
    lower, upper_of = intervals(queries, gallery, metric, mantissa_bits)
    exact_all = reference.pairwise_distance(queries.double(), gallery.double(), metric)  # float64, exact
    out = torch.full((n_query, k), -1, dtype=torch.long)
    overflowed = 0
    for row in range(n_query):
        kept_l, kept_u, kept_i = torch.empty(0), torch.empty(0), torch.empty(0, dtype=torch.long)
        threshold, overflow = math.inf, False

        new_l, new_u, new_i = [], [], []
        for start in range(0, n_gallery, THREADS):
            cols = torch.arange(start, min(start + THREADS, n_gallery))
            admit = (lower[row, cols] <= threshold) & ~excluded[row, cols]
            new_l.append(lower[row, cols][admit])
            new_u.append(upper_of[row, cols][admit])
            new_i.append(cols[admit])
            n_new = sum(len(t) for t in new_i)
            chunk_end = (start + THREADS) % GALLERY_CHUNK == 0 or start + THREADS >= n_gallery
            buffer_full = (
                n_new > 2 * THREADS - THREADS
            )  # buffer of >= 2 blocks; merge before the next could overflow
            if n_new and (buffer_full or chunk_end):
                kept_l, kept_u, kept_i, threshold = merge(
                    torch.cat([kept_l, *new_l]),
                    torch.cat([kept_u, *new_u]),
                    torch.cat([kept_i, *new_i]),
                    k_eff,
                    threshold,
                )
                new_l, new_u, new_i = [], [], []
                if len(kept_i) > capacity:  # the block flags the query and stops working on it
                    overflow = True
                    break
        if overflow:
            overflowed += 1
            out[row] = exact_topk(None, None, k, metric, excluded[row : row + 1], exact_all[row : row + 1])[0]
            continue
        exact = exact_all[row, kept_i]
        order = order_by(exact, kept_i)[:k]
        out[row, : len(order)] = kept_i[order]
    return out, overflowed


def imitate_fixed_margin_knn(queries, gallery, k, mantissa_bits=24, margin=32):
    """The old kernel: uncentred fp32 GEMM values |g|^2 - 2<q, g>, the k + 32 smallest kept, recomputed."""
    q, g = queries.float(), gallery.float()
    if mantissa_bits < 24:
        q, g = round_mantissa(q, mantissa_bits), round_mantissa(g, mantissa_bits)
    values = (g.double().norm(dim=1) ** 2).float() - 2 * (q @ g.T)
    candidates = torch.topk(values, min(k + margin, len(g)), dim=1, largest=False).indices
    exact = torch.stack(
        [
            reference.pairwise_distance(queries[i : i + 1].double(), gallery[c].double())[0]
            for i, c in enumerate(candidates)
        ]
    )
    order = torch.sort(exact, dim=1, stable=True).indices[:, :k]
    return torch.gather(candidates, 1, order)


def far_from_origin(offset: float, noise: float, dim: int, n_gallery: int, n_query: int = 30, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    gallery = (offset + noise * torch.randn(n_gallery, dim, generator=generator, dtype=torch.float64)).float()
    queries = (offset + noise * torch.randn(n_query, dim, generator=generator, dtype=torch.float64)).float()
    return queries, gallery


HOSTILE = [
    pytest.param(1000.0, 0.01, 16, 24, id="offset1000-noise0.01-D16-fp32"),
    pytest.param(10.0, 0.1, 64, 11, id="offset10-noise0.1-D64-tf32"),
    pytest.param(1000.0, 0.01, 16, 11, id="offset1000-noise0.01-D16-tf32"),
]


@pytest.mark.parametrize("offset,noise,dim,bits", HOSTILE)
def test_selection_is_exact_on_hostile_inputs(offset, noise, dim, bits):
    queries, gallery = far_from_origin(offset, noise, dim, 2000)
    excluded = torch.zeros(len(queries), len(gallery), dtype=torch.bool)
    want = exact_topk(queries, gallery, 10, "euclidean", excluded)
    got, _ = imitate_cuda_knn(queries, gallery, 10, mantissa_bits=bits)
    assert torch.equal(got, want)


def test_fixed_margin_was_not_exact():
    """Issue 14's finding, reproduced: the old selection misses true neighbours on these inputs."""
    queries, gallery = far_from_origin(1000.0, 0.01, 16, 2000)
    excluded = torch.zeros(len(queries), len(gallery), dtype=torch.bool)
    want = exact_topk(queries, gallery, 10, "euclidean", excluded)
    old = imitate_fixed_margin_knn(queries, gallery, 10)
    assert (old == want).all(1).sum() < len(queries) // 2


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine", "dot"])
def test_selection_with_ties_outliers_and_exclusions(metric):
    generator = torch.Generator().manual_seed(1)
    gallery = torch.randn(700, 8, generator=generator)
    gallery[100:140] = gallery[7]  # 41 exact duplicates: near-ties beyond the list's k
    gallery[300] *= 1000  # an outlier norm
    gallery[301] = 0  # a zero row (cosine: distance 1 to everything)
    queries = torch.cat([gallery[:12], torch.zeros(1, 8)])
    excluded = torch.zeros(len(queries), len(gallery), dtype=torch.bool)
    excluded[torch.arange(12), torch.arange(12)] = True
    want = exact_topk(queries, gallery, 5, metric, excluded)
    got, _ = imitate_cuda_knn(queries, gallery, 5, metric, excluded, mantissa_bits=11)
    assert torch.equal(got, want)


def test_overflow_goes_to_the_exact_fallback():
    """More near-ties than the list holds: the query is flagged and answered exactly."""
    gallery = torch.ones(900, 4)
    gallery[::7] += 1e-7
    queries = torch.ones(3, 4)
    excluded = torch.zeros(3, 900, dtype=torch.bool)
    got, overflowed = imitate_cuda_knn(queries, gallery, 10, list_capacity=64)
    assert overflowed == 3
    assert torch.equal(got, exact_topk(queries, gallery, 10, "euclidean", excluded))


def imitate_large_k_knn(queries, gallery, k, metric="euclidean", excluded=None, mantissa_bits=24, width=None):
    """knn_large_k (k above the on-chip limit): the k-th smallest upper end is the threshold; the W smallest
    lower ends are recomputed exactly; a row with more than W items inside the band is flagged on the
    device and answered from the exact distances of the whole gallery. Returns (indices, flagged rows)."""
    n_gallery = len(gallery)
    k_eff = min(k, n_gallery)
    width = width or min(n_gallery, 2 * k_eff + 64)
    n_take = min(k, width)
    excluded = torch.zeros(len(queries), n_gallery, dtype=torch.bool) if excluded is None else excluded
    lower, upper = intervals(queries, gallery, metric, mantissa_bits)
    lower, upper = lower.masked_fill(excluded, math.inf), upper.masked_fill(excluded, math.inf)
    threshold = torch.topk(upper, k_eff, dim=1, largest=False).values[:, -1:]
    flagged = ((lower <= threshold) & ~excluded).sum(1) > width
    candidates = torch.topk(lower, width, dim=1, largest=False).indices
    exact_all = reference.pairwise_distance(queries.double(), gallery.double(), metric).masked_fill(
        excluded, math.inf
    )
    dist = torch.gather(exact_all, 1, candidates)
    by_index = torch.sort(candidates, dim=1)
    by_dist = torch.sort(torch.gather(dist, 1, by_index.indices), dim=1, stable=True)
    idx = torch.gather(by_index.values, 1, by_dist.indices)[:, :n_take]
    sorted_dist = by_dist.values[:, :n_take]
    fallback = torch.sort(exact_all.masked_fill(~flagged[:, None], math.inf), dim=1, stable=True)
    sorted_dist = torch.where(flagged[:, None], fallback.values[:, :n_take], sorted_dist)
    idx = torch.where(flagged[:, None], fallback.indices[:, :n_take], idx).masked_fill(
        sorted_dist == math.inf, -1
    )
    out = torch.full((len(queries), k), -1, dtype=torch.long)
    out[:, :n_take] = idx
    return out, int(flagged.sum())


@pytest.mark.parametrize("offset,noise,dim,bits", HOSTILE)
def test_large_k_selection_is_exact_on_hostile_inputs(offset, noise, dim, bits):
    queries, gallery = far_from_origin(offset, noise, dim, 2000, n_query=8)
    excluded = torch.zeros(len(queries), len(gallery), dtype=torch.bool)
    excluded[:, ::5] = True
    got, _ = imitate_large_k_knn(queries, gallery, 1100, excluded=excluded, mantissa_bits=bits)
    assert torch.equal(got, exact_topk(queries, gallery, 1100, "euclidean", excluded))


def test_large_k_overflow_goes_to_the_exact_fallback():
    """Near-ties beyond W (forced small here; the kernel's W = min(Ng, 2k + 64) is never below k): the
    flagged rows come from the whole gallery's exact distances. k > Ng pads with -1."""
    gallery = torch.ones(900, 4)
    gallery[::7] += 1e-7
    queries = torch.cat([torch.ones(2, 4), torch.randn(2, 4, generator=torch.Generator().manual_seed(3))])
    excluded = torch.zeros(4, 900, dtype=torch.bool)
    got, flagged = imitate_large_k_knn(queries, gallery, 100, width=150)
    assert flagged >= 2
    assert torch.equal(got, exact_topk(queries, gallery, 100, "euclidean", excluded))
    got, _ = imitate_large_k_knn(queries, gallery, 950)
    assert torch.equal(got[:, :900], exact_topk(queries, gallery, 900, "euclidean", excluded))
    assert (got[:, 900:] == -1).all()
