// retrieval_relevance on CUDA, composed of ATen ops (no [Nq, Ng] matrix either).
//
// is_relevant is a gather and a compare. n_gt counts keys as on the CPU (inclusion-exclusion over
// "equal id" and "equal group", see relevance_cpu.cpp), but instead of hash maps each key column
// set (label), (label, id), (label, group), (label, id, group) of queries and gallery is mapped to
// dense codes with one sort-based `unique(dim=0)`, and the gallery codes are counted with
// `bincount`: O((Nq + Ng) log(Nq + Ng)) work, O(Nq + Ng) memory.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <vector>

#include "retrieval/retrieval_checks.h"

namespace oml_fast {
namespace {

// For every query: how many gallery items have the same key (all columns equal).
at::Tensor count_matching_keys(const std::vector<at::Tensor>& query_columns,
                               const std::vector<at::Tensor>& gallery_columns) {
  const int64_t n_query = query_columns[0].size(0);
  const at::Tensor keys = at::cat({at::stack(query_columns, 1), at::stack(gallery_columns, 1)}, 0);
  const auto unique = at::unique_dim(keys, 0, /*sorted=*/true, /*return_inverse=*/true);
  const at::Tensor& codes = std::get<1>(unique);
  const int64_t n_codes = std::get<0>(unique).size(0);
  const at::Tensor counts =
      at::bincount(codes.narrow(0, n_query, codes.size(0) - n_query), {}, n_codes);
  return counts.index_select(0, codes.narrow(0, 0, n_query)).to(at::kLong);
}

std::tuple<at::Tensor, at::Tensor> retrieval_relevance_cuda(
    const at::Tensor& retrieved, const at::Tensor& query_labels, const at::Tensor& gallery_labels,
    const std::optional<at::Tensor>& query_ids, const std::optional<at::Tensor>& gallery_ids,
    const std::optional<at::Tensor>& query_groups,
    const std::optional<at::Tensor>& gallery_groups) {
  const auto [has_ids, has_groups] =
      retrieval::check_relevance_inputs(retrieved, query_labels, gallery_labels, query_ids,
                                        gallery_ids, query_groups, gallery_groups);
  const c10::cuda::CUDAGuard device_guard(retrieved.device());
  const int64_t n_query = retrieved.size(0), n_gallery = gallery_labels.size(0);
  if (retrieved.numel() > 0) retrieval::check_retrieved_indices(retrieved, n_gallery);
  const at::Tensor valid = retrieved >= 0;
  at::Tensor is_relevant;
  if (n_gallery == 0) {
    is_relevant = at::zeros_like(retrieved, retrieved.options().dtype(at::kBool));
  } else {
    const at::Tensor labels_of_retrieved =
        gallery_labels.index_select(0, retrieved.clamp_min(0).reshape(-1)).view(retrieved.sizes());
    is_relevant = valid & (labels_of_retrieved == query_labels.unsqueeze(1));
  }
  at::Tensor n_gt = at::zeros({n_query}, retrieved.options());
  if (n_query == 0 || n_gallery == 0) return {is_relevant, n_gt};
  n_gt = count_matching_keys({query_labels}, {gallery_labels});
  if (has_ids)
    n_gt -= count_matching_keys({query_labels, *query_ids}, {gallery_labels, *gallery_ids});
  if (has_groups)
    n_gt -= count_matching_keys({query_labels, *query_groups}, {gallery_labels, *gallery_groups});
  if (has_ids && has_groups)
    n_gt += count_matching_keys({query_labels, *query_ids, *query_groups},
                                {gallery_labels, *gallery_ids, *gallery_groups});
  return {is_relevant, n_gt};
}

}  // namespace

TORCH_LIBRARY_IMPL(oml_fast, CUDA, m) { m.impl("retrieval_relevance", &retrieval_relevance_cuda); }

}  // namespace oml_fast
