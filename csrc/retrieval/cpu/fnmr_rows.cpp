#include "retrieval/cpu/fnmr_rows.h"

#include <algorithm>

#include "common/simd.h"

namespace oml_fast::cpu {
namespace {

// One block, in a loop the compiler vectorises (omp simd: the min / max reductions may be
// reordered; the values are never NaN there, and min / max of exact values do not depend on the
// order). The two comparisons are the first two tests of fnmr::slot_of; the pair kinds are
// fnmr::pair_kind.
template <bool kIds, bool kGroups, typename scalar_t>
__attribute__((always_inline)) inline bool scan_block(const scalar_t* row, int64_t begin,
                                                      int64_t end, const RowKeys& keys,
                                                      double lower, double upper,
                                                      bool with_positives, OutsideTally& tally) {
  int64_t below = 0, above = 0, flagged = 0;
  double below_min = tally.below_min, below_max = tally.below_max;
  double above_min = tally.above_min, above_max = tally.above_max;
  constexpr double kInf = __builtin_inf();
#pragma omp simd reduction(+ : below, above, flagged) reduction(min : below_min, above_min) \
    reduction(max : below_max, above_max)
  for (int64_t j = begin; j < end; ++j) {
    const bool excluded =
        (kIds && keys.ids[j] == keys.id) | (kGroups && keys.groups[j] == keys.group);
    const bool same_label = keys.labels[j] == keys.label;
    const bool negative = !excluded & !same_label;
    const double x = static_cast<double>(row[j]);
    const bool is_below = negative & (x < lower);
    const bool is_above = negative & (x > upper);
    below += is_below;
    above += is_above;
    below_min = std::min(below_min, is_below ? x : kInf);
    below_max = std::max(below_max, is_below ? x : -kInf);
    above_min = std::min(above_min, is_above ? x : kInf);
    above_max = std::max(above_max, is_above ? x : -kInf);
    flagged += (negative & !is_below & !is_above) | (with_positives & !excluded & same_label);
  }
  tally.below += below;
  tally.above += above;
  tally.below_min = below_min;
  tally.below_max = below_max;
  tally.above_min = above_min;
  tally.above_max = above_max;
  return flagged > 0;
}

template <bool kIds, bool kGroups, typename scalar_t>
__attribute__((always_inline)) inline int64_t scan_row_impl(const scalar_t* row, int64_t n,
                                                            const RowKeys& keys, double lower,
                                                            double upper, bool with_positives,
                                                            OutsideTally& tally, int64_t* flagged) {
  int64_t n_flagged = 0;
  for (int64_t block = 0; block * kFnmrBlock < n; ++block) {
    const int64_t begin = block * kFnmrBlock, end = std::min(n, begin + kFnmrBlock);
    if (scan_block<kIds, kGroups>(row, begin, end, keys, lower, upper, with_positives, tally))
      flagged[n_flagged++] = block;
  }
  return n_flagged;
}

template <typename scalar_t>
__attribute__((always_inline)) inline int64_t scan_row_dispatch(const scalar_t* row, int64_t n,
                                                                const RowKeys& keys, double lower,
                                                                double upper, bool with_positives,
                                                                OutsideTally& tally,
                                                                int64_t* flagged) {
  const bool ids = keys.ids != nullptr, groups = keys.groups != nullptr;
  if (ids && groups)
    return scan_row_impl<true, true>(row, n, keys, lower, upper, with_positives, tally, flagged);
  if (ids)
    return scan_row_impl<true, false>(row, n, keys, lower, upper, with_positives, tally, flagged);
  if (groups)
    return scan_row_impl<false, true>(row, n, keys, lower, upper, with_positives, tally, flagged);
  return scan_row_impl<false, false>(row, n, keys, lower, upper, with_positives, tally, flagged);
}

}  // namespace

OML_FAST_MULTIVERSION int64_t scan_row(const float* row, int64_t n, const RowKeys& keys,
                                       double lower, double upper, bool with_positives,
                                       OutsideTally& tally, int64_t* flagged) {
  return scan_row_dispatch(row, n, keys, lower, upper, with_positives, tally, flagged);
}

OML_FAST_MULTIVERSION int64_t scan_row(const double* row, int64_t n, const RowKeys& keys,
                                       double lower, double upper, bool with_positives,
                                       OutsideTally& tally, int64_t* flagged) {
  return scan_row_dispatch(row, n, keys, lower, upper, with_positives, tally, flagged);
}

}  // namespace oml_fast::cpu
