#include "distance/cpu/distance_rows.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "common/simd.h"

namespace oml_fast::cpu {
namespace {

template <typename T, bool kSqrt>
__attribute__((always_inline)) inline int64_t euclidean_from_dot_impl(const T* dot, T sq_norm_a,
                                                                      const T* sq_norm_b, int64_t n,
                                                                      T ratio, T* out) {
  // One pass: squared distance, the cancellation test and the square root. Counting with an integer
  // sum and marking with a select (rather than branching) keeps the loop vectorisable.
  int64_t flagged = 0;
  for (int64_t j = 0; j < n; ++j) {
    const T norms = sq_norm_a + sq_norm_b[j];
    const T sq = std::max(norms - T(2) * dot[j], T(0));
    const bool lost = sq <= ratio * norms;
    flagged += lost;
    const T value = kSqrt ? std::sqrt(sq) : sq;
    out[j] = lost ? T(-1) : value;
  }
  return flagged;
}

template <typename T>
__attribute__((always_inline)) inline T exact_sq_euclidean_impl(const T* a, const T* b,
                                                                int64_t dim) {
  T sum = 0;
  for (int64_t d = 0; d < dim; ++d) {
    const T diff = a[d] - b[d];
    sum += diff * diff;
  }
  return sum;
}

}  // namespace

OML_FAST_MULTIVERSION int64_t euclidean_from_dot(const float* dot, float sq_norm_a,
                                                 const float* sq_norm_b, int64_t n, float ratio,
                                                 bool take_sqrt, float* out) {
  return take_sqrt
             ? euclidean_from_dot_impl<float, true>(dot, sq_norm_a, sq_norm_b, n, ratio, out)
             : euclidean_from_dot_impl<float, false>(dot, sq_norm_a, sq_norm_b, n, ratio, out);
}
OML_FAST_MULTIVERSION int64_t euclidean_from_dot(const double* dot, double sq_norm_a,
                                                 const double* sq_norm_b, int64_t n, double ratio,
                                                 bool take_sqrt, double* out) {
  return take_sqrt
             ? euclidean_from_dot_impl<double, true>(dot, sq_norm_a, sq_norm_b, n, ratio, out)
             : euclidean_from_dot_impl<double, false>(dot, sq_norm_a, sq_norm_b, n, ratio, out);
}

float exact_sq_euclidean(const float* a, const float* b, int64_t dim) {
  return exact_sq_euclidean_impl(a, b, dim);
}
double exact_sq_euclidean(const double* a, const double* b, int64_t dim) {
  return exact_sq_euclidean_impl(a, b, dim);
}

OML_FAST_MULTIVERSION void cosine_from_dot_inplace(float* x, int64_t n) {
  for (int64_t j = 0; j < n; ++j) x[j] = std::min(std::max(1.0f - x[j], 0.0f), 2.0f);
}
OML_FAST_MULTIVERSION void cosine_from_dot_inplace(double* x, int64_t n) {
  for (int64_t j = 0; j < n; ++j) x[j] = std::min(std::max(1.0 - x[j], 0.0), 2.0);
}

OML_FAST_MULTIVERSION void negate_inplace(float* x, int64_t n) {
  for (int64_t j = 0; j < n; ++j) x[j] = -x[j];
}
OML_FAST_MULTIVERSION void negate_inplace(double* x, int64_t n) {
  for (int64_t j = 0; j < n; ++j) x[j] = -x[j];
}

at::Tensor squared_norms(const at::Tensor& x) {
  const int64_t n = x.size(0);
  if (n < 2 * kNormRows) return x.mul(x).sum(1);
  at::Tensor out = at::empty({n}, x.options());
  for (int64_t start = 0; start < n;) {
    const int64_t rows = n - start < 2 * kNormRows ? n - start : kNormRows;
    const at::Tensor part = x.narrow(0, start, rows);
    at::Tensor dst = out.narrow(0, start, rows);
    at::sum_out(dst, part.mul(part), 1);
    start += rows;
  }
  return out;
}

}  // namespace oml_fast::cpu
