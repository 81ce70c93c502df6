// CUDA kernel of pairwise_distance: one cuBLAS GEMM (through ATen) for the inner products, then an
// elementwise epilogue that turns them into distances and recomputes, from the differences, the
// euclidean entries that the GEMM expansion cannot resolve. float16 / bfloat16 inputs are
// accumulated and converted in float32; the output has the input dtype.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "common/checks.h"
#include "common/cuda/scaling_cuda.cuh"
#include "common/distance_math.h"
#include "common/scaling.h"
#include "distance/pairwise_distance.h"

namespace oml_fast {
namespace {

constexpr int kThreads = 256;

// The recompute rule is the CPU kernel's (dist::recompute_ratio, common/distance_math.h); the
// kernel is templated on the metric (no per-element branch on it). `exponent` (device memory, null
// for the cosine) undoes the magnitude scaling of the inputs in acc_t, before the cast to the
// output dtype.
template <Metric kMetric, typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kThreads)
    distance_epilogue_kernel(const acc_t* __restrict__ dot, const acc_t* __restrict__ sq_norm_a,
                             const acc_t* __restrict__ sq_norm_b, const acc_t* __restrict__ a,
                             const acc_t* __restrict__ b, scalar_t* __restrict__ out, int64_t n,
                             int64_t m, int64_t dim, acc_t ratio,
                             const int32_t* __restrict__ exponent) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= n * m) return;
  const int64_t i = index / m, j = index % m;
  const acc_t value = dot[index];
  acc_t result;
  if constexpr (kMetric == Metric::Euclidean || kMetric == Metric::SqEuclidean) {
    const acc_t norms = sq_norm_a[i] + sq_norm_b[j];
    acc_t sq = max(norms - acc_t(2) * value, acc_t(0));
    if (sq <= ratio * norms) {
      sq = 0;
      const acc_t* row_a = a + i * dim;
      const acc_t* row_b = b + j * dim;
      for (int64_t d = 0; d < dim; ++d) {
        const acc_t diff = row_a[d] - row_b[d];
        sq += diff * diff;
      }
    }
    result = kMetric == Metric::Euclidean ? sqrt(sq) : sq;
  } else if constexpr (kMetric == Metric::Cosine) {
    result = min(max(acc_t(1) - value, acc_t(0)), acc_t(2));
  } else {
    result = -value;
  }
  if constexpr (kMetric != Metric::Cosine) {
    // dist::unscale_distance with the exponent read on the device; ldexp is exact.
    result = ldexp(result, (kMetric == Metric::Euclidean ? -1 : -2) * *exponent);
  }
  out[index] = static_cast<scalar_t>(result);
}

at::Tensor pairwise_distance_cuda(const at::Tensor& x1, const at::Tensor& x2,
                                  c10::string_view metric_name) {
  const Metric metric = parse_metric(metric_name);
  check_pairwise_distance_inputs(x1, x2);
  const c10::cuda::CUDAGuard device_guard(x1.device());
  const int64_t n = x1.size(0), m = x2.size(0), dim = x1.size(1);
  at::Tensor out = at::empty({n, m}, x1.options());
  if (n == 0 || m == 0) return out;
  if (dim == 0) return out.fill_(metric == Metric::Cosine ? 1.0 : 0.0);

  const auto acc_type = x1.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor a = x1.detach().to(acc_type);
  at::Tensor b = x2.detach().to(acc_type);
  // Magnitudes far from 1 are scaled by a power of two first (as on the CPU), with the exponent
  // computed on the device: nothing is read back to the host, so the op can be captured in a CUDA
  // graph. The cosine normalises each row instead.
  at::Tensor exponent;
  if (metric == Metric::Cosine) {
    a = unit_rows(a).contiguous();
    b = unit_rows(b).contiguous();
  } else {
    exponent = dist::scale_exponent_tensor(a, b, acc_type);
    a = dist::scaled_by_pow2(a, exponent, 1);
    b = dist::scaled_by_pow2(b, exponent, 1);
  }
  const at::Tensor sq_norm_a = a.mul(a).sum(1), sq_norm_b = b.mul(b).sum(1);
  const at::Tensor dot = at::mm(a, b.t());

  const int mantissa_bits = dist::gemm_mantissa_bits(acc_type);
  const int64_t blocks = (n * m + kThreads - 1) / kThreads;
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x1.scalar_type(), "pairwise_distance_cuda", [&] {
        using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
        dispatch_metric(metric, [&](auto kind) {
          distance_epilogue_kernel<decltype(kind)::value, scalar_t, acc_t>
              <<<blocks, kThreads, 0, stream>>>(
                  dot.const_data_ptr<acc_t>(), sq_norm_a.const_data_ptr<acc_t>(),
                  sq_norm_b.const_data_ptr<acc_t>(), a.const_data_ptr<acc_t>(),
                  b.const_data_ptr<acc_t>(), out.mutable_data_ptr<scalar_t>(), n, m, dim,
                  static_cast<acc_t>(dist::recompute_ratio<acc_t>(dim, mantissa_bits)),
                  exponent.defined() ? exponent.const_data_ptr<int32_t>() : nullptr);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
      });
  return out;
}

// pairwise_distance.out on CUDA: the caching allocator already reuses the tile's memory, so a copy
// keeps the kernel above the only one.
at::Tensor& pairwise_distance_out_cuda(const at::Tensor& x1, const at::Tensor& x2,
                                       c10::string_view metric_name, at::Tensor& out) {
  check_pairwise_distance_inputs(x1, x2);
  check_distance_out(x1, x2, out);
  out.copy_(pairwise_distance_cuda(x1, x2, metric_name));
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(oml_fast, CUDA, m) {
  m.impl("pairwise_distance", &pairwise_distance_cuda);
  m.impl("pairwise_distance.out", &pairwise_distance_out_cuda);
  m.impl("_pairwise_distance_backward", &pairwise_distance_backward);
}

}  // namespace oml_fast
