// Row-wise building blocks that turn GEMM output (inner products) into distances on the CPU.
// Shared by the pairwise-distance, kNN and mining kernels, which all compute a tile of inner
// products with a GEMM and then convert it while it is still in cache.
#pragma once

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "common/metric.h"

namespace oml_fast::cpu {

// Outputs at least this large are written with streaming stores (copy_to_output): they cannot stay
// in cache anyway, and a streaming store does not first read the line it writes, which halves the
// memory traffic of the copy.
constexpr int64_t kStreamingBytes = int64_t(32) << 20;

// dst[j] = src[j] for j < n; with `streaming`, through non-temporal stores where the CPU has them
// (call streaming_done() before another thread reads dst).
void copy_to_output(const float* src, float* dst, int64_t n, bool streaming);
void copy_to_output(const double* src, double* dst, int64_t n, bool streaming);
// Orders this thread's streaming stores before whatever it does next (a fence where needed).
void streaming_done();

// Entries whose approximate squared distance is at most `ratio` * (|a|^2 + |b|^2) lost too many
// digits to the cancellation in |a|^2 + |b|^2 - 2<a, b> and are recomputed from the differences
// (which also makes identical rows give exactly 0). The ratio: dist::recompute_ratio
// (common/distance_math.h).

// out[j] = max(sq_norm_a + sq_norm_b[j] - 2 dot[j], 0) for j < n, its square root when
// `take_sqrt`, or -1 where that squared distance is at most ratio * (|a|^2 + |b|^2) (see above);
// `out` may alias `dot`. Returns how many entries are marked -1.
int64_t euclidean_from_dot(const float* dot, float sq_norm_a, const float* sq_norm_b, int64_t n,
                           float ratio, bool take_sqrt, float* out);
int64_t euclidean_from_dot(const double* dot, double sq_norm_a, const double* sq_norm_b, int64_t n,
                           double ratio, bool take_sqrt, double* out);

// Exact sum_d (a[d] - b[d])^2.
float exact_sq_euclidean(const float* a, const float* b, int64_t dim);
double exact_sq_euclidean(const double* a, const double* b, int64_t dim);

// Recomputes the entries of one row that euclidean_from_dot marked -1, from the differences: row[j]
// for gallery rows b + j * dim (squared, or its square root when `take_sqrt`).
template <typename T>
inline void recompute_marked(T* row, const T* a, const T* b, int64_t n, int64_t dim,
                             bool take_sqrt) {
  for (int64_t j = 0; j < n; ++j) {
    if (row[j] < T(0)) {
      const T exact = exact_sq_euclidean(a, b + j * dim, dim);
      row[j] = take_sqrt ? std::sqrt(exact) : exact;
    }
  }
}

// x[j] = min(max(1 - x[j], 0), 2): cosine distance from the cosine of unit vectors.
void cosine_from_dot_inplace(float* x, int64_t n);
void cosine_from_dot_inplace(double* x, int64_t n);

// x[j] = -x[j].
void negate_inplace(float* x, int64_t n);
void negate_inplace(double* x, int64_t n);

// Turns one row of GEMM output (inner products of query row `a` with the gallery rows `b`, in
// place) into distances of `metric`; `sq_norm_a` / `sq_norm_b` are the squared norms (read only by
// the euclidean metrics). The one conversion of pairwise_distance and of every fused caller, so all
// give the same values.
template <typename T>
inline void convert_row(Metric metric, T* row, int64_t cols, const T* a, const T* b, T sq_norm_a,
                        const T* sq_norm_b, int64_t dim, T ratio) {
  switch (metric) {
    case Metric::Euclidean:
    case Metric::SqEuclidean: {
      const bool take_sqrt = metric == Metric::Euclidean;
      if (euclidean_from_dot(row, sq_norm_a, sq_norm_b, cols, ratio, take_sqrt, row) > 0)
        recompute_marked(row, a, b, cols, dim, take_sqrt);
      break;
    }
    case Metric::Cosine:
      cosine_from_dot_inplace(row, cols);
      break;
    case Metric::Dot:
      negate_inplace(row, cols);
      break;
  }
}

// Rows of the slices in which squared norms are computed: no embedding-sized temporary (20 MB at
// 40k x 128 float32).
constexpr int64_t kNormRows = 4096;

// x.mul(x).sum(1) ([N, D] -> [N], the dtype of x) in slices of kNormRows to 2 * kNormRows - 1 rows
// (or the whole tensor when shorter): every slice has thousands of rows, so the reduction runs each
// row's sum alone, in the same order as over the whole tensor. pairwise_distance and the fused FNMR
// pass both take their norms here, so their distances agree bit for bit.
at::Tensor squared_norms(const at::Tensor& x);

}  // namespace oml_fast::cpu
