// One row of distances through the slots of an FNMR@FMR window (fnmr_common.h) on the CPU: the
// shared inner step of `_pair_distance_histogram` (a distance tile) and `_embedding_pair_histogram`
// (distances computed from embeddings, tile by tile, and sorted while still in cache).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "retrieval/cpu/fnmr_rows.h"
#include "retrieval/fnmr_common.h"

namespace oml_fast::cpu {

// One slot's count, min and max side by side: an update touches one cache line, not three (2^16
// slots, 1.5 MB, do not fit in L2 and are hit at random).
struct Slot {
  int64_t count;
  double min, max;
};

// One thread's view of one window: its slots, the negatives inside the window (when collecting),
// the positives (when asked). The slots below and above the window are kept in `tally` until
// `finish`.
template <typename scalar_t>
struct WindowTally {
  std::vector<Slot> slots;
  OutsideTally tally;
  std::vector<scalar_t> collected;
  std::vector<scalar_t> positives;
  bool saw_nan = false;

  explicit WindowTally(int64_t n_bins) {
    constexpr double kInf = std::numeric_limits<double>::infinity();
    slots.assign(n_bins + 2, Slot{0, kInf, -kInf});
    tally.below_min = tally.above_min = kInf;
    tally.below_max = tally.above_max = -kInf;
  }

  // Moves the outside tally into slots 0 and n_bins + 1.
  void finish() {
    slots.front() = Slot{tally.below, tally.below_min, tally.below_max};
    slots.back() = Slot{tally.above, tally.above_min, tally.above_max};
  }
};

// Sorts the negatives of one row (keys: the query's and the gallery's) into `out`'s slots of the
// window [lower, upper]; collects the negatives inside when `collect`, the positives when
// `with_positives`. `flagged` has room for ceil(n_gallery / kFnmrBlock) entries. Returns how many
// negatives were collected.
template <typename scalar_t>
inline int64_t histogram_row(const scalar_t* row, int64_t n_gallery, const RowKeys& keys,
                             double lower, double upper, int64_t n_bins, bool collect,
                             bool with_positives, int64_t* flagged, WindowTally<scalar_t>& out) {
  const bool has_ids = keys.ids != nullptr, has_groups = keys.groups != nullptr;
  const int64_t n_flagged =
      scan_row(row, n_gallery, keys, lower, upper, with_positives, out.tally, flagged);
  int64_t n_collected = 0;
  for (int64_t f = 0; f < n_flagged; ++f) {
    const int64_t begin = flagged[f] * kFnmrBlock;
    const int64_t end = std::min(n_gallery, begin + kFnmrBlock);
    for (int64_t j = begin; j < end; ++j) {
      const int kind =
          fnmr::pair_kind(keys.label, keys.labels[j], has_ids, keys.id, has_ids ? keys.ids[j] : 0,
                          has_groups, keys.group, has_groups ? keys.groups[j] : 0);
      if (kind == fnmr::kPositive) {
        if (with_positives) out.positives.push_back(row[j]);
        continue;
      }
      if (kind != fnmr::kNegative) continue;
      const double x = static_cast<double>(row[j]);
      const int64_t slot = fnmr::slot_of(x, lower, upper, n_bins);
      if (slot < 0) {
        out.saw_nan = true;
        continue;
      }
      if (slot == 0 || slot == n_bins + 1) continue;  // counted by scan_row
      Slot& s = out.slots[slot];
      ++s.count;
      s.min = std::min(s.min, x);
      s.max = std::max(s.max, x);
      if (collect) {
        out.collected.push_back(row[j]);
        ++n_collected;
      }
    }
  }
  return n_collected;
}

}  // namespace oml_fast::cpu
