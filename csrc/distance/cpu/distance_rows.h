// Row-wise building blocks that turn GEMM output (inner products) into distances on the CPU.
// Shared by the pairwise-distance, kNN and mining kernels, which all compute a tile of inner
// products with a GEMM and then convert it while it is still in cache.
#pragma once

#include <cstdint>

namespace oml_fast::cpu {

// Entries whose approximate squared distance is at most `ratio` * (|a|^2 + |b|^2) lost too many
// digits to the cancellation in |a|^2 + |b|^2 - 2<a, b> and are recomputed from the differences
// (which also makes identical rows give exactly 0). The ratio: dist::recompute_ratio
// (common/distance_math.h).

// out[j] = max(sq_norm_a + sq_norm_b[j] - 2 dot[j], 0) for j < n (`out` may alias `dot`).
// Returns how many entries need the exact recompute.
int64_t sq_euclidean_from_dot(const float* dot, float sq_norm_a, const float* sq_norm_b, int64_t n,
                              float ratio, float* out);
int64_t sq_euclidean_from_dot(const double* dot, double sq_norm_a, const double* sq_norm_b,
                              int64_t n, double ratio, double* out);

// Whether out[j] (from sq_euclidean_from_dot) must be recomputed exactly.
template <typename T>
inline bool needs_recompute(T sq_distance, T sq_norm_a, T sq_norm_b, T ratio) {
  return sq_distance <= ratio * (sq_norm_a + sq_norm_b);
}

// Exact sum_d (a[d] - b[d])^2.
float exact_sq_euclidean(const float* a, const float* b, int64_t dim);
double exact_sq_euclidean(const double* a, const double* b, int64_t dim);

// Recomputes the entries of one row flagged by needs_recompute: row[j] for gallery rows b + j *
// dim.
template <typename T>
inline void recompute_small_sq_euclidean(T* row, const T* a, T sq_norm_a, const T* b,
                                         const T* sq_norm_b, int64_t n, int64_t dim, T ratio) {
  for (int64_t j = 0; j < n; ++j) {
    if (needs_recompute(row[j], sq_norm_a, sq_norm_b[j], ratio)) {
      row[j] = exact_sq_euclidean(a, b + j * dim, dim);
    }
  }
}

// x[j] = sqrt(x[j]).
void sqrt_inplace(float* x, int64_t n);
void sqrt_inplace(double* x, int64_t n);

// x[j] = min(max(1 - x[j], 0), 2): cosine distance from the cosine of unit vectors.
void cosine_from_dot_inplace(float* x, int64_t n);
void cosine_from_dot_inplace(double* x, int64_t n);

// x[j] = -x[j].
void negate_inplace(float* x, int64_t n);
void negate_inplace(double* x, int64_t n);

}  // namespace oml_fast::cpu
