// The distance maths of every op, once, for the CPU and the CUDA kernels (host/device functions):
//
//  * magnitude scaling: inputs far from 1 are multiplied by a power of two (exact) before anything
//    is squared, so that squares and GEMM products neither overflow nor fall into the subnormal
//    range (float32: |x| in [2^-20, 2^20] is left alone, float64: [2^-200, 2^200]);
//  * the exact distance of two rows per metric, accumulated in float64;
//  * the GEMM ranking transform: for a fixed query q, value_j = bias_j + scale_j * <q, g_j> is
//    monotone in the distance (|g|^2 - 2<q, g> for the euclidean metrics, -<q, g> / |g| for cosine,
//    -<q, g> for dot);
//  * the rounding-error bound of that value, per item: |computed - exact| <= e_self_j + |q| *
//    e_cross_j, where the factor alpha covers a dot product of length D in the precision of the
//    GEMM actually used (float32, TF32 or bfloat16 when torch's float32 matmul precision allows
//    it), and bf16_error_factor the CPU knn's bfloat16 screening GEMM (float32 accumulation);
//  * the recompute ratio of pairwise_distance's |a|^2 + |b|^2 - 2<a, b> expansion.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "common/metric.h"

#if defined(__CUDACC__)
#define OML_FAST_HD __host__ __device__
#else
#define OML_FAST_HD
#endif

