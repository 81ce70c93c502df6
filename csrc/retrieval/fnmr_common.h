// Per-element formulas of the private `_pair_distance_histogram` op (one streaming pass of
// FNMR@FMR over a distance tile, oml_fast/metrics/fnmr.py), shared by the CPU and the CUDA kernels
// so that both sort every pair into the same slot. The pure-PyTorch twin is
// oml_fast/reference/fnmr.py.
//
// A pass looks at the window [lower, upper] (closed; either bound may be infinite). Every negative
// pair (different labels, not excluded) lands in one of n_bins + 2 slots:
//   slot 0            value < lower
//   slot 1 + bin      lower <= value <= upper, bin = floor((value - lower) / width * n_bins)
//                     clamped to [0, n_bins - 1], width = upper - lower (bin 0 when n_bins == 1 or
//                     width is not positive)
//   slot n_bins + 1   value > upper
// Values are compared in float64 (float16 / bfloat16 / float32 distances convert exactly).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define OML_FAST_FNMR_HD __host__ __device__ __forceinline__
#else
#define OML_FAST_FNMR_HD inline
#endif

namespace oml_fast {
namespace fnmr {

// What a query-gallery pair is: excluded (equal id or equal group), positive (equal label) or
// negative. An exclusion key counts only when given (has_ids / has_groups).
enum PairKind : int { kExcluded = 0, kPositive = 1, kNegative = 2 };

OML_FAST_FNMR_HD int pair_kind(int64_t query_label, int64_t gallery_label, bool has_ids,
                               int64_t query_id, int64_t gallery_id, bool has_groups,
                               int64_t query_group, int64_t gallery_group) {
  if ((has_ids && query_id == gallery_id) || (has_groups && query_group == gallery_group))
    return kExcluded;
  return query_label == gallery_label ? kPositive : kNegative;
}

// Bin of a value inside the window: the same double operations as `bin_of` in
// oml_fast/reference/fnmr.py, so every device sees the same partition. Monotone in the value
// (subtraction, division and multiplication by positive constants round monotonically), hence bins
// are consecutive value ranges and a bin's exact [min, max] holds exactly that bin's values.
OML_FAST_FNMR_HD int64_t bin_of(double value, double lower, double upper, int64_t n_bins) {
  const double width = upper - lower;
  if (n_bins == 1 || !(width > 0)) return 0;
  double t = floor((value - lower) / width * static_cast<double>(n_bins));
  t = t < 0.0 ? 0.0 : t;
  const double last = static_cast<double>(n_bins - 1);
  return static_cast<int64_t>(t > last ? last : t);
}

// Slot of a negative's value (see the top of this file); -1 for NaN (an error for the caller).
OML_FAST_FNMR_HD int64_t slot_of(double value, double lower, double upper, int64_t n_bins) {
  if (value < lower) return 0;
  if (value > upper) return n_bins + 1;
  if (value != value) return -1;
  return 1 + bin_of(value, lower, upper, n_bins);
}

// Order-preserving int64 image of a double (for atomic min / max on the device): x < y exactly
// when ordered_key(x) < ordered_key(y), for every non-NaN double (-0.0 sorts just below +0.0).
OML_FAST_FNMR_HD int64_t ordered_key(double value) {
  int64_t bits;
  memcpy(&bits, &value, sizeof(bits));
  return bits >= 0 ? bits : bits ^ INT64_MAX;
}

OML_FAST_FNMR_HD double from_ordered_key(int64_t key) {
  const int64_t bits = key >= 0 ? key : key ^ INT64_MAX;
  double value;
  memcpy(&value, &bits, sizeof(value));
  return value;
}

}  // namespace fnmr
}  // namespace oml_fast
