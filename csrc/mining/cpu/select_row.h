// Exact selection of one anchor's hardest positives and negatives from a row of GEMM keys: the
// per-row path of the CPU hard_mining kernel, also the fallback of the symmetric panel path
// (mining/cpu/symmetric_mining.h) for rows whose candidate lists overflow.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "common/distance_math.h"

namespace oml_fast::mining {

// A list of the n best (key, index) pairs seen so far, best first. `better(a, b)` says key a is
// harder than key b. Candidates arrive in ascending index order and only a strictly better key
// displaces an entry, so among equal keys the smaller index stays first.
template <typename scalar_t, bool kLargestFirst>
struct SortedTopN {
  scalar_t* keys;
  int64_t* ids;
  int64_t capacity;
  int64_t size = 0;

  static bool better(scalar_t a, scalar_t b) { return kLargestFirst ? a > b : a < b; }

  // Hot path: almost every candidate fails this test once the list is full.
  bool admits(scalar_t key) const { return size < capacity || better(key, keys[capacity - 1]); }

  void insert(scalar_t key, int64_t id) {
    int64_t pos = size < capacity ? size : capacity - 1;
    // Shift worse entries down; stop at the first entry that is at least as hard (keeps ties
    // stable).
    while (pos > 0 && better(key, keys[pos - 1])) {
      keys[pos] = keys[pos - 1];
      ids[pos] = ids[pos - 1];
      --pos;
    }
    keys[pos] = key;
    ids[pos] = id;
    if (size < capacity) ++size;
  }
};

// What one row needs besides its GEMM keys: the data, the labels and the per-item error terms of
// the GEMM key (common/distance_math.h): |key_j - exact| <= e_self[j] + |x_anchor| e_cross[j].
template <typename scalar_t>
struct MiningRow {
  const scalar_t* x;
  const int64_t* labels;
  const double* norms;
  const double* e_self;
  const double* e_cross;
  int64_t batch, dim;
  bool euclidean;
};

// Everything a CPU hard_mining kernel works from, prepared once per call (hard_mining_cpu.cpp).
template <typename scalar_t>
struct MiningJob {
  MiningRow<scalar_t> row;
  const scalar_t* sq_norms;  // |x_j|^2 in the GEMM keys' dtype (euclidean metrics), else nullptr
  const bool* anchor_mask;   // nullptr: every item is an anchor
  int64_t n_positive, n_negative;
};

// GEMM inner products of one anchor, in place, into ranking keys: |x_j|^2 - 2 <x, x_j> for the
// euclidean metrics (|x|^2 is constant along the row), -<x, x_j> otherwise.
template <typename scalar_t>
inline void products_to_keys(scalar_t* keys, const scalar_t* sq_norms, int64_t batch) {
  if (sq_norms != nullptr) {
    for (int64_t j = 0; j < batch; ++j) keys[j] = sq_norms[j] - scalar_t(2) * keys[j];
  } else {
    for (int64_t j = 0; j < batch; ++j) keys[j] = -keys[j];
  }
}

// Per-thread scratch of select_row.
template <typename scalar_t>
struct RowScratch {
  std::vector<scalar_t> pos_bounds, neg_bounds;
  std::vector<int64_t> pos_ids, neg_ids;
  std::vector<std::pair<double, int64_t>> candidates;
};

// Chooses the n hardest of `candidates` (exact keys): largest first for positives, smallest first
// for negatives, the smaller index first among equal keys; pads with -1.
inline void take_hardest(std::vector<std::pair<double, int64_t>>& candidates, int64_t n,
                         bool largest_first, int64_t* out) {
  auto harder = [largest_first](const std::pair<double, int64_t>& a,
                                const std::pair<double, int64_t>& b) {
    if (a.first != b.first) return largest_first ? a.first > b.first : a.first < b.first;
    return a.second < b.second;
  };
  const int64_t m = std::min<int64_t>(n, static_cast<int64_t>(candidates.size()));
  std::partial_sort(candidates.begin(), candidates.begin() + m, candidates.end(), harder);
  for (int64_t r = 0; r < m; ++r) out[r] = candidates[r].second;
  for (int64_t r = m; r < n; ++r) out[r] = -1;
}

// Selects the hardest positives (farthest same-label items) and negatives (nearest other-label
// items) of one anchor, exactly. The GEMM keys only screen: every item whose error interval
// reaches the n-th best bound is a candidate, and candidates are ranked by float64 keys computed
// from the rows (the chosen items and their order are those of exact distances, ties to the
// smaller index).
template <typename scalar_t>
void select_row(const scalar_t* keys, const MiningRow<scalar_t>& row, int64_t anchor,
                int64_t n_positive, int64_t n_negative, RowScratch<scalar_t>& scratch,
                int64_t* out_pos, int64_t* out_neg) {
  const int64_t batch = row.batch;
  const int64_t n_pos = std::min(n_positive, batch), n_neg = std::min(n_negative, batch);
  // Pass 1: the n-th largest lower end among positives, the n-th smallest upper end among
  // negatives (a list of n "bounds" each; NaN keys are never candidates).
  SortedTopN<scalar_t, true> pos_bound{scratch.pos_bounds.data(), scratch.pos_ids.data(), n_pos};
  SortedTopN<scalar_t, false> neg_bound{scratch.neg_bounds.data(), scratch.neg_ids.data(), n_neg};
  const double norm_anchor = row.norms[anchor];
  const int64_t anchor_label = row.labels[anchor];
  for (int64_t j = 0; j < batch; ++j) {
    const scalar_t key = keys[j];
    if (key != key) continue;
    const auto half = static_cast<scalar_t>(row.e_self[j] + norm_anchor * row.e_cross[j]);
    if (row.labels[j] == anchor_label) {
      if (j != anchor && n_pos > 0 && pos_bound.admits(key - half)) pos_bound.insert(key - half, j);
    } else if (n_neg > 0 && neg_bound.admits(key + half)) {
      neg_bound.insert(key + half, j);
    }
  }
  const scalar_t pos_limit = pos_bound.size == n_pos && n_pos > 0
                                 ? pos_bound.keys[n_pos - 1]
                                 : -std::numeric_limits<scalar_t>::infinity();
  const scalar_t neg_limit = neg_bound.size == n_neg && n_neg > 0
                                 ? neg_bound.keys[n_neg - 1]
                                 : std::numeric_limits<scalar_t>::infinity();
  // Pass 2: candidates whose interval reaches the limit, ranked by exact keys.
  const scalar_t* a = row.x + anchor * row.dim;
  for (int side = 0; side < 2; ++side) {
    const bool positive = side == 0;
    const int64_t n = positive ? n_positive : n_negative;
    int64_t* out = positive ? out_pos : out_neg;
    if (n == 0) continue;
    scratch.candidates.clear();
    for (int64_t j = 0; j < batch; ++j) {
      const scalar_t key = keys[j];
      if (key != key || (row.labels[j] == anchor_label) != positive || j == anchor) continue;
      const auto half = static_cast<scalar_t>(row.e_self[j] + norm_anchor * row.e_cross[j]);
      if (positive ? key + half < pos_limit : key - half > neg_limit) continue;
      // distance_math.h: float64, bitwise the same key as the CUDA kernel's.
      const double exact = dist::hardness_key(a, row.x + j * row.dim, row.dim, row.euclidean);
      if (exact == exact) scratch.candidates.emplace_back(exact, j);
    }
    take_hardest(scratch.candidates, n, /*largest_first=*/positive, out);
  }
}

}  // namespace oml_fast::mining
