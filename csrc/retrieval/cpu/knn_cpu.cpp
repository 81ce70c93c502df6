// Streaming exact k-nearest-neighbour search on the CPU.
//
// For a tile of queries and a tile of gallery rows, one GEMM gives the inner products; an epilogue
// turns them into a per-query "ranking value" (a monotone function of the distance, cheaper than
// the distance itself) and compares them, 8 at a time, against the query's current threshold. The
// few that pass the threshold are checked against the exclusions and appended to the query's
// candidate buffer. Only the outputs, the candidate buffers and one GEMM tile per thread are ever
// allocated.
//
// Exactness. The GEMM ranking value v_j of gallery item j has a rounding error bounded per item and
// query, E_j = e_self_j + |q| e_cross_j (common/distance_math.h), so each item has an interval
// [v_j - E_j, v_j + E_j] that holds its exact value. The buffer stores lower ends; the threshold is
// the k-th smallest upper end among the kept candidates, and an item is kept while its lower end
// does not exceed it: that set provably contains the exact top k. A per-item band means that one
// gallery row of a huge norm widens only its own interval, not every query's. At the end (or when
// near-ties overflow the buffer) the distances of the kept candidates are recomputed directly in
// float64 and sorted by (distance, gallery index), which gives exact values, exact ties and the
// smaller-index tie rule.
//
// Screening precision: on CPUs with AVX512-BF16 (run-time detection) the float32 search screens
// with a bfloat16 GEMM (retrieval/cpu/bf16_gemm.h: about 4x the float32 GEMM's speed here) and the
// wider band of dist::bf16_error_factor; the exact resolve is the same, so are the results.
// By default only where the data's mean does not dominate its spread (float32_screen);
// OML_FAST_KNN_SCREEN=fp32 turns it off, =bf16 forces it on (emulated where the CPU lacks the
// instructions, to test the algorithm anywhere), =bf16-emulated forces the emulation.
//
// Magnitudes: data far from 1 (float32 outside [2^-20, 2^20], float64 outside [2^-200, 2^200]) is
// searched as a copy scaled by a power of two, so that neither the GEMM nor the norms overflow or
// go subnormal; exact distances come from the original float32 data (float64 holds every square of
// a float32) or, for float64, from the scaled copy with the scaling undone.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define OML_FAST_X86 1
#endif

#include "common/distance_math.h"
#include "common/scaling.h"
#include "common/simd.h"
#include "retrieval/cpu/bf16_gemm.h"
#include "retrieval/knn_workspace.h"
#include "retrieval/retrieval_checks.h"

namespace oml_fast {
namespace {

// Tile sizes: the [kQueryTile, kGalleryTile] float tile (1 MiB) stays in L2 (or close by) between
// the GEMM that writes it and the epilogue that reads it; MKL repacks the gallery tile once per
// GEMM call, so taller query tiles make that cost smaller. With a large k the query tile shrinks so
// that the candidate buffers fit their byte budget (retrieval/knn_workspace.h).
constexpr int64_t kQueryTile = 256;
// The bfloat16 kernel does not repack: shorter query tiles (8 steps of its 12 rows) keep the
// [96, 1024] tile (384 KiB) in L2 for the scan that follows.
constexpr int64_t kBf16QueryTile = 96;
constexpr int64_t kGalleryTile = 1024;
// Up to this k, the first threshold comes from a sorted list of the k best (else nth_element).
constexpr int64_t kSmallK = 32;

// Exclusion keys for one query: a gallery item with an equal id or an equal group is skipped.
struct Exclusions {
  const int64_t* query_ids = nullptr;
  const int64_t* gallery_ids = nullptr;
  const int64_t* query_groups = nullptr;
  const int64_t* gallery_groups = nullptr;

