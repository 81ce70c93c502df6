// The CUDA twins of common/scaling.h:
//  * multiplication by a power of two whose exponent lives on the device
//    (dist::scale_exponent_tensor): the magnitude scaling of common/distance_math.h without reading
//    anything back to the host, so that the ops using it can be captured in CUDA graphs; ldexp is
//    exact unless the result overflows or becomes subnormal, whatever the exponent (no factor 2^e
//    is ever formed);
//  * float64 row norms of float32 / float64 rows without a float64 copy of the data
//    (at::linalg_vector_norm with a float64 dtype converts the whole input first).
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cstdint>

namespace oml_fast {
namespace dist {

constexpr int kPow2Threads = 256;

template <typename scalar_t>
__global__ void __launch_bounds__(kPow2Threads)
    ldexp_kernel(const scalar_t* __restrict__ in, scalar_t* __restrict__ out, int64_t n,
                 const int32_t* __restrict__ exponent, int multiplier) {
  const int e = multiplier * *exponent;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = ldexp(in[i], e);
}

// x * 2^(multiplier * exponent) as a new contiguous tensor (x: float32 or float64 on CUDA;
// exponent: int32 0-dim on the same device).
inline at::Tensor scaled_by_pow2(const at::Tensor& x, const at::Tensor& exponent, int multiplier) {
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "oml_fast scaled_by_pow2: float32 or float64 expected (internal error)");
  TORCH_CHECK(exponent.scalar_type() == at::kInt && exponent.numel() == 1 &&
                  exponent.device() == x.device(),
              "oml_fast scaled_by_pow2: an int32 exponent on the data's device expected (internal "
              "error)");
  const at::Tensor in = x.contiguous();
  at::Tensor out = at::empty_like(in, at::MemoryFormat::Contiguous);
  const int64_t n = in.numel();
  if (n == 0) return out;
  const int blocks =
      static_cast<int>(std::min<int64_t>((n + kPow2Threads - 1) / kPow2Threads, 65535));
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "scaled_by_pow2", [&] {
    ldexp_kernel<scalar_t><<<blocks, kPow2Threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        in.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), n,
        exponent.const_data_ptr<int32_t>(), multiplier);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

constexpr int kNormThreads = 256;
static_assert(kNormThreads % 32 == 0, "row_norms_kernel works in whole warps");

// One warp per row: the float64 sum of squares, then its square root.
template <typename scalar_t>
__global__ void __launch_bounds__(kNormThreads)
    row_norms_kernel(const scalar_t* __restrict__ x, int64_t n, int64_t dim,
                     double* __restrict__ out) {
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (row >= n) return;  // the whole warp leaves together
  double sum = 0;
  for (int64_t d = lane; d < dim; d += 32) {
    const double v = static_cast<double>(x[row * dim + d]);
    sum += v * v;
  }
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  if (lane == 0) out[row] = sqrt(sum);
}

// |x_i| in float64 for every row of a float32 / float64 [N, D] CUDA tensor.
inline at::Tensor row_norms_cuda(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 2 && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble),
              "oml_fast row_norms_cuda: a float32 / float64 matrix expected (internal error)");
  const at::Tensor in = x.contiguous();
  const int64_t n = in.size(0), dim = in.size(1);
  at::Tensor out = at::empty({n}, in.options().dtype(at::kDouble));
  if (n == 0) return out;
  const int64_t blocks = (n * 32 + kNormThreads - 1) / kNormThreads;
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "row_norms_cuda", [&] {
    row_norms_kernel<scalar_t>
        <<<static_cast<unsigned int>(blocks), kNormThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
            in.const_data_ptr<scalar_t>(), n, dim, out.mutable_data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace dist
}  // namespace oml_fast
