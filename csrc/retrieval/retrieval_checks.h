// Input validation of the retrieval ops (knn, retrieval_relevance, retrieval_metrics), shared by
// the CPU and the CUDA kernels so that bad input gives the same message on every device. Built on
// the project-wide checks of common/checks.h.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <optional>
#include <utility>

#include "common/checks.h"
#include "common/metric.h"

namespace oml_fast {
namespace retrieval {

// An optional pair of exclusion keys (query_ids with gallery_ids, ...): both or neither, each a 1-D
// int64 vector of the right length. Returns whether the pair is given.
inline bool check_key_pair(const std::optional<at::Tensor>& query_key, const char* query_name,
                           const std::optional<at::Tensor>& gallery_key, const char* gallery_name,
                           int64_t n_query, int64_t n_gallery, const at::Device& device) {
  check_both_or_neither(query_key, query_name, gallery_key, gallery_name);
  check_optional_index_vector(query_key, query_name, n_query, device);
  check_optional_index_vector(gallery_key, gallery_name, n_gallery, device);
  return query_key.has_value();
}

// Checks shared by the CPU and CUDA knn kernels. Returns the metric.
inline Metric check_knn_inputs(const at::Tensor& queries, const at::Tensor& gallery, int64_t k,
                               c10::string_view metric, const std::optional<at::Tensor>& query_ids,
                               const std::optional<at::Tensor>& gallery_ids,
                               const std::optional<at::Tensor>& query_groups,
                               const std::optional<at::Tensor>& gallery_groups) {
  check_embeddings(queries, "queries");
  check_embeddings(gallery, "gallery");
  check_embedding_pair(queries, "queries", gallery, "gallery");
  TORCH_CHECK_VALUE(k >= 1, "`k` must be a positive integer, got ", k);
  const Metric parsed = parse_metric(metric);
  const auto n_query = queries.size(0), n_gallery = gallery.size(0);
  check_key_pair(query_ids, "query_ids", gallery_ids, "gallery_ids", n_query, n_gallery,
                 queries.device());
  check_key_pair(query_groups, "query_groups", gallery_groups, "gallery_groups", n_query, n_gallery,
                 queries.device());
  return parsed;
}

// Checks shared by the CPU and CUDA retrieval_relevance kernels. Returns (has_ids, has_groups).
inline std::pair<bool, bool> check_relevance_inputs(
    const at::Tensor& retrieved, const at::Tensor& query_labels, const at::Tensor& gallery_labels,
    const std::optional<at::Tensor>& query_ids, const std::optional<at::Tensor>& gallery_ids,
    const std::optional<at::Tensor>& query_groups,
    const std::optional<at::Tensor>& gallery_groups) {
  TORCH_CHECK_VALUE(retrieved.dim() == 2, "`retrieved` must be a 2-D tensor [Nq, k], got ",
                    describe(retrieved));
  TORCH_CHECK_TYPE(retrieved.scalar_type() == at::kLong, "`retrieved` must be int64, got ",
                   describe(retrieved));
  const auto device = retrieved.device();
  const int64_t n_query = retrieved.size(0);
  check_index_vector(query_labels, "query_labels", n_query, device);
  TORCH_CHECK_VALUE(gallery_labels.dim() == 1, "`gallery_labels` must be a 1-D tensor [Ng], got ",
                    describe(gallery_labels));
  const int64_t n_gallery = gallery_labels.size(0);
  check_index_vector(gallery_labels, "gallery_labels", n_gallery, device);
  const bool has_ids = check_key_pair(query_ids, "query_ids", gallery_ids, "gallery_ids", n_query,
                                      n_gallery, device);
  const bool has_groups = check_key_pair(query_groups, "query_groups", gallery_groups,
                                         "gallery_groups", n_query, n_gallery, device);
  return {has_ids, has_groups};
}

inline void check_top_k(at::IntArrayRef top_k, const char* name) {
  bool valid = !top_k.empty();
  for (int64_t k : top_k) valid = valid && k > 0;
  TORCH_CHECK_VALUE(valid, "`", name, "` must be a non-empty sequence of positive integers, got ",
                    top_k);
}

// `retrieved` holds gallery indices or -1 (reads the data; reports the first bad entry in row-major
// order, on every device).
inline void check_retrieved_indices(const at::Tensor& retrieved, int64_t n_gallery) {
  const at::Tensor bad = retrieved.masked_select((retrieved < -1) | (retrieved >= n_gallery));
  TORCH_CHECK_INDEX(bad.numel() == 0, "`retrieved` must hold gallery indices in [0, ", n_gallery,
                    ") or -1 for padding, got ", bad[0].item<int64_t>());
}

// n_retrieved in [0, width], n_gt >= 0, and n_gt at least the number of relevant items among the
// first n_retrieved (else precision and cmc exceed 1). Reads the data; reports the first bad query,
// on every device.
inline void check_metrics_values(const at::Tensor& is_relevant, const at::Tensor& n_gt,
                                 const at::Tensor& n_retrieved) {
  const int64_t width = is_relevant.size(1);
  const at::Tensor bad_length = ((n_retrieved < 0) | (n_retrieved > width)).nonzero();
  if (bad_length.numel() > 0) {
    const int64_t q = bad_length[0][0].item<int64_t>();
    TORCH_CHECK_VALUE(false, "`n_retrieved` must be in [0, ", width,
                      "] (the width of `is_relevant`), got ", n_retrieved[q].item<int64_t>(),
                      " for query ", q);
  }
  const at::Tensor bad_gt = (n_gt < 0).nonzero();
  if (bad_gt.numel() > 0) {
    const int64_t q = bad_gt[0][0].item<int64_t>();
    TORCH_CHECK_VALUE(false, "`n_gt` must be non-negative, got ", n_gt[q].item<int64_t>(),
                      " for query ", q);
  }
  const at::Tensor positions = at::arange(width, n_retrieved.options());
  const at::Tensor hits =
      (is_relevant & (positions.unsqueeze(0) < n_retrieved.unsqueeze(1))).sum(1);
  const at::Tensor bad_hits = (hits > n_gt).nonzero();
  if (bad_hits.numel() > 0) {
    const int64_t q = bad_hits[0][0].item<int64_t>();
    TORCH_CHECK_VALUE(false, "`n_gt` must be at least the number of relevant retrieved items, got ",
                      n_gt[q].item<int64_t>(), " with ", hits[q].item<int64_t>(),
                      " relevant retrieved for query ", q);
  }
}

// Checks shared by the CPU and CUDA retrieval_metrics kernels (the value checks of n_gt /
// n_retrieved read the data: check_metrics_values).
inline void check_metrics_inputs(const at::Tensor& is_relevant, const at::Tensor& n_gt,
                                 const at::Tensor& n_retrieved, at::IntArrayRef cmc_top_k,
                                 at::IntArrayRef precision_top_k, at::IntArrayRef map_top_k) {
  TORCH_CHECK_VALUE(is_relevant.dim() == 2, "`is_relevant` must be a 2-D tensor [Nq, K], got ",
                    describe(is_relevant));
  TORCH_CHECK_TYPE(is_relevant.scalar_type() == at::kBool, "`is_relevant` must be bool, got ",
                   describe(is_relevant));
  check_index_vector(n_gt, "n_gt", is_relevant.size(0), is_relevant.device());
  check_index_vector(n_retrieved, "n_retrieved", is_relevant.size(0), is_relevant.device());
  check_top_k(cmc_top_k, "cmc_top_k");
  check_top_k(precision_top_k, "precision_top_k");
  check_top_k(map_top_k, "map_top_k");
}

// One window [lower, upper] split in n_bins bins of an FNMR@FMR pass (fnmr_common.h).
inline void check_fnmr_window(double lower, double upper, int64_t n_bins) {
  TORCH_CHECK_VALUE(lower <= upper, "`lower` must be <= `upper` (neither NaN), got ", lower,
                    " and ", upper);
  TORCH_CHECK_VALUE(n_bins >= 1, "`n_bins` must be a positive integer, got ", n_bins);
  // Every thread keeps its own histogram (24 bytes a slot): the cap bounds a pass's memory before
  // anything is allocated (FNMR@FMR uses 2**16).
  TORCH_CHECK_VALUE(n_bins <= (int64_t{1} << 20), "`n_bins` must be at most 1048576 (2**20), got ",
                    n_bins);
  TORCH_CHECK_VALUE(n_bins == 1 || (std::isfinite(lower) && std::isfinite(upper)),
                    "`n_bins` > 1 needs a finite window, got [", lower, ", ", upper, "]");
}

// Checks shared by the CPU and CUDA `_pair_distance_histogram` kernels (fnmr_common.h). Returns
// (has_ids, has_groups).
inline std::pair<bool, bool> check_pair_distance_histogram_inputs(
    const at::Tensor& dist, const at::Tensor& query_labels, const at::Tensor& gallery_labels,
    const std::optional<at::Tensor>& query_ids, const std::optional<at::Tensor>& gallery_ids,
    const std::optional<at::Tensor>& query_groups, const std::optional<at::Tensor>& gallery_groups,
    double lower, double upper, int64_t n_bins) {
  TORCH_CHECK_VALUE(dist.dim() == 2, "`dist` must be a 2-D tensor [rows, Ng], got ",
                    describe(dist));
  TORCH_CHECK_TYPE(at::isFloatingType(dist.scalar_type()),
                   "`dist` must be float16, bfloat16, float32 or float64, got ", describe(dist));
  const auto device = dist.device();
  const int64_t rows = dist.size(0), n_gallery = dist.size(1);
  check_index_vector(query_labels, "query_labels", rows, device);
  check_index_vector(gallery_labels, "gallery_labels", n_gallery, device);
  const bool has_ids =
      check_key_pair(query_ids, "query_ids", gallery_ids, "gallery_ids", rows, n_gallery, device);
  const bool has_groups = check_key_pair(query_groups, "query_groups", gallery_groups,
                                         "gallery_groups", rows, n_gallery, device);
  check_fnmr_window(lower, upper, n_bins);
  return {has_ids, has_groups};
}

}  // namespace retrieval
}  // namespace oml_fast
