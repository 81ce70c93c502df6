// hard_mining on CPU: per anchor, the n farthest same-label items and the n nearest other-label
// items. The B x B distance matrix never exists. Two paths give identical selections:
//  * symmetric (mining/cpu/symmetric_mining.h; n_positive, n_negative <= 8): each inner product of
//    the batch with itself is computed once, in panels, and serves both of its anchors -- half the
//    GEMM work of the per-row path;
//  * per-row (below; any n): each thread owns one [tile_rows, B] buffer of inner products (filled
//    by a GEMM) and reduces it row by row into small sorted lists.
// The GEMM keys only screen the candidates; the selection itself is made on float64 keys computed
// from the rows (select_row.h).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "common/distance_math.h"
#include "common/scaling.h"
#include "mining/cpu/select_row.h"
#include "mining/cpu/symmetric_mining.h"
#include "mining/hard_mining_common.h"

namespace oml_fast {
namespace {

using mining::MiningJob;
using mining::MiningRow;
using mining::RowScratch;

// The per-row path: per thread, a GEMM on a tile of anchors against the whole batch, then each
// row's exact selection (select_row). Takes every n_positive / n_negative.
template <typename scalar_t>
void mine_rows(const at::Tensor& x, const MiningJob<scalar_t>& job, int64_t* pos_ptr,
               int64_t* neg_ptr) {
  const int64_t batch = job.row.batch;
  const int64_t n_positive = job.n_positive, n_negative = job.n_negative;
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
        if (job.anchor_mask != nullptr && !job.anchor_mask[anchor]) {
          std::fill(row_pos, row_pos + n_positive, int64_t{-1});
          std::fill(row_neg, row_neg + n_negative, int64_t{-1});
          continue;
        }
        scalar_t* keys = out.mutable_data_ptr<scalar_t>() + r * batch;
        mining::products_to_keys(keys, job.sq_norms, batch);
        mining::select_row<scalar_t>(keys, job.row, anchor, n_positive, n_negative, scratch,
                                     row_pos, row_neg);
      }
    }
  });
}

// Which path: OML_FAST_MINING_PATH (read on every call; for tests and benchmarks) = rows or
// symmetric, else symmetric whenever it takes n_positive / n_negative.
bool use_symmetric_path(int64_t batch, int64_t n_positive, int64_t n_negative) {
  // The candidate lists hold 32-bit item ids.
  const bool fits = n_positive <= mining::kSymmetricMaxN && n_negative <= mining::kSymmetricMaxN &&
                    batch < std::numeric_limits<int32_t>::max();
  const char* knob = std::getenv("OML_FAST_MINING_PATH");
  if (knob == nullptr || *knob == '\0') return fits;
  const std::string value(knob);
  if (value == "rows") return false;
  if (value == "symmetric") return fits;
  TORCH_CHECK_VALUE(false, "the environment variable OML_FAST_MINING_PATH is '", value,
                    "'; expected 'rows' or 'symmetric' (or unset)");
  return false;
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
  const MiningJob<scalar_t> job{
      MiningRow<scalar_t>{x.const_data_ptr<scalar_t>(), labels.const_data_ptr<int64_t>(), norms_ptr,
                          e_self.data(), e_cross.data(), batch, dim, euclidean},
      euclidean ? sq_norms.data() : nullptr,
      anchor_mask.defined() ? anchor_mask.const_data_ptr<bool>() : nullptr, n_positive, n_negative};
  int64_t* pos_ptr = positives.mutable_data_ptr<int64_t>();
  int64_t* neg_ptr = negatives.mutable_data_ptr<int64_t>();
  if (use_symmetric_path(batch, n_positive, n_negative)) {
    mining::mine_symmetric<scalar_t>(x, job, pos_ptr, neg_ptr);
  } else {
    mine_rows<scalar_t>(x, job, pos_ptr, neg_ptr);
  }
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
