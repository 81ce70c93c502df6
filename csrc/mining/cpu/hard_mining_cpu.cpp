// hard_mining on CPU: per anchor, the n farthest same-label items and the n nearest other-label
// items, in one pass over tiles of anchors. The B x B distance matrix never exists: each thread
// owns one [tile_rows, B] buffer of inner products (filled by a GEMM) and reduces it row by row
// into small sorted lists before moving to its next tile.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

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

// Reduces one row of keys (smaller key = closer) into the hardest positives and negatives.
template <typename scalar_t>
void select_row(const scalar_t* row_keys, const int64_t* labels, int64_t batch, int64_t anchor,
                int64_t n_positive, int64_t n_negative, scalar_t* pos_keys, scalar_t* neg_keys,
                int64_t* out_pos, int64_t* out_neg) {
  SortedTopN<scalar_t, true> positives{pos_keys, out_pos, n_positive};
  SortedTopN<scalar_t, false> negatives{neg_keys, out_neg, n_negative};
  const int64_t anchor_label = labels[anchor];
  for (int64_t j = 0; j < batch; ++j) {
    const scalar_t key = row_keys[j];
    if (labels[j] == anchor_label) {
      // NaN fails `admits` once the list is full; the explicit test keeps it out while filling.
      if (j != anchor && n_positive > 0 && key == key && positives.admits(key))
        positives.insert(key, j);
    } else if (n_negative > 0 && key == key && negatives.admits(key)) {
      negatives.insert(key, j);
    }
  }
  for (int64_t r = positives.size; r < n_positive; ++r) out_pos[r] = -1;
  for (int64_t r = negatives.size; r < n_negative; ++r) out_neg[r] = -1;
}

template <typename scalar_t>
void hard_mining_kernel(const at::Tensor& x, const at::Tensor& labels,
                        const at::Tensor& anchor_mask, int64_t n_positive, int64_t n_negative,
                        Metric metric, at::Tensor& positives, at::Tensor& negatives) {
  const int64_t batch = x.size(0);
  // Keys are monotone in the distance, so no sqrt/clamp is needed for the selection:
  //   euclidean, sqeuclidean: |y|^2 - 2<x, y>   (|x|^2 is constant along the row)
  //   cosine: -<x/|x|, y/|y|>,  dot: -<x, y>
  at::Tensor sq_norms;
  if (metric == Metric::Euclidean || metric == Metric::SqEuclidean)
    sq_norms = (x * x).sum(1).contiguous();
  const scalar_t* norms_ptr = sq_norms.defined() ? sq_norms.data_ptr<scalar_t>() : nullptr;
  const int64_t* labels_ptr = labels.data_ptr<int64_t>();
  const bool* mask_ptr = anchor_mask.defined() ? anchor_mask.data_ptr<bool>() : nullptr;
  int64_t* pos_ptr = positives.data_ptr<int64_t>();
  int64_t* neg_ptr = negatives.data_ptr<int64_t>();

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
    std::vector<scalar_t> pos_keys(std::max<int64_t>(n_positive, 1));
    std::vector<scalar_t> neg_keys(std::max<int64_t>(n_negative, 1));
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
        scalar_t* keys = out.data_ptr<scalar_t>() + r * batch;
        if (norms_ptr != nullptr) {
          for (int64_t j = 0; j < batch; ++j) keys[j] = norms_ptr[j] - scalar_t(2) * keys[j];
        } else {
          for (int64_t j = 0; j < batch; ++j) keys[j] = -keys[j];
        }
        select_row<scalar_t>(keys, labels_ptr, batch, anchor, n_positive, n_negative,
                             pos_keys.data(), neg_keys.data(), row_pos, row_neg);
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
