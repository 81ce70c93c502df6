#include "common/scaling.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/distance_math.h"

namespace oml_fast {
namespace dist {

double max_abs(const at::Tensor& x) {
  if (x.numel() == 0) return 0.0;
  // aminmax is one vectorised pass (the infinity norm's reduction is ~15x slower on CPU); both
  // propagate NaN.
  const auto [lowest, highest] = at::aminmax(x);
  const double lo = lowest.item<double>(), hi = highest.item<double>();
  if (std::isnan(lo) || std::isnan(hi)) return std::numeric_limits<double>::quiet_NaN();
  return std::max(std::abs(lo), std::abs(hi));
}

int scale_exponent_of(const at::Tensor& a, const at::Tensor& b, at::ScalarType dtype) {
  const double m = std::max(max_abs(a), max_abs(b));
  return dtype == at::kDouble ? scale_exponent<double>(m) : scale_exponent<float>(m);
}

at::Tensor scale_exponent_tensor(const at::Tensor& a, const at::Tensor& b, at::ScalarType dtype) {
  auto largest_of = [](const at::Tensor& t) {
    return t.numel() == 0 ? at::zeros({}, t.options().dtype(at::kDouble))
                          : at::linalg_vector_norm(t, INFINITY).to(at::kDouble);
  };
  const at::Tensor largest = at::maximum(largest_of(a), largest_of(b));
  // largest = m 2^e with m in [0.5, 1): ilogb(largest) = e - 1 (scale_exponent above).
  const at::Tensor ilogb = std::get<1>(at::frexp(largest)) - 1;
  const int safe = dtype == at::kDouble ? SafeRange<double>::kSafeExp : SafeRange<float>::kSafeExp;
  const at::Tensor keep =
      (largest == 0) | at::logical_not(at::isfinite(largest)) | ((ilogb >= -safe) & (ilogb < safe));
  return at::where(keep, at::zeros_like(ilogb), -ilogb).to(at::kInt);
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

namespace {

template <typename T>
void row_norms_of(const T* x, int64_t n, int64_t dim, double* out) {
  at::parallel_for(0, n, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double sum = 0;
      for (int64_t d = 0; d < dim; ++d) {
        const double v = static_cast<double>(x[i * dim + d]);
        sum += v * v;
      }
      out[i] = std::sqrt(sum);
    }
  });
}

}  // namespace

void row_norms(const float* x, int64_t n, int64_t dim, double* out) {
  row_norms_of(x, n, dim, out);
}

void row_norms(const double* x, int64_t n, int64_t dim, double* out) {
  row_norms_of(x, n, dim, out);
}

at::Tensor row_norms(const at::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 2 &&
                  (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble),
              "oml_fast row_norms: a float32 / float64 CPU matrix expected (internal error)");
  const at::Tensor in = x.contiguous();
  at::Tensor out = at::empty({in.size(0)}, in.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "row_norms", [&] {
    row_norms(in.const_data_ptr<scalar_t>(), in.size(0), in.size(1),
              out.mutable_data_ptr<double>());
  });
  return out;
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