  inline bool excluded(int64_t q, int64_t g) const {
    return (query_ids && query_ids[q] == gallery_ids[g]) ||
           (query_groups && query_groups[q] == gallery_groups[g]);
  }
};

// Writes the indices j (offset by `base`) and lower ends l = bias_lo[j] + scale[j] * s[j] -
// nq * e_cross[j] of every j with l <= threshold. Returns how many were written.
template <typename T>
int64_t scan_row_scalar(const T* s, const T* bias_lo, const T* scale, const T* e_cross, T nq,
                        int64_t n, T threshold, int64_t base, int64_t* out_index, T* out_value) {
  int64_t count = 0;
  for (int64_t j = 0; j < n; ++j) {
    const T v = bias_lo[j] + scale[j] * s[j] - nq * e_cross[j];
    if (v <= threshold) {
      out_index[count] = base + j;
      out_value[count] = v;
      ++count;
    }
  }
  return count;
}

#ifdef OML_FAST_X86
// AVX2 version of scan_row_scalar for float: 32 values per step, one branch per step in the common
// case where nothing passes (after the first few tiles, almost always).
__attribute__((target("avx2,fma"))) int64_t scan_row_avx2(const float* s, const float* bias_lo,
                                                          const float* scale, const float* e_cross,
                                                          float nq, int64_t n, float threshold,
                                                          int64_t base, int64_t* out_index,
                                                          float* out_value) {
  const __m256 thr = _mm256_set1_ps(threshold);
  const __m256 norm = _mm256_set1_ps(nq);
  int64_t count = 0, j = 0;
  alignas(32) float values[32];
  for (; j + 32 <= n; j += 32) {
    __m256 v[4];
    int masks[4];
    for (int u = 0; u < 4; ++u) {
      v[u] = _mm256_fmadd_ps(_mm256_loadu_ps(s + j + 8 * u), _mm256_loadu_ps(scale + j + 8 * u),
                             _mm256_loadu_ps(bias_lo + j + 8 * u));
      v[u] = _mm256_fnmadd_ps(norm, _mm256_loadu_ps(e_cross + j + 8 * u), v[u]);
      masks[u] = _mm256_movemask_ps(_mm256_cmp_ps(v[u], thr, _CMP_LE_OQ));
    }
    if ((masks[0] | masks[1] | masks[2] | masks[3]) == 0) continue;
    for (int u = 0; u < 4; ++u) {
      if (!masks[u]) continue;
      _mm256_store_ps(values + 8 * u, v[u]);
      for (unsigned m = static_cast<unsigned>(masks[u]); m; m &= m - 1) {
        const int t = __builtin_ctz(m);
        out_index[count] = base + j + 8 * u + t;
        out_value[count] = values[8 * u + t];
        ++count;
      }
    }
  }
  return count + scan_row_scalar<float>(s + j, bias_lo + j, scale + j, e_cross + j, nq, n - j,
                                        threshold, base + j, out_index + count, out_value + count);
}

bool cpu_has_avx2_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#endif

// How the candidates are screened: a GEMM in the input's precision, or a bfloat16 GEMM (native
// AVX512-BF16 kernel, or its emulation by a float32 GEMM of bfloat16-rounded copies).
enum class Screen { Input, Bf16Native, Bf16Emulated };

// The bfloat16 band is about 2^-6 |q| |g| wide: it pays only while the data's mean does not
// dominate its spread, else most candidates fall inside the band and the exact resolve does all the
// work (measured, N = 10k, D = 128, k = 10, 1 thread, bf16 / fp32 search time: 0.5-0.6 at |mean|^2
// / mean |x - mean|^2 <= 1, 1.0 at 2.2, 1.7 at 4, 5 at 9). A sample of about 4096 gallery rows
// decides; for the cosine, their directions.
constexpr double kMaxMeanToSpread = 1.0;

bool bf16_band_is_narrow(const at::Tensor& gallery, Metric metric) {
  const int64_t n = gallery.size(0);
  if (n == 0) return false;
  at::Tensor x = gallery.slice(0, 0, n, std::max<int64_t>(n / 4096, 1)).to(at::kDouble);
  if (metric == Metric::Cosine)
    x = x / x.norm(2, {1}, /*keepdim=*/true).clamp_min(std::numeric_limits<double>::min());
  const at::Tensor mean = x.mean(0);
  const double offset = mean.square().sum().item<double>();
  const double spread = (x - mean).square().sum(1).mean().item<double>();
  return offset <= kMaxMeanToSpread * spread;
}

// The screen for float32 inputs: OML_FAST_KNN_SCREEN (read on every call) or, by default, bfloat16
// where the CPU has AVX512-BF16 and the data is not far from the origin relative to its spread.
Screen float32_screen(const at::Tensor& gallery, Metric metric) {
  const char* knob = std::getenv("OML_FAST_KNN_SCREEN");
  const bool native = bf16::cpu_has_avx512_bf16();
  if (knob == nullptr || *knob == 0 || std::strcmp(knob, "auto") == 0)
    return native && bf16_band_is_narrow(gallery, metric) ? Screen::Bf16Native : Screen::Input;
  if (std::strcmp(knob, "fp32") == 0) return Screen::Input;
  if (std::strcmp(knob, "bf16") == 0) return native ? Screen::Bf16Native : Screen::Bf16Emulated;
  if (std::strcmp(knob, "bf16-emulated") == 0) return Screen::Bf16Emulated;
  TORCH_CHECK_VALUE(false, "the environment variable OML_FAST_KNN_SCREEN is '", knob,
                    "'; expected one of auto, fp32, bf16, bf16-emulated");
  return Screen::Input;
}

// Everything the search needs about the inputs, prepared once.
template <typename T>
struct KnnProblem {
  const T* queries;  // the data the GEMM sees (scaled by 2^exponent)
  const T* gallery;
  Screen screen = Screen::Input;
  const T* screen_queries;  // what the GEMM multiplies: queries / gallery, or bfloat16-rounded
  const T* screen_gallery;  // copies of them (Bf16Emulated)
  std::vector<uint16_t> packed_gallery;  // Bf16Native: the gallery in the micro-kernel's layout
  int64_t capacity = 0;                  // candidates kept per query
  const T*
      exact_queries;  // the data exact distances are computed from (scaled by 2^exact_exponent)
  const T* exact_gallery;
  int exponent, exact_exponent;
  int64_t n_query, n_gallery, dim, k;
  Metric metric;
  Exclusions exclusions;
  std::vector<double> query_norm, gallery_norm;  // L2 norms of the GEMM's data, float64
  // Lower end of item j's interval: bias_lo[j] + scale[j] * <q, g_j> - |q| e_cross[j]; its width is
  // 2 (e_self[j] + |q| e_cross[j]).
  std::vector<T> bias_lo, scale, e_self, e_cross;

