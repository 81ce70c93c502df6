#include "mining/cpu/segment_scan.h"

#include <algorithm>
#include <limits>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define OML_FAST_SCAN_AVX2 1
#endif

namespace oml_fast::mining {
namespace {

// ---- scalar loops (float64, and float32 on CPUs without AVX2)
// ------------------------------------

template <typename T>
inline T key_of(T dot, const T* bias, int64_t item) {
  return bias != nullptr ? bias[item] - T(2) * dot : -dot;
}

template <typename T>
void keys_scalar(const T* dots, const ItemTerms<T>& items, int64_t first, int64_t m, T* keys) {
  for (int64_t c = 0; c < m; ++c) keys[c] = key_of(dots[c], items.bias, first + c);
}

template <typename T>
void keys_and_bounds_scalar(const T* dots, const ItemTerms<T>& items, int64_t first, int64_t m,
                            T norm, int32_t label, T* keys, T* pos_bound, T* neg_bound) {
  T pos = *pos_bound, neg = *neg_bound;
  for (int64_t c = 0; c < m; ++c) {
    const int64_t item = first + c;
    const T key = key_of(dots[c], items.bias, item);
    keys[c] = key;
    const T half = items.e_self[item] + norm * items.e_cross[item];
    if (items.labels[item] == label) {
      const T lower = key - half;
      pos = lower > pos ? lower : pos;  // NaN: not greater, ignored
    } else {
      const T upper = key + half;
      neg = upper < neg ? upper : neg;
    }
  }
  *pos_bound = pos;
  *neg_bound = neg;
}

template <typename T>
inline void classify_scalar(const T* keys, const ItemTerms<T>& items, int64_t first, int64_t c,
                            T norm, int32_t label, T pos_limit, T neg_limit, int32_t* pos,
                            int64_t& n_pos, int32_t* neg, int64_t& n_neg) {
  const int64_t item = first + c;
  const T key = keys[c];
  const T half = items.e_self[item] + norm * items.e_cross[item];
  if (items.labels[item] == label) {
    if (key + half >= pos_limit) pos[n_pos++] = static_cast<int32_t>(c);
  } else if (key - half <= neg_limit) {
    neg[n_neg++] = static_cast<int32_t>(c);
  }
}

template <typename T>
void candidates_scalar(const T* keys, const ItemTerms<T>& items, int64_t first, int64_t begin,
                       int64_t m, T norm, int32_t label, T pos_limit, T neg_limit, int32_t* pos,
                       int64_t& n_pos, int32_t* neg, int64_t& n_neg) {
  for (int64_t c = begin; c < m; ++c) {
    classify_scalar(keys, items, first, c, norm, label, pos_limit, neg_limit, pos, n_pos, neg,
                    n_neg);
  }
}

// ---- AVX2 float32 loops ----------------------------------------------------------------------

#ifdef OML_FAST_SCAN_AVX2
bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

__attribute__((target("avx2,fma"))) inline __m256 keys8(const float* dots, const float* bias,
                                                        int64_t item) {
  const __m256 dot = _mm256_loadu_ps(dots);
  if (bias == nullptr) return _mm256_sub_ps(_mm256_setzero_ps(), dot);
  return _mm256_fnmadd_ps(_mm256_set1_ps(2.0f), dot, _mm256_loadu_ps(bias + item));
}

__attribute__((target("avx2,fma"))) void keys_avx2(const float* dots, const ItemTerms<float>& items,
                                                   int64_t first, int64_t m, float* keys) {
  int64_t c = 0;
  for (; c + 8 <= m; c += 8) _mm256_storeu_ps(keys + c, keys8(dots + c, items.bias, first + c));
  for (; c < m; ++c) keys[c] = key_of(dots[c], items.bias, first + c);
}

__attribute__((target("avx2,fma"))) float reduce_max(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

__attribute__((target("avx2,fma"))) float reduce_min(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

__attribute__((target("avx2,fma"))) void keys_and_bounds_avx2(const float* dots,
                                                              const ItemTerms<float>& items,
                                                              int64_t first, int64_t m, float norm,
                                                              int32_t label, float* keys,
                                                              float* pos_bound, float* neg_bound) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const __m256 minus_inf = _mm256_set1_ps(-kInf), plus_inf = _mm256_set1_ps(kInf);
  const __m256 norm8 = _mm256_set1_ps(norm);
  const __m256i label8 = _mm256_set1_epi32(label);
  __m256 pos = minus_inf, neg = plus_inf;  // lane-wise; never NaN (see below)
  int64_t c = 0;
  for (; c + 8 <= m; c += 8) {
    const int64_t item = first + c;
    const __m256 key = keys8(dots + c, items.bias, item);
    _mm256_storeu_ps(keys + c, key);
    const __m256 half = _mm256_fmadd_ps(norm8, _mm256_loadu_ps(items.e_cross + item),
                                        _mm256_loadu_ps(items.e_self + item));
    const __m256 same = _mm256_castsi256_ps(_mm256_cmpeq_epi32(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(items.labels + item)), label8));
    const __m256 lower = _mm256_blendv_ps(minus_inf, _mm256_sub_ps(key, half), same);
    const __m256 upper = _mm256_blendv_ps(_mm256_add_ps(key, half), plus_inf, same);
    // max/min return their second operand when either is NaN: a NaN key leaves the lane as it was.
    pos = _mm256_max_ps(lower, pos);
    neg = _mm256_min_ps(upper, neg);
  }
  float pos_scalar = std::max(*pos_bound, reduce_max(pos));
  float neg_scalar = std::min(*neg_bound, reduce_min(neg));
  if (c < m) {
    keys_and_bounds_scalar(dots + c, items, first + c, m - c, norm, label, keys + c, &pos_scalar,
                           &neg_scalar);
  }
  *pos_bound = pos_scalar;
  *neg_bound = neg_scalar;
}

__attribute__((target("avx2,fma"))) void candidates_avx2(
    const float* keys, const ItemTerms<float>& items, int64_t first, int64_t m, float norm,
    int32_t label, float pos_limit, float neg_limit, int32_t* pos, int64_t& n_pos, int32_t* neg,
    int64_t& n_neg) {
  const __m256 norm8 = _mm256_set1_ps(norm);
  const __m256 pos_limit8 = _mm256_set1_ps(pos_limit), neg_limit8 = _mm256_set1_ps(neg_limit);
  const __m256i label8 = _mm256_set1_epi32(label);
  int64_t c = 0;
  for (; c + 8 <= m; c += 8) {
    const int64_t item = first + c;
    const __m256 key = _mm256_loadu_ps(keys + c);
    const __m256 half = _mm256_fmadd_ps(norm8, _mm256_loadu_ps(items.e_cross + item),
                                        _mm256_loadu_ps(items.e_self + item));
    const __m256 same = _mm256_castsi256_ps(_mm256_cmpeq_epi32(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(items.labels + item)), label8));
    // Ordered comparisons: false for NaN keys and NaN limits.
    const __m256 pos_hit =
        _mm256_and_ps(same, _mm256_cmp_ps(_mm256_add_ps(key, half), pos_limit8, _CMP_GE_OQ));
    const __m256 neg_hit =
        _mm256_andnot_ps(same, _mm256_cmp_ps(_mm256_sub_ps(key, half), neg_limit8, _CMP_LE_OQ));
    unsigned pos_bits = static_cast<unsigned>(_mm256_movemask_ps(pos_hit));
    unsigned neg_bits = static_cast<unsigned>(_mm256_movemask_ps(neg_hit));
    while (pos_bits != 0) {
      pos[n_pos++] = static_cast<int32_t>(c + __builtin_ctz(pos_bits));
      pos_bits &= pos_bits - 1;
    }
    while (neg_bits != 0) {
      neg[n_neg++] = static_cast<int32_t>(c + __builtin_ctz(neg_bits));
      neg_bits &= neg_bits - 1;
    }
  }
  candidates_scalar(keys, items, first, c, m, norm, label, pos_limit, neg_limit, pos, n_pos, neg,
                    n_neg);
}
#endif

template <typename T>
void transpose_scalar(const T* in, int64_t ld, int64_t rows, int64_t cols, T* out) {
  // Blocks of 64 input columns: each block reads whole cache lines of `in` and writes 64 output
  // rows whose lines stay in L1 while every input row passes.
  constexpr int64_t kBlock = 64;
  for (int64_t j0 = 0; j0 < cols; j0 += kBlock) {
    const int64_t j1 = std::min(cols, j0 + kBlock);
    for (int64_t i = 0; i < rows; ++i) {
      const T* src = in + i * ld;
      for (int64_t j = j0; j < j1; ++j) out[j * rows + i] = src[j];
    }
  }
}

}  // namespace