namespace oml_fast {
namespace dist {

// ---------------------------------------------------------------------------------------------
// Magnitude scaling.

// Largest |x| left unscaled is 2^kSafeExp (float32: 20, float64: 200); the smallest is 2^-kSafeExp.
template <typename T>
struct SafeRange;
template <>
struct SafeRange<float> {
  static constexpr int kSafeExp = 20;
};
template <>
struct SafeRange<double> {
  static constexpr int kSafeExp = 200;
};

// The exponent e such that 2^e * max_abs lies in [1, 2) when max_abs is outside the safe range of
// T, else 0 (no scaling). max_abs == 0 (all-zero data) needs no scaling either.
template <typename T>
inline int scale_exponent(double max_abs) {
  if (!(max_abs > 0) || !std::isfinite(max_abs)) return 0;
  const int exp = std::ilogb(max_abs);
  if (exp >= -SafeRange<T>::kSafeExp && exp < SafeRange<T>::kSafeExp) return 0;
  return -exp;
}

// ---------------------------------------------------------------------------------------------
// Exact distances (float64 accumulation; the callers pass float64 sums).

// Distance from the sum of squared differences.
OML_FAST_HD inline double distance_from_squared(double squared, Metric metric) {
  return metric == Metric::Euclidean ? sqrt(squared) : squared;
}

// Cosine distance from <a, b> and the norms: 1 - cos, with cos = 0 when a vector is zero, clamped
// to [0, 2].
OML_FAST_HD inline double cosine_distance(double dot, double norm_a, double norm_b) {
  if (norm_a == 0 || norm_b == 0) return 1.0;
  const double d = 1.0 - dot / (norm_a * norm_b);  // norms of data scaled towards 1: no overflow
  return d < 0 ? 0.0 : (d > 2 ? 2.0 : d);
}

// The distance from the float64 sums: `squared` (sum of squared differences, euclidean metrics) or
// `dot` and the norms (cosine, dot).
OML_FAST_HD inline double exact_distance(Metric metric, double squared, double dot, double norm_a,
                                         double norm_b) {
  switch (metric) {
    case Metric::Euclidean:
    case Metric::SqEuclidean:
      return distance_from_squared(squared, metric);
    case Metric::Cosine:
      return cosine_distance(dot, norm_a, norm_b);
    case Metric::Dot:
      return -dot;
  }
  return 0;
}

// Undoes a magnitude scaling by 2^e on a distance (the cosine is scale-free).
OML_FAST_HD inline double unscale_distance(double distance, Metric metric, int exponent) {
  switch (metric) {
    case Metric::Euclidean:
      return ldexp(distance, -exponent);
    case Metric::SqEuclidean:
    case Metric::Dot:
      return ldexp(distance, -2 * exponent);
    case Metric::Cosine:
      return distance;
  }
  return distance;
}

// ---------------------------------------------------------------------------------------------
// The GEMM ranking transform and its error bound.

// Unit roundoff of a GEMM whose inputs are rounded to `mantissa_bits` bits (24: float32, 11: TF32,
// 8: bfloat16) and whose accumulation is at least float32.
OML_FAST_HD constexpr double gemm_unit_roundoff(int mantissa_bits) {
  return mantissa_bits >= 53 ? 0x1p-53
                             : (mantissa_bits >= 24 ? 0x1p-24 : 1.0 / (1 << mantissa_bits));
}

// alpha of the error bound: a floating-point dot product of length D errs by at most
// gamma_D |a| |b| with gamma_D ~ D u (any summation order; inputs rounded to the GEMM's precision
// add 2u per product), plus a few roundings of the epilogue (+8); 2.5 is the safety margin.
OML_FAST_HD inline double error_factor(int64_t dim, double unit_roundoff) {
  return 2.5 * (static_cast<double>(dim) + 8.0) * unit_roundoff;
}

// The same bound for a screening GEMM whose inputs are rounded to bfloat16 (round to nearest even)
// and whose products are accumulated in float32 (AVX512-BF16 VDPBF16PS, or its emulation: a float32
// GEMM of bfloat16-rounded copies). Let u = 2^-8 (bfloat16: 8 significant bits), v = 2^-24
// (float32), a and b the float32 rows (already magnitude-scaled: every |x| < 2^21), a_i' = a_i (1 +
// e_i), b_i' = b_i (1 + f_i) their roundings with |e_i|, |f_i| <= u (normal range).
//  1. The products p_i = a_i' b_i' have 16 significant bits: exact in float32. |p_i - a_i b_i| <=
//     (2u + u^2) |a_i b_i|, so |sum p_i - <a, b>| <= (2u + u^2) sum |a_i b_i| <= (2u + u^2) |a| |b|
//     (Cauchy-Schwarz).
//  2. Summing D float32 terms in any order (VDPBF16PS adds two products per lane and step, a tiled
//     GEMM adds in blocks) errs by at most gamma_D sum |p_i| (Higham, Thm 3.1 / Lemma 3.4: every
//     term takes part in at most D roundings), gamma_n = n v / (1 - n v), and sum |p_i| <= (1 +
//     u)^2 |a| |b|.
//  3. The epilogue (bias + scale * s - |q| e_cross in float32, coefficients rounded to float32)
//     adds a few float32 roundings of terms of size |a| |b|: counted as 8 more terms in gamma, as
//     for error_factor. The |g|^2 bias of the euclidean value is float32 and is bounded separately
//     by alpha_self (error_factor with float32's roundoff).
// Hence |s - <a, b>| <= alpha_bf16 |a| |b| + bf16_floor with alpha_bf16 = 2u + u^2 + (1 + u)^2
// gamma_{D+8}; the factor 1.0625 covers the float32 roundings of alpha itself, of the float64
// norms and of e_cross (relative 2^-24-sized changes of a bound >= 2^-7). The input rounding (2u)
// dominates: at D = 128 the margin (2^-4 * 2u) is 60x gamma_{D+8}, so even an accumulation that
// rounded far worse than round-to-nearest float32 would stay inside the bound.
// Subnormals: VDPBF16PS treats subnormal inputs as zero and flushes subnormal results (DAZ, FTZ).
// A flushed input |a_i| < 2^-126 changes its product by < 2^-126 * 2^21 = 2^-105, a flushed
// product or partial sum by < 2^-126, and rounding in bfloat16's subnormal range errs by <= 2^-134
// absolutely: at most D (2^-105 + 2^-125) < (D + 2) 2^-104 over a dot product (bf16_floor).
OML_FAST_HD inline double bf16_error_factor(int64_t dim) {
  const double u = 0x1p-8, v = 0x1p-24;
  const double n = static_cast<double>(dim) + 8.0;
  const double gamma = n * v / (1.0 - n * v);
  return 1.0625 * (2.0 * u + u * u + (1.0 + u) * (1.0 + u) * gamma);
}

OML_FAST_HD inline double bf16_floor(int64_t dim) {
  return (static_cast<double>(dim) + 2.0) * 0x1p-104;
}

// value_j = bias + scale * <q, g_j>, and its error bound e_self + |q| * e_cross, for gallery item j
// of norm `norm_g` (of the data the GEMM sees). `floor` is an absolute term for subnormal products.
// `alpha_self` bounds the float32 |g|^2 term of the euclidean value, `alpha_cross` the GEMM's inner
// product (equal unless the GEMM is less precise than float32).
struct Ranking {
  double bias, scale, e_self, e_cross;
};

OML_FAST_HD inline Ranking ranking_coefficients(Metric metric, double norm_g, double alpha_self,
                                                double alpha_cross, double floor) {
  switch (metric) {
    case Metric::Euclidean:
    case Metric::SqEuclidean:  // |q - g|^2 - |q|^2 = |g|^2 - 2 <q, g>
      return {norm_g * norm_g, -2.0, alpha_self * norm_g * norm_g + 2 * floor,
              2.0 * alpha_cross * norm_g};
    case Metric::Cosine:  // ((1 - cos) - 1) |q| = -<q, g> / |g|; a zero row has value 0 exactly
      return {0.0, norm_g > 0 ? -1.0 / norm_g : 0.0, norm_g > 0 ? floor / norm_g : 0.0,
              alpha_cross};
    case Metric::Dot:
      return {0.0, -1.0, floor, alpha_cross * norm_g};
  }
  return {0, 0, 0, 0};
}

OML_FAST_HD inline Ranking ranking_coefficients(Metric metric, double norm_g, double alpha,
                                                double floor) {
  return ranking_coefficients(metric, norm_g, alpha, alpha, floor);
}

// The ranking value from the exact float64 sums of one pair (same units as the GEMM's):
// |g|^2 - 2<q, g>, -<q, g> / |g| or -<q, g>.
OML_FAST_HD inline double ranking_value(Metric metric, double dot, double norm_g) {
  switch (metric) {
    case Metric::Euclidean:
    case Metric::SqEuclidean:
      return norm_g * norm_g - 2.0 * dot;
    case Metric::Cosine:
      return norm_g > 0 ? -dot / norm_g : 0.0;
    case Metric::Dot:
      return -dot;
  }
  return 0;
}

// Absolute error floor for subnormal products: D products each off by half a subnormal ulp.
template <typename T>
OML_FAST_HD inline double subnormal_floor(int64_t dim) {
  return (static_cast<double>(dim) + 2.0) *
         static_cast<double>(std::numeric_limits<T>::denorm_min());
}

// ---------------------------------------------------------------------------------------------
// hard_mining's exact key of a pair of (prepared) rows: the squared distance from the differences
// (euclidean metrics) or -<a, b> (cosine on unit rows, dot), a float64 sum in a fixed order: term d
// goes to partial sum d % 8, and the partial sums are added pairwise ((0 + 1) + (2 + 3)) + ((4 + 5)
// + (6 + 7)). Eight independent sums hide the adder's latency (a single running sum is bound by it:
// ~4 cycles per term, 2 us per key at D = 512). Every operation is rounded once, without fused
// multiply-adds (add_rn / mul_rn: the device's __dadd_rn / __dmul_rn; host x86-64 code has none at
// the default -march), so the CPU and CUDA kernels compute bitwise the same key and break ties the
// same way; identical rows give identical keys.
constexpr int kHardnessLanes = 8;

// x + y and x * y, each rounded once (never contracted into a fused multiply-add).
OML_FAST_HD inline double add_rn(double x, double y) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(x, y);
#else
  return x + y;
#endif
}

OML_FAST_HD inline double mul_rn(double x, double y) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(x, y);
#else
  return x * y;
#endif
}