  int64_t scan(int64_t q, const T* s, int64_t g_begin, int64_t n, T threshold, int64_t* out_index,
               T* out_value) const {
    const T nq = static_cast<T>(query_norm[q]);
#ifdef OML_FAST_X86
    if constexpr (std::is_same_v<T, float>) {
      if (cpu_has_avx2_fma())
        return scan_row_avx2(s, bias_lo.data() + g_begin, scale.data() + g_begin,
                             e_cross.data() + g_begin, nq, n, threshold, g_begin, out_index,
                             out_value);
    }
#endif
    return scan_row_scalar<T>(s, bias_lo.data() + g_begin, scale.data() + g_begin,
                              e_cross.data() + g_begin, nq, n, threshold, g_begin, out_index,
                              out_value);
  }

  // Half the width of item g's interval for query q.
  T half_width(int64_t q, int64_t g) const {
    return e_self[g] + static_cast<T>(query_norm[q]) * e_cross[g];
  }
};

// Squared difference norm / inner product in float64 with four partial sums: independent chains
// (and, with the multiversioned clones, one AVX2 register of four doubles) instead of one serial
// chain. The order is fixed, so equal rows still give bitwise equal results.
template <typename T>
inline double squared_distance_f64(const T* a, const T* b, int64_t dim) {
  double part[4] = {0, 0, 0, 0};
  const int64_t dim4 = dim - dim % 4;
  for (int64_t d = 0; d < dim4; d += 4) {
    for (int u = 0; u < 4; ++u) {
      const double diff = static_cast<double>(a[d + u]) - static_cast<double>(b[d + u]);
      part[u] += diff * diff;
    }
  }
  for (int64_t d = dim4; d < dim; ++d) {
    const double diff = static_cast<double>(a[d]) - static_cast<double>(b[d]);
    part[0] += diff * diff;
  }
  return (part[0] + part[1]) + (part[2] + part[3]);
}

template <typename T>
inline double dot_f64(const T* a, const T* b, int64_t dim) {
  double part[4] = {0, 0, 0, 0};
  const int64_t dim4 = dim - dim % 4;
  for (int64_t d = 0; d < dim4; d += 4) {
    for (int u = 0; u < 4; ++u)
      part[u] += static_cast<double>(a[d + u]) * static_cast<double>(b[d + u]);
  }
  for (int64_t d = dim4; d < dim; ++d)
    part[0] += static_cast<double>(a[d]) * static_cast<double>(b[d]);
  return (part[0] + part[1]) + (part[2] + part[3]);
}

OML_FAST_MULTIVERSION double squared_distance_float(const float* a, const float* b, int64_t dim) {
  return squared_distance_f64(a, b, dim);
}

OML_FAST_MULTIVERSION double dot_float(const float* a, const float* b, int64_t dim) {
  return dot_f64(a, b, dim);
}

inline double squared_distance(const float* a, const float* b, int64_t dim) {
  return squared_distance_float(a, b, dim);
}
inline double squared_distance(const double* a, const double* b, int64_t dim) {
  return squared_distance_f64(a, b, dim);
}
inline double dot(const float* a, const float* b, int64_t dim) { return dot_float(a, b, dim); }
inline double dot(const double* a, const double* b, int64_t dim) { return dot_f64(a, b, dim); }

// The exact distance between query q and gallery item g, in float64, in the input's units.
template <typename T>
double exact_distance(const KnnProblem<T>& p, int64_t q, int64_t g) {
  if (p.metric == Metric::Euclidean || p.metric == Metric::SqEuclidean) {
    const double squared =
        squared_distance(p.exact_queries + q * p.dim, p.exact_gallery + g * p.dim, p.dim);
    return dist::unscale_distance(dist::distance_from_squared(squared, p.metric), p.metric,
                                  p.exact_exponent);
  }
  // Cosine and dot from the GEMM's data (the cosine is scale-free).
  const double inner = dot(p.queries + q * p.dim, p.gallery + g * p.dim, p.dim);
  if (p.metric == Metric::Dot) return dist::unscale_distance(-inner, p.metric, p.exponent);
  return dist::cosine_distance(inner, p.query_norm[q], p.gallery_norm[g]);
}

// The ranking value of (q, g) from a float64 inner product (in the GEMM's units): its error is far
// below the item's band.
template <typename T>
double exact_ranking_value(const KnnProblem<T>& p, int64_t q, int64_t g) {
  const double inner = dot(p.queries + q * p.dim, p.gallery + g * p.dim, p.dim);
  return dist::ranking_value(p.metric, inner, p.gallery_norm[g]);
}

// The candidates of one query: the lower ends of every non-excluded gallery item whose lower end
// was at most the threshold when it was seen. `threshold` (an upper end) only ever decreases.
template <typename T>
struct CandidateBuffer {
  T* value;
  int64_t* index;
  int64_t size = 0;
  T threshold = std::numeric_limits<T>::infinity();
};

template <typename T>
class QueryTileSearch {
 public:
  QueryTileSearch(const KnnProblem<T>& p, int64_t query_tile) : p_(p), query_tile_(query_tile) {
    k_eff_ = std::max<int64_t>(std::min(p.k, p.n_gallery), 1);
    capacity_ = p.capacity;
    values_.resize(query_tile_ * capacity_);
    indices_.resize(query_tile_ * capacity_);
    buffers_.resize(query_tile_);
    tile_.resize(query_tile_ * kGalleryTile);
    if (p.screen == Screen::Bf16Native) query_bf16_.resize(query_tile_ * bf16::padded_dim(p.dim));
    pass_index_.resize(kGalleryTile);
    pass_value_.resize(kGalleryTile);
    scratch_value_.resize(std::max(capacity_, kGalleryTile));
    exact_.resize(capacity_);
    order_.resize(capacity_);
  }

