// retrieval_metrics on CUDA: one thread per query runs the shared per-query formula
// (retrieval/metric_formulas.h, the same code as the CPU kernel) over its row for every k at once.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "retrieval/metric_formulas.h"
#include "retrieval/retrieval_checks.h"

namespace oml_fast {
namespace {

constexpr int kThreads = 128;

__global__ void __launch_bounds__(kThreads)
    retrieval_metrics_kernel(const bool* __restrict__ is_relevant, int64_t width,
                             const int64_t* __restrict__ n_gt,
                             const int64_t* __restrict__ n_retrieved, int64_t n_query,
                             retrieval::TopKLists lists, float* __restrict__ cmc,
                             float* __restrict__ precision, float* __restrict__ map) {
  const int64_t q = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= n_query) return;
  retrieval::query_metrics(is_relevant + q * width, n_retrieved[q], n_gt[q], lists,
                           cmc + q * lists.n_cmc, precision + q * lists.n_precision,
                           map + q * lists.n_map);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> retrieval_metrics_cuda(
    const at::Tensor& is_relevant, const at::Tensor& n_gt, const at::Tensor& n_retrieved,
    at::IntArrayRef cmc_top_k, at::IntArrayRef precision_top_k, at::IntArrayRef map_top_k) {
  retrieval::check_metrics_inputs(is_relevant, n_gt, n_retrieved, cmc_top_k, precision_top_k,
                                  map_top_k);
  const c10::cuda::CUDAGuard device_guard(is_relevant.device());
  const int64_t n_query = is_relevant.size(0), width = is_relevant.size(1);
  if (n_query > 0) retrieval::check_metrics_values(is_relevant, n_gt, n_retrieved);
  // The three k lists, packed into one device array.
  std::vector<int64_t> packed(cmc_top_k.begin(), cmc_top_k.end());
  packed.insert(packed.end(), precision_top_k.begin(), precision_top_k.end());
  packed.insert(packed.end(), map_top_k.begin(), map_top_k.end());
  const int64_t max_k = *std::max_element(packed.begin(), packed.end());
  const at::Tensor device_k = at::tensor(packed, at::TensorOptions().dtype(at::kLong))
                                  .to(is_relevant.device(), /*non_blocking=*/false);
  const int64_t* k_ptr = device_k.const_data_ptr<int64_t>();
  const auto n_cmc = static_cast<int64_t>(cmc_top_k.size()),
             n_precision = static_cast<int64_t>(precision_top_k.size());
  const retrieval::TopKLists lists{k_ptr,
                                   n_cmc,
                                   k_ptr + n_cmc,
                                   n_precision,
                                   k_ptr + n_cmc + n_precision,
                                   static_cast<int64_t>(map_top_k.size()),
                                   max_k};
  const auto options = is_relevant.options().dtype(at::kFloat);
  at::Tensor cmc = at::empty({n_query, lists.n_cmc}, options);
  at::Tensor precision = at::empty({n_query, lists.n_precision}, options);
  at::Tensor map = at::empty({n_query, lists.n_map}, options);
  if (n_query == 0) return {cmc, precision, map};
  const at::Tensor rel = is_relevant.contiguous(), gt = n_gt.contiguous(),
                   length = n_retrieved.contiguous();
  const auto blocks = static_cast<unsigned>((n_query + kThreads - 1) / kThreads);
  retrieval_metrics_kernel<<<blocks, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      rel.const_data_ptr<bool>(), width, gt.const_data_ptr<int64_t>(),
      length.const_data_ptr<int64_t>(), n_query, lists, cmc.mutable_data_ptr<float>(),
      precision.mutable_data_ptr<float>(), map.mutable_data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {cmc, precision, map};
}

}  // namespace

TORCH_LIBRARY_IMPL(oml_fast, CUDA, m) { m.impl("retrieval_metrics", &retrieval_metrics_cuda); }

}  // namespace oml_fast
