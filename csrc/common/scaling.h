// Host-side helpers of the distance maths (common/distance_math.h) that need ATen: the largest
// magnitude of the inputs, scaling by a power of two, and the precision of torch's float32 GEMMs.
#pragma once

#include <ATen/core/Tensor.h>

namespace oml_fast {
namespace dist {

// max |x| over every element, as a float64 (0 for an empty tensor). Reads the data once, without a
// copy.
double max_abs(const at::Tensor& x);

// The scaling exponent (distance_math.h: scale_exponent) for a pair of floating tensors, from the
// larger of their magnitudes; `dtype` is the dtype the kernel computes in (float32 or float64).
int scale_exponent_of(const at::Tensor& a, const at::Tensor& b, at::ScalarType dtype);

// scale_exponent_of computed where the data lives, as an int32 0-dim tensor on the inputs' device:
// no value is read back to the host, so CUDA ops that use it stay capturable in CUDA graphs (their
// kernels read the exponent through a pointer, common/cuda/scaling_cuda.cuh).
at::Tensor scale_exponent_tensor(const at::Tensor& a, const at::Tensor& b, at::ScalarType dtype);

// x * 2^exponent in a new tensor (exact unless it overflows or becomes subnormal); `x` itself when
// exponent == 0.
at::Tensor scale_by_pow2(const at::Tensor& x, int exponent);

// Multiplies `x` in place by 2^exponent, in steps that stay representable in float32.
void scale_by_pow2_(at::Tensor& x, int exponent);

// |x_i| in float64 for every row of a float32 / float64 [N, D] CPU tensor, without the float64
// copy of the data that at::linalg_vector_norm(..., dtype=float64) makes (CUDA twin:
// dist::row_norms_cuda in common/cuda/scaling_cuda.cuh).
at::Tensor row_norms(const at::Tensor& x);

// The same for a row-major [n, dim] buffer, written to out[0..n): what the CPU kernels that hold
// raw pointers (knn) call.
void row_norms(const float* x, int64_t n, int64_t dim, double* out);
void row_norms(const double* x, int64_t n, int64_t dim, double* out);

// Mantissa bits of the float32 GEMMs torch runs now: 24, or 11 / 8 when
// torch.set_float32_matmul_precision("high" / "medium") lets the backend use TF32 or bfloat16
// (oneDNN on CPUs with bf16 dot products, tensor cores on CUDA). float64 GEMMs: 53.
int gemm_mantissa_bits(at::ScalarType dtype);

}  // namespace dist
}  // namespace oml_fast