  void run(int64_t q_begin, int64_t q_end, T* out_dist, int64_t* out_idx) {
    const int64_t n_rows = q_end - q_begin;
    for (int64_t r = 0; r < n_rows; ++r)
      buffers_[r] =
          CandidateBuffer<T>{values_.data() + r * capacity_, indices_.data() + r * capacity_};
    auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
    const T* queries = p_.screen_queries + q_begin * p_.dim;
    at::Tensor query_tile = at::from_blob(const_cast<T*>(queries), {n_rows, p_.dim}, options);
    const bool native = p_.screen == Screen::Bf16Native;
    if constexpr (std::is_same_v<T, float>) {
      if (native) bf16::round_rows(queries, n_rows, p_.dim, query_bf16_.data());
    }
    for (int64_t g_begin = 0; g_begin < p_.n_gallery; g_begin += kGalleryTile) {
      const int64_t n_cols = std::min(kGalleryTile, p_.n_gallery - g_begin);
      // Row r of the tile's products starts at tile_ + r * ld.
      const int64_t ld = native ? kGalleryTile : n_cols;
      if constexpr (std::is_same_v<T, float>) {
        if (native)
          bf16::gemm_avx512_bf16(query_bf16_.data(), n_rows, p_.dim, p_.packed_gallery.data(),
                                 g_begin, n_cols, tile_.data(), ld);
      }
      if (!native) {
        at::Tensor gallery_tile = at::from_blob(
            const_cast<T*>(p_.screen_gallery + g_begin * p_.dim), {n_cols, p_.dim}, options);
        at::Tensor products = at::from_blob(tile_.data(), {n_rows, n_cols}, options);
        at::mm_out(products, query_tile, gallery_tile.t());
      }
      for (int64_t r = 0; r < n_rows; ++r) {
        const int64_t q = q_begin + r;
        CandidateBuffer<T>& buffer = buffers_[r];
        if (buffer.threshold == std::numeric_limits<T>::infinity() && n_cols > k_eff_)
          seed_threshold(q, buffer, tile_.data() + r * ld, g_begin, n_cols);
        const int64_t n_pass = p_.scan(q, tile_.data() + r * ld, g_begin, n_cols, buffer.threshold,
                                       pass_index_.data(), pass_value_.data());
        for (int64_t t = 0; t < n_pass; ++t) {
          if (pass_value_[t] > buffer.threshold) continue;  // the threshold fell during this row
          const int64_t g = pass_index_[t];
          if (p_.exclusions.excluded(q, g)) continue;
          buffer.value[buffer.size] = pass_value_[t];
          buffer.index[buffer.size] = g;
          if (++buffer.size == capacity_) compact(q, buffer);
        }
      }
    }
    for (int64_t r = 0; r < n_rows; ++r)
      finish(q_begin + r, buffers_[r], out_dist + r * p_.k, out_idx + r * p_.k);
  }

