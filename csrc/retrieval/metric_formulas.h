// Per-query CMC@k, Precision@k and mAP@k (definitions: docs/metrics.md), shared by the CPU and the
// CUDA kernels so that both follow one formula. One pass over the query's retrieved list serves
// every k of every metric.
#pragma once

#include <cstdint>
#include <limits>

#if defined(__CUDACC__)
#define OML_FAST_HOST_DEVICE __host__ __device__
#else
#define OML_FAST_HOST_DEVICE
#endif

namespace oml_fast {
namespace retrieval {

struct TopKLists {
  const int64_t* cmc;
  int64_t n_cmc;
  const int64_t* precision;
  int64_t n_precision;
  const int64_t* map;
  int64_t n_map;
  int64_t max_k;  // the largest k of all three lists
};

// `relevant[i]` is g_{i+1} of metrics.md for i < n_retrieved (= L); `n_gt` the number of relevant
// candidates. Writes one value per k of each list.
OML_FAST_HOST_DEVICE inline void query_metrics(const bool* relevant, int64_t n_retrieved,
                                               int64_t n_gt, const TopKLists& lists, float* cmc,
                                               float* precision, float* map) {
  if (n_retrieved == 0) {
    // Nothing retrieved: a perfect result if there was nothing to find, a total miss otherwise.
    const float value = n_gt == 0 ? 1.0f : 0.0f;
    for (int64_t c = 0; c < lists.n_cmc; ++c) cmc[c] = value;
    for (int64_t c = 0; c < lists.n_precision; ++c) precision[c] = value;
    for (int64_t c = 0; c < lists.n_map; ++c) map[c] = value;
    return;
  }
  const int64_t last = lists.max_k < n_retrieved ? lists.max_k : n_retrieved;
  int64_t hits = 0;
  double precision_sum = 0;  // sum over relevant positions i of hits(i) / i
  for (int64_t i = 1; i <= last; ++i) {
    if (relevant[i - 1]) {
      ++hits;
      precision_sum += static_cast<double>(hits) / static_cast<double>(i);
    }
    // k' = min(k, L): the values at position i serve every k with k' == i.
    for (int64_t c = 0; c < lists.n_cmc; ++c) {
      const int64_t k = lists.cmc[c] < n_retrieved ? lists.cmc[c] : n_retrieved;
      if (k == i) cmc[c] = hits > 0 ? 1.0f : 0.0f;
    }
    for (int64_t c = 0; c < lists.n_precision; ++c) {
      const int64_t k = lists.precision[c] < n_retrieved ? lists.precision[c] : n_retrieved;
      if (k != i) continue;
      // Capped by the number of positives; 0/0 (every positive excluded) is NaN by definition.
      const int64_t denominator = n_gt < k ? n_gt : k;
      precision[c] =
          denominator > 0
              ? static_cast<float>(static_cast<double>(hits) / static_cast<double>(denominator))
              : std::numeric_limits<float>::quiet_NaN();
    }
    for (int64_t c = 0; c < lists.n_map; ++c) {
      const int64_t k = lists.map[c] < n_retrieved ? lists.map[c] : n_retrieved;
      if (k == i)
        map[c] = hits > 0 ? static_cast<float>(precision_sum / static_cast<double>(hits)) : 0.0f;
    }
  }
}

}  // namespace retrieval
}  // namespace oml_fast
