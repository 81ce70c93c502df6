// Input checks and preparation shared by the CPU and CUDA hard_mining kernels.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "common/checks.h"
#include "common/metric.h"
#include "common/scaling.h"

namespace oml_fast {

// n_positive / n_negative above the batch size only add padding columns (an anchor has at most B -
// 1 candidates); beyond this many they are rejected before the [B, n] outputs are allocated.
constexpr int64_t kMaxMiningPadding = int64_t{1} << 16;

inline Metric check_hard_mining_inputs(const at::Tensor& embeddings, const at::Tensor& labels,
                                       int64_t n_positive, int64_t n_negative,
                                       c10::string_view metric,
                                       const std::optional<at::Tensor>& anchor_mask) {
  check_embeddings(embeddings, "embeddings");
  const int64_t batch = embeddings.size(0);
  check_index_vector(labels, "labels", batch, embeddings.device());
  TORCH_CHECK_VALUE(n_positive >= 0, "`n_positive` must be >= 0, got ", n_positive);
  TORCH_CHECK_VALUE(n_negative >= 0, "`n_negative` must be >= 0, got ", n_negative);
  const int64_t max_count = std::max(batch, kMaxMiningPadding);
  TORCH_CHECK_VALUE(n_positive <= max_count, "`n_positive` must be at most max(B, ",
                    kMaxMiningPadding, ") = ", max_count,
                    " (an anchor has at most B - 1 positives), got ", n_positive);
  TORCH_CHECK_VALUE(n_negative <= max_count, "`n_negative` must be at most max(B, ",
                    kMaxMiningPadding, ") = ", max_count,
                    " (an anchor has at most B - 1 negatives), got ", n_negative);
  if (anchor_mask.has_value()) {
    const at::Tensor& mask = *anchor_mask;
    TORCH_CHECK_VALUE(mask.dim() == 1 && mask.size(0) == batch,
                      "`anchor_mask` must be a 1-D tensor of length ", batch, ", got ",
                      describe(mask));
    TORCH_CHECK_TYPE(mask.scalar_type() == at::kBool, "`anchor_mask` must be bool, got ",
                     describe(mask));
    TORCH_CHECK_VALUE(mask.device() == embeddings.device(), "`anchor_mask` must be on ",
                      embeddings.device(), ", got ", describe(mask));
  }
  return parse_metric(metric);
}

// Contiguous fp32/fp64 copy of the embeddings, ready for GEMM keys: rows are unit-normalised for
// the cosine metric (each row scaled to a largest |entry| of 1 first, so only an all-zero row
// counts as zero: it has distance 1 to everything); for the other metrics data far from 1 is scaled
// by a power of two (exact, and the keys only rank), so that squares neither overflow nor
// underflow.
inline at::Tensor prepare_mining_embeddings(const at::Tensor& embeddings, Metric metric) {
  at::Tensor x = embeddings;
  if (x.scalar_type() != at::kFloat && x.scalar_type() != at::kDouble) x = x.to(at::kFloat);
  if (metric == Metric::Cosine) {
    const at::Tensor row_max = at::amax(x.abs(), {1}, /*keepdim=*/true);
    x = x / at::where(row_max > 0, row_max, at::ones_like(row_max));
    x = x / x.norm(2, {1}, /*keepdim=*/true).clamp_min(kCosineEps);
    return x.contiguous();
  }
  x = x.contiguous();
  return dist::scale_by_pow2(x, dist::scale_exponent_of(x, x, x.scalar_type()));
}

// Rows per tile: the [rows, B] key buffer stays around 1M elements (4 MiB fp32, L2/L3-resident),
// 32..256 rows so that each GEMM is still efficient, and small batches still give every thread
// work.
inline int64_t mining_tile_rows(int64_t batch, int64_t threads) {
  int64_t rows = std::clamp<int64_t>((int64_t{1} << 20) / std::max<int64_t>(batch, 1), 32, 256);
  const int64_t per_thread =
      (batch + std::max<int64_t>(threads, 1) - 1) / std::max<int64_t>(threads, 1);
  return std::max<int64_t>(std::min(rows, per_thread), 1);
}

}  // namespace oml_fast
