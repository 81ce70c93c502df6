// Input validation and small shared pieces of the retrieval ops (knn, retrieval_relevance,
// retrieval_metrics), used by both the CPU and the CUDA kernels so that bad input gives the same
// message on every device.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Optional.h>

#include <string>

namespace oml_fast {
namespace retrieval {

enum class KnnMetric { Euclidean, SqEuclidean, Cosine, Dot };

inline KnnMetric parse_knn_metric(c10::string_view metric) {
  if (metric == "euclidean") return KnnMetric::Euclidean;
  if (metric == "sqeuclidean") return KnnMetric::SqEuclidean;
  if (metric == "cosine") return KnnMetric::Cosine;
  if (metric == "dot") return KnnMetric::Dot;
  TORCH_CHECK(false, "`metric` must be one of ('euclidean', 'sqeuclidean', 'cosine', 'dot'), got '",
              std::string(metric), "'");
  return KnnMetric::Euclidean;  // unreachable
}

// Norms below this count as zero for the cosine metric (cos with a zero vector is 0), as in the
// reference twin (oml_fast/reference/distance.py, COSINE_EPS).
constexpr double kCosineEps = 1e-12;

inline std::string describe(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "] " + std::string(c10::toString(t.scalar_type()));
}

inline void check_embeddings(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 2, "`", name, "` must be a 2-D float tensor [N, D], got ", describe(t));
  TORCH_CHECK(at::isFloatingType(t.scalar_type()),
              "`", name, "` must be float64, float32, float16 or bfloat16, got ", describe(t));
}

// `query_x` / `gallery_x` are a pair of exclusion keys: both are given or neither.
inline bool check_key_pair(const c10::optional<at::Tensor>& query_key, const c10::optional<at::Tensor>& gallery_key,
                           int64_t n_query, int64_t n_gallery, const at::Device& device, const char* query_name,
                           const char* gallery_name) {
  const bool has_query = query_key.has_value(), has_gallery = gallery_key.has_value();
  TORCH_CHECK_VALUE(has_query == has_gallery, "`", query_name, "` and `", gallery_name,
              "` must be given together (or both left out), got only `", has_query ? query_name : gallery_name, "`");
  if (!has_query) return false;
  auto check_one = [&](const at::Tensor& t, const char* name, int64_t n) {
    TORCH_CHECK(t.dim() == 1 && t.size(0) == n && t.scalar_type() == at::kLong, "`", name,
                "` must be a 1-D int64 tensor of length ", n, ", got ", describe(t));
    TORCH_CHECK(t.device() == device, "`", name, "` must be on ", device, ", got ", t.device());
  };
  check_one(*query_key, query_name, n_query);
  check_one(*gallery_key, gallery_name, n_gallery);
  return true;
}

inline void check_labels(const at::Tensor& t, const char* name, int64_t n, const at::Device& device) {
  TORCH_CHECK(t.dim() == 1 && (n < 0 || t.size(0) == n) && t.scalar_type() == at::kLong, "`", name,
              "` must be a 1-D int64 tensor", n >= 0 ? " of length " + std::to_string(n) : std::string(),
              ", got ", describe(t));
  TORCH_CHECK(t.device() == device, "`", name, "` must be on ", device, ", got ", t.device());
}

// Checks shared by the CPU and CUDA knn kernels. Returns the metric.
inline KnnMetric check_knn_inputs(const at::Tensor& queries, const at::Tensor& gallery, int64_t k,
                                  c10::string_view metric, const c10::optional<at::Tensor>& query_ids,
                                  const c10::optional<at::Tensor>& gallery_ids,
                                  const c10::optional<at::Tensor>& query_groups,
                                  const c10::optional<at::Tensor>& gallery_groups) {
  check_embeddings(queries, "queries");
  check_embeddings(gallery, "gallery");
  TORCH_CHECK(queries.size(1) == gallery.size(1), "`queries` and `gallery` must have the same embedding size D, got ",
              describe(queries), " and ", describe(gallery));
  TORCH_CHECK(queries.scalar_type() == gallery.scalar_type(), "`queries` and `gallery` must have the same dtype, got ",
              describe(queries), " and ", describe(gallery));
  TORCH_CHECK(queries.device() == gallery.device(), "`queries` and `gallery` must be on the same device, got ",
              queries.device(), " and ", gallery.device());
  TORCH_CHECK(k >= 1, "`k` must be a positive integer, got ", k);
  const auto n_query = queries.size(0), n_gallery = gallery.size(0);
  check_key_pair(query_ids, gallery_ids, n_query, n_gallery, queries.device(), "query_ids", "gallery_ids");
  check_key_pair(query_groups, gallery_groups, n_query, n_gallery, queries.device(), "query_groups",
                 "gallery_groups");
  return parse_knn_metric(metric);
}

// NaN or inf in an embedding would make every distance of its row meaningless; we refuse them.
inline void check_finite(const at::Tensor& t, const char* name) {
  TORCH_CHECK(at::isfinite(t).all().item<bool>(), "`", name,
              "` contains NaN or inf values; knn needs finite embeddings");
}

inline void check_top_k(at::IntArrayRef top_k, const char* name) {
  bool valid = !top_k.empty();
  for (int64_t k : top_k) valid = valid && k > 0;
  TORCH_CHECK_VALUE(valid, "`", name, "` must be a non-empty sequence of positive integers, got ", top_k);
}

// Checks shared by the CPU and CUDA retrieval_metrics kernels (value checks of n_gt / n_retrieved
// need the data and are done by each kernel).
inline void check_metrics_inputs(const at::Tensor& is_relevant, const at::Tensor& n_gt, const at::Tensor& n_retrieved,
                                 at::IntArrayRef cmc_top_k, at::IntArrayRef precision_top_k,
                                 at::IntArrayRef map_top_k) {
  TORCH_CHECK(is_relevant.dim() == 2 && is_relevant.scalar_type() == at::kBool,
              "`is_relevant` must be a 2-D bool tensor [Nq, k], got ", describe(is_relevant));
  check_labels(n_gt, "n_gt", is_relevant.size(0), is_relevant.device());
  check_labels(n_retrieved, "n_retrieved", is_relevant.size(0), is_relevant.device());
  check_top_k(cmc_top_k, "cmc_top_k");
  check_top_k(precision_top_k, "precision_top_k");
  check_top_k(map_top_k, "map_top_k");
}

}  // namespace retrieval
}  // namespace oml_fast
