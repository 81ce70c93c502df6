// Sizes of the knn outputs and workspaces, shared by the CPU and CUDA kernels: `k` is checked
// against the gallery before anything is allocated, and the candidate buffers are sized from a
// byte budget rather than from k.
#pragma once

#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>

namespace oml_fast {
namespace retrieval {

// k > Ng is allowed (the rest of each row is padding), but only while the padded output stays
// below this many entries: beyond it, the request is almost certainly a mistake.
constexpr int64_t kMaxPaddedOutputEntries = int64_t{1} << 28;

inline void check_knn_size(int64_t n_query, int64_t n_gallery, int64_t k) {
  if (k <= n_gallery || n_query == 0) return;
  TORCH_CHECK_VALUE(k <= kMaxPaddedOutputEntries / n_query, "`k` (", k,
                    ") exceeds the gallery size (", n_gallery, ") and the padded output [", n_query,
                    ", k] would hold more than 2^28 entries; pass k <= ", n_gallery,
                    " (the gallery size)");
}

// Per-thread (CPU) or per-launch (CUDA) byte budget of the candidate buffers.
constexpr int64_t kCandidateBudgetBytes = int64_t{32} << 20;

// Candidates kept per query: room for 2k + 32 (a compaction then frees at least half of the
// buffer), never more than the whole gallery plus one (then the buffer never fills).
inline int64_t candidate_capacity(int64_t k, int64_t n_gallery) {
  const int64_t k_eff = std::max<int64_t>(std::min(k, n_gallery), 1);
  return std::min(2 * k_eff + 32, n_gallery + 1);
}

// Queries per tile so that their candidate buffers fit the budget (between 1 and `max_rows`).
inline int64_t queries_per_tile(int64_t capacity, int64_t bytes_per_candidate, int64_t max_rows) {
  const int64_t per_query = std::max<int64_t>(capacity * bytes_per_candidate, 1);
  return std::clamp<int64_t>(kCandidateBudgetBytes / per_query, 1, max_rows);
}

}  // namespace retrieval
}  // namespace oml_fast
