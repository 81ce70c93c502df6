// Per-query retrieval metrics (CMC@k, Precision@k, mAP@k) on the CPU: one pass per query over its
// retrieved list for all k at once, parallel over queries.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "retrieval/metric_formulas.h"
#include "retrieval/retrieval_checks.h"

namespace oml_fast {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> retrieval_metrics_cpu(
    const at::Tensor& is_relevant, const at::Tensor& n_gt, const at::Tensor& n_retrieved,
    at::IntArrayRef cmc_top_k, at::IntArrayRef precision_top_k, at::IntArrayRef map_top_k) {
  retrieval::check_metrics_inputs(is_relevant, n_gt, n_retrieved, cmc_top_k, precision_top_k,
                                  map_top_k);
  const int64_t n_query = is_relevant.size(0), width = is_relevant.size(1);
  const at::Tensor rel = is_relevant.contiguous(), gt = n_gt.contiguous(),
                   length = n_retrieved.contiguous();
  const int64_t* gt_p = gt.data_ptr<int64_t>();
  const int64_t* length_p = length.data_ptr<int64_t>();
  retrieval::check_metrics_values(rel, gt, length);
  const std::vector<int64_t> cmc_k(cmc_top_k.begin(), cmc_top_k.end());
  const std::vector<int64_t> precision_k(precision_top_k.begin(), precision_top_k.end());
  const std::vector<int64_t> map_k(map_top_k.begin(), map_top_k.end());
  const int64_t max_k = std::max({*std::max_element(cmc_k.begin(), cmc_k.end()),
                                  *std::max_element(precision_k.begin(), precision_k.end()),
                                  *std::max_element(map_k.begin(), map_k.end())});
  const retrieval::TopKLists lists{cmc_k.data(),
                                   static_cast<int64_t>(cmc_k.size()),
                                   precision_k.data(),
                                   static_cast<int64_t>(precision_k.size()),
                                   map_k.data(),
                                   static_cast<int64_t>(map_k.size()),
                                   max_k};
  const auto options = rel.options().dtype(at::kFloat);
  at::Tensor cmc = at::empty({n_query, lists.n_cmc}, options);
  at::Tensor precision = at::empty({n_query, lists.n_precision}, options);
  at::Tensor map = at::empty({n_query, lists.n_map}, options);
  const bool* rel_p = rel.data_ptr<bool>();
  float* cmc_p = cmc.data_ptr<float>();
  float* precision_p = precision.data_ptr<float>();
  float* map_p = map.data_ptr<float>();
  at::parallel_for(0, n_query, 512, [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end; ++q) {
      retrieval::query_metrics(rel_p + q * width, length_p[q], gt_p[q], lists,
                               cmc_p + q * lists.n_cmc, precision_p + q * lists.n_precision,
                               map_p + q * lists.n_map);
    }
  });
  return {cmc, precision, map};
}

}  // namespace

TORCH_LIBRARY_IMPL(oml_fast, CPU, m) { m.impl("retrieval_metrics", &retrieval_metrics_cpu); }

}  // namespace oml_fast
