// hard_mining on CPU: per anchor, the n farthest same-label items and the n nearest other-label
// items, in one pass over tiles of anchors. The B x B distance matrix never exists: each thread
// owns one [tile_rows, B] buffer of inner products (filled by a GEMM) and reduces it row by row
// into small sorted lists before moving to its next tile. The GEMM keys only screen the candidates;
// the selection itself is made on float64 keys computed from the rows (see select_row).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "common/distance_math.h"
#include "common/scaling.h"
#include "mining/hard_mining_common.h"

namespace oml_fast {
namespace {

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

template <typename scalar_t>
void hard_mining_kernel(const at::Tensor& x, const at::Tensor& labels,
                        const at::Tensor& anchor_mask, int64_t n_positive, int64_t n_negative,
                        Metric metric, at::Tensor& positives, at::Tensor& negatives) {
  const int64_t batch = x.size(0), dim = x.size(1);
  // GEMM keys are monotone in the distance, so no sqrt/clamp is needed for the screening:
  //   euclidean, sqeuclidean: |y|^2 - 2<x, y>   (|x|^2 is constant along the row)
  //   cosine: -<x/|x|, y/|y|>,  dot: -<x, y>
  // and their error bound per item is the knn one (dist::ranking_coefficients).
  const bool euclidean = metric == Metric::Euclidean || metric == Metric::SqEuclidean;
  const at::Tensor norms = dist::row_norms(x);  // float64, without a float64 copy of x
  const double* norms_ptr = norms.const_data_ptr<double>();
  std::vector<scalar_t> sq_norms(euclidean ? batch : 0);
  std::vector<double> e_self(batch), e_cross(batch);
  const double alpha =
      dist::error_factor(dim, dist::gemm_unit_roundoff(dist::gemm_mantissa_bits(x.scalar_type())));
  const double floor = dist::subnormal_floor<scalar_t>(dim) +
                       static_cast<double>(std::numeric_limits<scalar_t>::min());
  for (int64_t j = 0; j < batch; ++j) {
    // Cosine rows are unit vectors here: the dot metric's terms apply.
    const dist::Ranking r =
        dist::ranking_coefficients(euclidean ? metric : Metric::Dot, norms_ptr[j], alpha, floor);
    e_self[j] = r.e_self;
    e_cross[j] = r.e_cross;
    if (euclidean) sq_norms[j] = static_cast<scalar_t>(r.bias);
  }
  const MiningRow<scalar_t> row{x.const_data_ptr<scalar_t>(),
                                labels.const_data_ptr<int64_t>(),
                                norms_ptr,
                                e_self.data(),
                                e_cross.data(),
                                batch,
                                dim,
                                euclidean};
  const bool* mask_ptr = anchor_mask.defined() ? anchor_mask.const_data_ptr<bool>() : nullptr;
  int64_t* pos_ptr = positives.mutable_data_ptr<int64_t>();
  int64_t* neg_ptr = negatives.mutable_data_ptr<int64_t>();

  const int64_t tile_rows = mining_tile_rows(batch, at::get_num_threads());
  const int64_t n_tiles = (batch + tile_rows - 1) / tile_rows;
  const at::Tensor x_t = x.t();

  // Tiles are handed out dynamically (a shared counter) rather than split statically: on a shared
  // machine a thread that loses its core for a while no longer holds back a fixed share of the
  // work.
  std::atomic<int64_t> next_tile{0};
  const int64_t n_workers = std::min<int64_t>(std::max<int64_t>(at::get_num_threads(), 1), n_tiles);
  at::parallel_for(0, n_workers, 1, [&](int64_t worker_begin, int64_t worker_end) {
    // One buffer per thread for all its tiles; at::mm_out inside a parallel region runs
    // single-threaded, which is what we want (the other threads are busy with other tiles).
    at::Tensor products = at::empty({tile_rows, batch}, x.options());
    // Scratch of at most `batch` entries per list, whatever n_positive / n_negative ask for.
    RowScratch<scalar_t> scratch;
    scratch.pos_bounds.resize(std::clamp<int64_t>(n_positive, 1, batch));
    scratch.pos_ids.resize(scratch.pos_bounds.size());
    scratch.neg_bounds.resize(std::clamp<int64_t>(n_negative, 1, batch));
    scratch.neg_ids.resize(scratch.neg_bounds.size());
    if (worker_begin >= worker_end) return;
    for (int64_t tile = next_tile.fetch_add(1); tile < n_tiles; tile = next_tile.fetch_add(1)) {
      const int64_t row0 = tile * tile_rows;
      const int64_t rows = std::min(tile_rows, batch - row0);
      at::Tensor out = products.narrow(0, 0, rows);
      at::mm_out(out, x.narrow(0, row0, rows), x_t);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t anchor = row0 + r;
        int64_t* row_pos = pos_ptr + anchor * n_positive;
        int64_t* row_neg = neg_ptr + anchor * n_negative;
        if (mask_ptr != nullptr && !mask_ptr[anchor]) {
          std::fill(row_pos, row_pos + n_positive, int64_t{-1});
          std::fill(row_neg, row_neg + n_negative, int64_t{-1});
          continue;
        }
        scalar_t* keys = out.mutable_data_ptr<scalar_t>() + r * batch;
        if (euclidean) {
          for (int64_t j = 0; j < batch; ++j) keys[j] = sq_norms[j] - scalar_t(2) * keys[j];
        } else {
          for (int64_t j = 0; j < batch; ++j) keys[j] = -keys[j];
        }
        select_row<scalar_t>(keys, row, anchor, n_positive, n_negative, scratch, row_pos, row_neg);
      }
    }
  });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> hard_mining_cpu(const at::Tensor& embeddings,
                                                   const at::Tensor& labels, int64_t n_positive,
                                                   int64_t n_negative, c10::string_view metric,
                                                   const std::optional<at::Tensor>& anchor_mask) {
  const Metric parsed =
      check_hard_mining_inputs(embeddings, labels, n_positive, n_negative, metric, anchor_mask);
  // Distances to NaN / inf rows cannot be ranked: the op would silently never select them.
  check_finite(embeddings, "embeddings", "hard_mining");
  const int64_t batch = embeddings.size(0);
  auto index_options = labels.options().dtype(at::kLong);
  at::Tensor positives = at::empty({batch, n_positive}, index_options);
  at::Tensor negatives = at::empty({batch, n_negative}, index_options);
  if (batch == 0) return {positives, negatives};

  // Half precision inputs are reduced in fp32 (keys of 16-bit floats tie far too often).
  at::Tensor x = prepare_mining_embeddings(embeddings, parsed);
  at::Tensor labels64 = labels.contiguous();
  at::Tensor mask = anchor_mask.has_value() ? anchor_mask->contiguous() : at::Tensor();

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "hard_mining_cpu", [&] {
    hard_mining_kernel<scalar_t>(x, labels64, mask, n_positive, n_negative, parsed, positives,
                                 negatives);
  });
  return {positives, negatives};
}

TORCH_LIBRARY_IMPL(oml_fast, CPU, m) { m.impl("hard_mining", &hard_mining_cpu); }

}  // namespace oml_fast
