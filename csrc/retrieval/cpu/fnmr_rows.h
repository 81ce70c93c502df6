// The vectorised first look of the CPU `_pair_distance_histogram` kernel at one row of a distance
// tile (fnmr_common.h): almost every negative of a pass lies outside the window, and those only
// need a count, a min and a max.
#pragma once

#include <cstdint>

namespace oml_fast::cpu {

// Columns of a row are looked at in blocks of this many: a block that holds anything but negatives
// outside the window is revisited element by element, so blocks stay small.
constexpr int64_t kFnmrBlock = 64;

// The gallery side of a row's pairs. `ids` / `groups` are nullptr when that exclusion is not given.
struct RowKeys {
  const int64_t* labels;
  const int64_t* ids;
  const int64_t* groups;
  int64_t label, id, group;  // the query's keys
};

// Negatives below / above the window [lower, upper] (slots 0 and n_bins + 1 of fnmr_common.h).
struct OutsideTally {
  int64_t below = 0, above = 0;
  double below_min, below_max, above_min, above_max;  // +-inf while empty
};

// Adds the row's negatives below and above [lower, upper] to `tally` and writes the indices of the
// blocks (of kFnmrBlock columns) that hold a negative inside the window or a NaN, or a positive
// when `with_positives`, to `flagged`; returns how many. `flagged` has room for ceil(n /
// kFnmrBlock).
int64_t scan_row(const float* row, int64_t n, const RowKeys& keys, double lower, double upper,
                 bool with_positives, OutsideTally& tally, int64_t* flagged);
int64_t scan_row(const double* row, int64_t n, const RowKeys& keys, double lower, double upper,
                 bool with_positives, OutsideTally& tally, int64_t* flagged);

}  // namespace oml_fast::cpu