void segment_keys(const float* dots, const ItemTerms<float>& items, int64_t first, int64_t m,
                  float* keys) {
#ifdef OML_FAST_SCAN_AVX2
  if (cpu_has_avx2()) return keys_avx2(dots, items, first, m, keys);
#endif
  keys_scalar(dots, items, first, m, keys);
}

void segment_keys(const double* dots, const ItemTerms<double>& items, int64_t first, int64_t m,
                  double* keys) {
  keys_scalar(dots, items, first, m, keys);
}

void segment_keys_and_bounds(const float* dots, const ItemTerms<float>& items, int64_t first,
                             int64_t m, float norm, int32_t label, float* keys, float* pos_bound,
                             float* neg_bound) {
#ifdef OML_FAST_SCAN_AVX2
  if (cpu_has_avx2()) {
    return keys_and_bounds_avx2(dots, items, first, m, norm, label, keys, pos_bound, neg_bound);
  }
#endif
  keys_and_bounds_scalar(dots, items, first, m, norm, label, keys, pos_bound, neg_bound);
}

void segment_keys_and_bounds(const double* dots, const ItemTerms<double>& items, int64_t first,
                             int64_t m, double norm, int32_t label, double* keys, double* pos_bound,
                             double* neg_bound) {
  keys_and_bounds_scalar(dots, items, first, m, norm, label, keys, pos_bound, neg_bound);
}