template <typename T>
OML_FAST_HD inline double hardness_term(T a, T b, bool euclidean) {
  const double u = static_cast<double>(a), v = static_cast<double>(b);
  return euclidean ? mul_rn(add_rn(u, -v), add_rn(u, -v)) : mul_rn(-u, v);
}

template <typename T>
OML_FAST_HD inline double hardness_key(const T* a, const T* b, int64_t dim, bool euclidean) {
  double lane[kHardnessLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t d = 0;
  for (; d + kHardnessLanes <= dim; d += kHardnessLanes) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int l = 0; l < kHardnessLanes; ++l) {
      lane[l] = add_rn(lane[l], hardness_term(a[d + l], b[d + l], euclidean));
    }
  }
  for (int l = 0; d + l < dim; ++l) {
    lane[l] = add_rn(lane[l], hardness_term(a[d + l], b[d + l], euclidean));
  }
  return add_rn(add_rn(add_rn(lane[0], lane[1]), add_rn(lane[2], lane[3])),
                add_rn(add_rn(lane[4], lane[5]), add_rn(lane[6], lane[7])));
}

// ---------------------------------------------------------------------------------------------
// pairwise_distance: entries of the |a|^2 + |b|^2 - 2<a, b> expansion whose squared distance is at
// most kRecomputeRatio * (|a|^2 + |b|^2) lost too many digits to cancellation and are recomputed
// from the differences (which also makes identical rows give exactly 0).
// The ratio is at least 100x the GEMM's relative error bound, so the entries that are not
// recomputed keep about two digits more than that bound promises (a reduced-precision GEMM raises
// it).
template <typename T>
constexpr double kRecomputeRatio = 1e-2;
template <>
constexpr double kRecomputeRatio<double> = 1e-8;

template <typename T>
OML_FAST_HD inline double recompute_ratio(int64_t dim, int mantissa_bits) {
  const double bound = 100.0 * error_factor(dim, gemm_unit_roundoff(mantissa_bits));
  return bound > kRecomputeRatio<T> ? bound : kRecomputeRatio<T>;
}

}  // namespace dist
}  // namespace oml_fast
