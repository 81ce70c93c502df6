"""A host imitation, in PyTorch, of the selection of the CUDA ``hard_mining`` kernel
(csrc/mining/cuda/hard_mining_cuda.cu), run on numerically hostile inputs (issue 14) -- the way to test the
algorithm without a GPU.

What is imitated, step for step: the preparation (unit rows for the cosine, a power-of-two scaling for
data far from 1); the float32 GEMM of the rows, optionally with inputs rounded to TF32; the interval
``[v - E, v + E]`` of every ranking value ``v`` with the bound of csrc/common/distance_math.h for the
GEMM's precision; per anchor, the n-th largest lower end among positives and the n-th smallest upper end
among negatives (the limits); the candidates whose interval reaches the limit; their exact keys
(``dist::hardness_key``: a float64 sum in eight interleaved partial sums, which the CPU kernel computes bitwise the same);
and the choice of the n hardest by (exact key, index).

The selections are compared with the CPU kernel (``oml_fast.ops.hard_mining``, which must agree exactly:
same keys, same rule) and, where every distance is exact (integer grids), with the reference twin. The
old CUDA kernel, which chose from the float32 GEMM keys themselves, is imitated too, to show that these
inputs do break a selection that is not exact by construction.
"""

from __future__ import annotations

import math

import pytest
import torch

from oml_fast import reference
from oml_fast.ops import hard_mining
from oml_fast.reference.distance import scale_by_pow2, scale_exponent, unit_rows
from tests.ops.gemm_imitation import error_factor, order_by, ranking_terms, round_mantissa


def prepare(embeddings: torch.Tensor, metric: str) -> torch.Tensor:
    """hard_mining_common.h: prepare_mining_embeddings (float32 rows, unit rows for the cosine)."""
    x = embeddings.float()
    return unit_rows(x) if metric == "cosine" else scale_by_pow2(x, scale_exponent(x))


def hardness_keys(x: torch.Tensor, anchor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """distance_math.h: hardness_key of the anchor with every row, float64, term d summed into partial
    sum d % 8 and the eight added pairwise (bitwise the kernels' sums): (squared distances, -<a, y>)."""
    a, rows = x[anchor].double(), x.double()
    lanes = 8
    squared = torch.zeros(lanes, len(x), dtype=torch.float64)
    negated_dot = torch.zeros(lanes, len(x), dtype=torch.float64)
    for d in range(x.shape[1]):
        diff = a[d] - rows[:, d]
        squared[d % lanes] = squared[d % lanes] + diff * diff
        negated_dot[d % lanes] = negated_dot[d % lanes] + (-a[d]) * rows[:, d]

    def pairwise(p: torch.Tensor) -> torch.Tensor:
        return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))

    return pairwise(squared), pairwise(negated_dot)


def hardest(keys: torch.Tensor, ids: torch.Tensor, n: int) -> torch.Tensor:
    """The n smallest (key, index) pairs' indices, -1 padded (one side of pass 3)."""
    out = torch.full((n,), -1, dtype=torch.long)
    chosen = ids[order_by(keys, ids)][:n]
    out[: len(chosen)] = chosen
    return out


def imitate_cuda_hard_mining(
    embeddings, labels, n_positive, n_negative, metric="euclidean", mantissa_bits=24
):
    """(positives, negatives) the CUDA kernel returns, and the mean number of exact keys per anchor."""
    x = prepare(embeddings, metric)
    batch = len(x)
    euclidean = metric in ("euclidean", "sqeuclidean")
    alpha = error_factor(x.shape[1], mantissa_bits)
    bias, scale, e_self, e_cross = ranking_terms(x, metric if euclidean else "dot", alpha)
    norms = x.double().norm(dim=1)
    gemm_x = round_mantissa(x, mantissa_bits) if mantissa_bits < 24 else x
    products = (gemm_x @ gemm_x.T).double()  # the float32 GEMM (accumulation order aside)
    positives = torch.full((batch, n_positive), -1, dtype=torch.long)
    negatives = torch.full((batch, n_negative), -1, dtype=torch.long)
    n_exact = 0
    for anchor in range(batch):
        value = bias + scale * products[anchor]
        half = e_self + norms[anchor] * e_cross
        same = labels == labels[anchor]
        squared, negated_dot = hardness_keys(x, anchor)
        exact = squared if euclidean else negated_dot
        for side, n, out in ((1, n_positive, positives), (-1, n_negative, negatives)):
            members = (same & (torch.arange(batch) != anchor)) if side > 0 else ~same
            ids = torch.nonzero(members).flatten()
            if n == 0 or len(ids) == 0:
                continue
            # Pass 1 (min-form): positives -(v - E), negatives v + E; the n-th smallest, or +inf.
            bounds = -(value[ids] - half[ids]) if side > 0 else value[ids] + half[ids]
            limit = torch.sort(bounds).values[n - 1] if len(ids) >= n else math.inf
            # Pass 2: the candidates, whose interval reaches the limit.
            reach = -(value[ids] + half[ids]) if side > 0 else value[ids] - half[ids]
            candidates = ids[reach <= limit]
            n_exact += len(candidates)
            # Pass 3: by (exact key, index), positives by the negated key (largest first).
            keys = -exact[candidates] if side > 0 else exact[candidates]
            out[anchor] = hardest(keys, candidates, n)
    return positives, negatives, n_exact / batch


