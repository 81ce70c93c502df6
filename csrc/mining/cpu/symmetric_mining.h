// The symmetric panel path of the CPU hard_mining kernel: the Gram matrix of a batch with itself
// is symmetric, so each inner product is computed once and serves both of its anchors, which halves
// the GEMM work of the per-row path (B^2 / 2 + B * panel / 2 multiply-adds instead of B^2).
//
// Panel p covers anchors [i0, i0 + rows) and items [i0, B): one GEMM gives the products of its
// anchors with every item from i0 on ("direct" segments) and, transposed, the products of every
// later anchor with the panel's items ("transposed" segments). So every ordered pair (anchor, item)
// is seen exactly once, by whichever thread takes the panel.
//
// Each thread keeps, per anchor, the running n-th best bounds (common/distance_math.h error terms:
// the largest lower ends among positives, the smallest upper ends among negatives) and a short list
// of candidates: items whose error interval reached the running bound when seen. The bound only
// tightens, so every item whose interval reaches the final bound is in some thread's list; at the
// end the lists are filtered by the merged bound and ranked by float64 keys computed from the rows,
// exactly as the per-row path does (select_row.h). A row whose list overflows (many near-ties) is
// redone by the per-row path.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "mining/cpu/select_row.h"

namespace oml_fast::mining {

// Largest n_positive / n_negative the symmetric path keeps bounds for; larger ones take the per-row
// path.
constexpr int64_t kSymmetricMaxN = 8;

// Fills positives [B, n_positive] and negatives [B, n_negative] (row-major) for `x` ([B, D],
// contiguous, prepared by prepare_mining_embeddings).
template <typename scalar_t>
void mine_symmetric(const at::Tensor& x, const MiningJob<scalar_t>& job, int64_t* positives,
                    int64_t* negatives);

}  // namespace oml_fast::mining
