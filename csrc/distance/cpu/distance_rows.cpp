#include "distance/cpu/distance_rows.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define OML_FAST_HAS_STREAMING_STORES 1
#endif

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

namespace {

#ifdef OML_FAST_HAS_STREAMING_STORES
// Non-temporal stores of SSE2 (every x86-64 CPU): 16 bytes each, aligned; the write-combining
// buffers assemble whole cache lines from them.
inline void stream_16_bytes(float* dst, const float* src) { _mm_stream_ps(dst, _mm_loadu_ps(src)); }
inline void stream_16_bytes(double* dst, const double* src) {
  _mm_stream_pd(dst, _mm_loadu_pd(src));
}
#endif

template <typename T>
void copy_to_output_impl(const T* src, T* dst, int64_t n, bool streaming) {
#ifdef OML_FAST_HAS_STREAMING_STORES
  if (streaming) {
    constexpr int64_t kLanes = 16 / sizeof(T);
    int64_t j = 0;
    for (; j < n && (reinterpret_cast<uintptr_t>(dst + j) & 15) != 0; ++j) dst[j] = src[j];
    for (; j + kLanes <= n; j += kLanes) stream_16_bytes(dst + j, src + j);
    for (; j < n; ++j) dst[j] = src[j];
    return;
  }
#endif
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(T));
}

}  // namespace

void copy_to_output(const float* src, float* dst, int64_t n, bool streaming) {
  copy_to_output_impl(src, dst, n, streaming);
}
void copy_to_output(const double* src, double* dst, int64_t n, bool streaming) {
  copy_to_output_impl(src, dst, n, streaming);
}

void streaming_done() {
#ifdef OML_FAST_HAS_STREAMING_STORES
  _mm_sfence();
#endif
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