void segment_candidates(const float* keys, const ItemTerms<float>& items, int64_t first, int64_t m,
                        float norm, int32_t label, float pos_limit, float neg_limit, int32_t* pos,
                        int64_t* n_pos, int32_t* neg, int64_t* n_neg) {
  *n_pos = *n_neg = 0;
#ifdef OML_FAST_SCAN_AVX2
  if (cpu_has_avx2()) {
    return candidates_avx2(keys, items, first, m, norm, label, pos_limit, neg_limit, pos, *n_pos,
                           neg, *n_neg);
  }
#endif
  candidates_scalar(keys, items, first, 0, m, norm, label, pos_limit, neg_limit, pos, *n_pos, neg,
                    *n_neg);
}

void segment_candidates(const double* keys, const ItemTerms<double>& items, int64_t first,
                        int64_t m, double norm, int32_t label, double pos_limit, double neg_limit,
                        int32_t* pos, int64_t* n_pos, int32_t* neg, int64_t* n_neg) {
  *n_pos = *n_neg = 0;
  candidates_scalar(keys, items, first, 0, m, norm, label, pos_limit, neg_limit, pos, *n_pos, neg,
                    *n_neg);
}

void transpose_block(const float* in, int64_t ld, int64_t rows, int64_t cols, float* out) {
  transpose_scalar(in, ld, rows, cols, out);
}

void transpose_block(const double* in, int64_t ld, int64_t rows, int64_t cols, double* out) {
  transpose_scalar(in, ld, rows, cols, out);
}

}  // namespace oml_fast::mining