 private:
  // Before a query has any threshold, every value would pass and be copied into the buffer.
  // Instead, take the k-th smallest upper end of the non-excluded items of this first tile row: k
  // candidates are known to be at least that close, so it is already a valid threshold.
  void seed_threshold(int64_t q, CandidateBuffer<T>& buffer, const T* products, int64_t g_begin,
                      int64_t n_cols) {
    // Upper ends of the whole row (a loop the compiler vectorises), then the k smallest of the
    // non-excluded ones: a sorted list for small k (a compare per item), else nth_element.
    const T nq = static_cast<T>(p_.query_norm[q]);
    const T* bias_lo = p_.bias_lo.data() + g_begin;
    const T* scale = p_.scale.data() + g_begin;
    const T* e_self = p_.e_self.data() + g_begin;
    const T* e_cross = p_.e_cross.data() + g_begin;
    T* upper = pass_value_.data();
    for (int64_t j = 0; j < n_cols; ++j)
      upper[j] = (bias_lo[j] + scale[j] * products[j] - nq * e_cross[j]) +
                 2 * (e_self[j] + nq * e_cross[j]);
    if (k_eff_ <= kSmallK) {
      T best[kSmallK];
      int64_t n_best = 0;
      for (int64_t j = 0; j < n_cols; ++j) {
        if (n_best == k_eff_ && !(upper[j] < best[n_best - 1])) continue;
        if (p_.exclusions.excluded(q, g_begin + j)) continue;
        int64_t pos = n_best < k_eff_ ? n_best++ : n_best - 1;
        for (; pos > 0 && best[pos - 1] > upper[j]; --pos) best[pos] = best[pos - 1];
        best[pos] = upper[j];
      }
      if (n_best == k_eff_) buffer.threshold = best[k_eff_ - 1];
      return;
    }
    int64_t n_kept = 0;
    for (int64_t j = 0; j < n_cols; ++j)
      if (!p_.exclusions.excluded(q, g_begin + j)) scratch_value_[n_kept++] = upper[j];
    if (n_kept < k_eff_) return;
    std::nth_element(scratch_value_.begin(), scratch_value_.begin() + (k_eff_ - 1),
                     scratch_value_.begin() + n_kept);
    buffer.threshold = scratch_value_[k_eff_ - 1];
  }

