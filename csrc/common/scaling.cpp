#include "common/scaling.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <algorithm>
#include <cmath>

#include "common/distance_math.h"

namespace oml_fast {
namespace dist {

double max_abs(const at::Tensor& x) {
  if (x.numel() == 0) return 0.0;
  // The infinity norm reduces without materialising |x|.
  return at::linalg_vector_norm(x, INFINITY).item<double>();
}

int scale_exponent_of(const at::Tensor& a, const at::Tensor& b, at::ScalarType dtype) {
  const double m = std::max(max_abs(a), max_abs(b));
  return dtype == at::kDouble ? scale_exponent<double>(m) : scale_exponent<float>(m);
}

void scale_by_pow2_(at::Tensor& x, int exponent) {
  // Steps of at most 2^100 keep the factor representable in float32; the intermediate results lie
  // between the input and the output, so nothing overflows that the output would not.
  while (exponent != 0) {
    const int step = std::clamp(exponent, -100, 100);
    x.mul_(std::ldexp(1.0, step));
    exponent -= step;
  }
}

at::Tensor scale_by_pow2(const at::Tensor& x, int exponent) {
  if (exponent == 0) return x;
  at::Tensor y = x.clone(at::MemoryFormat::Contiguous);
  scale_by_pow2_(y, exponent);
  return y;
}

int gemm_mantissa_bits(at::ScalarType dtype) {
  if (dtype == at::kDouble) return 53;
  switch (at::globalContext().float32MatmulPrecision()) {
    case at::Float32MatmulPrecision::HIGHEST:
      return 24;
    case at::Float32MatmulPrecision::HIGH:
      return 11;
    case at::Float32MatmulPrecision::MEDIUM:
      return 8;
  }
  return 8;
}

}  // namespace dist
}  // namespace oml_fast