def imitate_gemm_key_hard_mining(embeddings, labels, n_positive, n_negative, mantissa_bits=24):
    """The old CUDA kernel (euclidean): the float32 keys |y|^2 - 2<x, y> themselves, no exact keys."""
    x = prepare(embeddings, "euclidean")
    gemm_x = round_mantissa(x, mantissa_bits) if mantissa_bits < 24 else x
    keys = (x * x).sum(1)[None, :] - 2 * (gemm_x @ gemm_x.T)
    batch = len(x)
    positives = torch.full((batch, n_positive), -1, dtype=torch.long)
    negatives = torch.full((batch, n_negative), -1, dtype=torch.long)
    for anchor in range(batch):
        same = labels == labels[anchor]
        pos_ids = torch.nonzero(same & (torch.arange(batch) != anchor)).flatten()
        neg_ids = torch.nonzero(~same).flatten()
        positives[anchor] = hardest(-keys[anchor, pos_ids].double(), pos_ids, n_positive)
        negatives[anchor] = hardest(keys[anchor, neg_ids].double(), neg_ids, n_negative)
    return positives, negatives


def far_from_origin(offset: float, noise: float, dim: int, batch: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = (offset + noise * torch.randn(batch, dim, generator=generator, dtype=torch.float64)).float()
    return x, torch.randint(0, 8, (batch,), generator=generator)


def assert_same(got, want):
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


HOSTILE = [
    pytest.param(1000.0, 0.01, 16, 24, id="offset1000-noise0.01-D16-fp32"),
    pytest.param(10.0, 0.1, 64, 11, id="offset10-noise0.1-D64-tf32"),
    pytest.param(1000.0, 0.01, 16, 11, id="offset1000-noise0.01-D16-tf32"),
]


@pytest.mark.parametrize("offset,noise,dim,bits", HOSTILE)
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "dot"])
def test_selection_equals_cpu_kernel_far_from_origin(offset, noise, dim, bits, metric):
    x, labels = far_from_origin(offset, noise, dim, 160)
    *got, _ = imitate_cuda_hard_mining(x, labels, 3, 4, metric, mantissa_bits=bits)
    assert_same(got, hard_mining(x, labels, 3, 4, metric))


def test_gemm_keys_were_not_exact():
    """Why the exact keys are needed: choosing from the float32 GEMM keys misses the hardest items."""
    x, labels = far_from_origin(1000.0, 0.01, 16, 160)
    want = hard_mining(x, labels, 1, 1)
    old = imitate_gemm_key_hard_mining(x, labels, 1, 1)
    wrong = (old[0] != want[0]).any(1) | (old[1] != want[1]).any(1)
    assert wrong.float().mean() > 0.5


@pytest.mark.parametrize("bits", [24, 11])
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "dot"])
def test_duplicates_and_ties_take_the_smaller_index(bits, metric):
    """Integer rows with many exact duplicates, scaled by 2^40 (magnitude scaling): every key is exact, so
    the ties are real and the reference twin must agree too."""
    generator = torch.Generator().manual_seed(4)
    base = torch.randint(-3, 4, (10, 5), generator=generator).double()
    x = (base[torch.randint(0, 10, (120,), generator=generator)] * 2.0**40).float()
    labels = torch.randint(0, 4, (120,), generator=generator)
    *got, _ = imitate_cuda_hard_mining(x, labels, 3, 5, metric, mantissa_bits=bits)
    assert_same(got, hard_mining(x, labels, 3, 5, metric))
    assert_same(got, reference.hard_mining(x.double(), labels, 3, 5, metric))


@pytest.mark.parametrize("bits", [24, 11])
def test_cosine_with_zero_rows_and_multiples(bits):
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(90, 6, generator=generator)
    x[10:20] = 0  # zero rows: cosine distance 1 to everything
    x[20:30] = x[3] * torch.arange(1, 11).float()[:, None]  # positive multiples: distance 0 to row 3
    x[30] = 1e-30  # a tiny row, normalised like any other
    labels = torch.randint(0, 3, (90,), generator=generator)
    *got, _ = imitate_cuda_hard_mining(x, labels, 2, 6, "cosine", mantissa_bits=bits)
    assert_same(got, hard_mining(x, labels, 2, 6, "cosine"))


def test_more_requested_than_there_are_items():
    """n above the number of positives / negatives: every item is a candidate, the rest is -1."""
    x, _ = far_from_origin(100.0, 0.1, 8, 40, seed=6)
    labels = torch.arange(40) % 2
    *got, _ = imitate_cuda_hard_mining(x, labels, 25, 30, mantissa_bits=11)
    assert_same(got, hard_mining(x, labels, 25, 30))
    assert (got[0][:, 19:] == -1).all() and (got[1][:, 20:] == -1).all()


def test_band_is_narrow_on_ordinary_data():
    """On ordinary data (digits-like scale, fp32 GEMM) only a handful of exact keys per anchor are needed."""
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(200, 32, generator=generator)
    labels = torch.randint(0, 10, (200,), generator=generator)
    *got, per_anchor = imitate_cuda_hard_mining(x, labels, 1, 1)
    assert_same(got, hard_mining(x, labels, 1, 1))
    assert per_anchor < 6