  // The buffer is full: keep only candidates whose lower end is within the k-th smallest upper end,
  // which still contain the exact top k. If near-ties keep it nearly full, resolve exactly instead.
  void compact(int64_t q, CandidateBuffer<T>& buffer, bool resolve_if_full = true) {
    for (int64_t t = 0; t < buffer.size; ++t)
      scratch_value_[t] = buffer.value[t] + 2 * p_.half_width(q, buffer.index[t]);
    std::nth_element(scratch_value_.begin(), scratch_value_.begin() + (k_eff_ - 1),
                     scratch_value_.begin() + buffer.size);
    const T threshold = std::min(buffer.threshold, scratch_value_[k_eff_ - 1]);
    int64_t kept = 0;
    for (int64_t t = 0; t < buffer.size; ++t) {
      if (buffer.value[t] <= threshold) {
        buffer.value[kept] = buffer.value[t];
        buffer.index[kept] = buffer.index[t];
        ++kept;
      }
    }
    buffer.size = kept;
    buffer.threshold = threshold;
    if (resolve_if_full && kept > capacity_ - capacity_ / 4) resolve_exactly(q, buffer);
  }

  // Sorts the candidates by (exact distance, index) into order_[0..size).
  void sort_exactly(int64_t q, const CandidateBuffer<T>& buffer) {
    for (int64_t t = 0; t < buffer.size; ++t) exact_[t] = exact_distance(p_, q, buffer.index[t]);
    std::iota(order_.begin(), order_.begin() + buffer.size, 0);
    std::sort(order_.begin(), order_.begin() + buffer.size, [&](int64_t a, int64_t b) {
      return exact_[a] < exact_[b] || (exact_[a] == exact_[b] && buffer.index[a] < buffer.index[b]);
    });
  }

  // Many near-ties (e.g. duplicated gallery rows): keep the exact top k of what was seen so far.
  // Their intervals are rebuilt around float64 ranking values (whose error is far below the band),
  // and the threshold becomes the largest of their upper ends.
  void resolve_exactly(int64_t q, CandidateBuffer<T>& buffer) {
    sort_exactly(q, buffer);
    const int64_t kept = std::min(k_eff_, buffer.size);
    std::vector<int64_t> kept_index(kept);
    std::vector<T> kept_value(kept);
    T upper = -std::numeric_limits<T>::infinity();
    for (int64_t t = 0; t < kept; ++t) {
      const int64_t g = buffer.index[order_[t]];
      const T value = static_cast<T>(exact_ranking_value(p_, q, g));
      const T half = p_.half_width(q, g);
      kept_index[t] = g;
      kept_value[t] = value - half;
      upper = std::max(upper, value + half);
    }
    std::copy(kept_index.begin(), kept_index.end(), buffer.index);
    std::copy(kept_value.begin(), kept_value.end(), buffer.value);
    buffer.size = kept;
    if (kept == k_eff_) buffer.threshold = std::min(buffer.threshold, upper);
  }

  void finish(int64_t q, CandidateBuffer<T>& buffer, T* out_dist, int64_t* out_idx) {
    // Drop what the final threshold rules out before paying for exact distances.
    if (buffer.size > k_eff_) compact(q, buffer, /*resolve_if_full=*/false);
    sort_exactly(q, buffer);
    const int64_t n_out = std::min(p_.k, buffer.size);
    for (int64_t t = 0; t < n_out; ++t) {
      out_dist[t] = static_cast<T>(exact_[order_[t]]);
      out_idx[t] = buffer.index[order_[t]];
    }
    for (int64_t t = n_out; t < p_.k; ++t) {
      out_dist[t] = std::numeric_limits<T>::infinity();
      out_idx[t] = -1;
    }
  }

  const KnnProblem<T>& p_;
  int64_t query_tile_, k_eff_, capacity_;
  std::vector<T> values_, tile_, pass_value_, scratch_value_;
  std::vector<int64_t> indices_, pass_index_, order_;
  std::vector<double> exact_;
  std::vector<uint16_t> query_bf16_;  // Bf16Native: the query tile rounded to bfloat16
  std::vector<CandidateBuffer<T>> buffers_;
};

template <typename T>
std::vector<double> row_norms(const T* x, int64_t n, int64_t dim) {
  std::vector<double> norms(n);
  dist::row_norms(x, n, dim, norms.data());
  return norms;
}

template <typename T>
bool all_finite(const T* x, int64_t n) {
  // x - x is 0 for finite x and NaN for NaN or inf; the loop vectorises.
  bool finite = true;
  for (int64_t i = 0; i < n; ++i) finite &= (x[i] - x[i] == T(0));
  return finite;
}

template <typename T>
void knn_search(KnnProblem<T>& p, T* out_dist, int64_t* out_idx) {
  p.query_norm = row_norms(p.queries, p.n_query, p.dim);
  p.gallery_norm = row_norms(p.gallery, p.n_gallery, p.dim);
  const double alpha = dist::error_factor(
      p.dim,
      dist::gemm_unit_roundoff(dist::gemm_mantissa_bits(c10::CppTypeToScalarType<T>::value)));
  double floor = dist::subnormal_floor<T>(p.dim) + std::numeric_limits<T>::min();
  double alpha_cross = alpha;
  if (p.screen != Screen::Input) {  // bfloat16 screening GEMM: its own bound (distance_math.h)
    alpha_cross = std::max(alpha, dist::bf16_error_factor(p.dim));
    floor += dist::bf16_floor(p.dim);
  }
  if constexpr (std::is_same_v<T, float>) {
    if (p.screen == Screen::Bf16Native)
      p.packed_gallery = bf16::pack_gallery(p.gallery, p.n_gallery, p.dim);
  }
  p.bias_lo.resize(p.n_gallery);
  p.scale.resize(p.n_gallery);
  p.e_self.resize(p.n_gallery);
  p.e_cross.resize(p.n_gallery);
  for (int64_t j = 0; j < p.n_gallery; ++j) {
    const dist::Ranking r =
        dist::ranking_coefficients(p.metric, p.gallery_norm[j], alpha, alpha_cross, floor);
    p.bias_lo[j] = static_cast<T>(r.bias - r.e_self);
    p.scale[j] = static_cast<T>(r.scale);
    p.e_self[j] = static_cast<T>(r.e_self);
    p.e_cross[j] = static_cast<T>(r.e_cross);
  }
  const int64_t capacity = retrieval::candidate_capacity(p.k, p.n_gallery);
  p.capacity = capacity;
  const int64_t query_tile =
      retrieval::queries_per_tile(capacity, sizeof(T) + sizeof(int64_t),
                                  p.screen == Screen::Bf16Native ? kBf16QueryTile : kQueryTile);
  const int64_t n_tiles = (p.n_query + query_tile - 1) / query_tile;
  at::parallel_for(0, n_tiles, 1, [&](int64_t tile_begin, int64_t tile_end) {
    QueryTileSearch<T> search(p, query_tile);
    for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
      const int64_t q_begin = tile * query_tile, q_end = std::min(p.n_query, q_begin + query_tile);
      search.run(q_begin, q_end, out_dist + q_begin * p.k, out_idx + q_begin * p.k);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> knn_cpu(const at::Tensor& queries, const at::Tensor& gallery,
                                           int64_t k, c10::string_view metric,
                                           const std::optional<at::Tensor>& query_ids,
                                           const std::optional<at::Tensor>& gallery_ids,
                                           const std::optional<at::Tensor>& query_groups,
                                           const std::optional<at::Tensor>& gallery_groups) {
  const Metric parsed = retrieval::check_knn_inputs(queries, gallery, k, metric, query_ids,
                                                    gallery_ids, query_groups, gallery_groups);
  // CPU half-precision policy (common/checks.h): searched in float32, distances returned as
  // float32.
  const at::Tensor q = upcast_half_on_cpu(queries).contiguous();
  const at::Tensor g = upcast_half_on_cpu(gallery).contiguous();
  const int64_t n_query = q.size(0), n_gallery = g.size(0), dim = q.size(1);
  retrieval::check_knn_size(n_query, n_gallery, k);
  at::Tensor out_dist = at::empty({n_query, k}, q.options());
  at::Tensor out_idx = at::empty({n_query, k}, q.options().dtype(at::kLong));
  auto contiguous_key = [](const std::optional<at::Tensor>& t) {
    return t.has_value() ? std::optional<at::Tensor>(t->contiguous()) : std::nullopt;
  };
  const auto qid = contiguous_key(query_ids), gid = contiguous_key(gallery_ids);
  const auto qgr = contiguous_key(query_groups), ggr = contiguous_key(gallery_groups);
  Exclusions exclusions;
  if (qid) {
    exclusions.query_ids = qid->data_ptr<int64_t>();
    exclusions.gallery_ids = gid->data_ptr<int64_t>();
  }
  if (qgr) {
    exclusions.query_groups = qgr->data_ptr<int64_t>();
    exclusions.gallery_groups = ggr->data_ptr<int64_t>();
  }
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "knn_cpu", [&] {
    TORCH_CHECK_VALUE(all_finite(q.data_ptr<scalar_t>(), q.numel()),
                      "`queries` contains NaN or inf values (", describe(queries),
                      "); knn needs finite embeddings");
    TORCH_CHECK_VALUE(all_finite(g.data_ptr<scalar_t>(), g.numel()),
                      "`gallery` contains NaN or inf values (", describe(gallery),
                      "); knn needs finite embeddings");
    if (n_query == 0) return;
    if (n_gallery == 0) {  // nothing to retrieve: all padding
      out_dist.fill_(std::numeric_limits<scalar_t>::infinity());
      out_idx.fill_(-1);
      return;
    }
    // Scaled copies only for data far from 1 (see the top of the file).
    const int exponent = dist::scale_exponent_of(q, g, q.scalar_type());
    const at::Tensor q_screen = dist::scale_by_pow2(q, exponent);
    const at::Tensor g_screen = dist::scale_by_pow2(g, exponent);
    const bool exact_from_input = std::is_same_v<scalar_t, float>;
    KnnProblem<scalar_t> problem{};
    problem.queries = q_screen.const_data_ptr<scalar_t>();
    problem.gallery = g_screen.const_data_ptr<scalar_t>();
    problem.screen =
        std::is_same_v<scalar_t, float> ? float32_screen(g_screen, parsed) : Screen::Input;
    // Bf16Emulated: a float32 GEMM of bfloat16-rounded copies (kept alive until the search ends).
    at::Tensor q_rounded = q_screen, g_rounded = g_screen;
    if (problem.screen == Screen::Bf16Emulated) {
      q_rounded = q_screen.to(at::kBFloat16).to(q_screen.scalar_type());
      g_rounded = g_screen.to(at::kBFloat16).to(g_screen.scalar_type());
    }
    problem.screen_queries = q_rounded.const_data_ptr<scalar_t>();
    problem.screen_gallery = g_rounded.const_data_ptr<scalar_t>();
    problem.exact_queries = (exact_from_input ? q : q_screen).const_data_ptr<scalar_t>();
    problem.exact_gallery = (exact_from_input ? g : g_screen).const_data_ptr<scalar_t>();
    problem.exponent = exponent;
    problem.exact_exponent = exact_from_input ? 0 : exponent;
    problem.n_query = n_query;
    problem.n_gallery = n_gallery;
    problem.dim = dim;
    problem.k = k;
    problem.metric = parsed;
    problem.exclusions = exclusions;
    knn_search(problem, out_dist.data_ptr<scalar_t>(), out_idx.data_ptr<int64_t>());
  });
  return {out_dist, out_idx};
}

}  // namespace

TORCH_LIBRARY_IMPL(oml_fast, CPU, m) { m.impl("knn", &knn_cpu); }

}  // namespace oml_fast
