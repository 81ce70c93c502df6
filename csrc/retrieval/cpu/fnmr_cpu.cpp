// One streaming pass of FNMR@FMR over a distance tile (oml_fast/metrics/fnmr.py), on the CPU.
//
// For a tile `dist` [rows, Ng] of query-gallery distances it skips excluded pairs (equal id or
// equal group), keeps the positives (equal label) when asked, and routes every negative, as
// float64, through the window chain: a negative belongs to the window when, at every level, its bin
// equals the level's bin. Negatives of the window are either collected or histogrammed (count, min,
// max per bin) over (lo, width, n_bins). The bin is computed with the same double operations as the
// Python
// `_bin_of` (floor((v - lo) / width * n_bins), clamped), so every pass sees the same partition and
// the result is bit-identical to the reference (oml_fast/reference/fnmr.py).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "retrieval/retrieval_checks.h"

namespace oml_fast {
namespace {

// Most bins of one histogram: every thread keeps its own (24 bytes a bin), so this bounds the
// memory of a pass (FNMR@FMR uses 2**16).
constexpr int64_t kMaxBins = int64_t{1} << 20;

// Bin of `value`, exactly as `_bin_of` in oml_fast/metrics/fnmr.py computes it (tensor ops in
// double).
inline int64_t bin_of(double value, double lo, double width, int64_t n_bins) {
  if (width <= 0) return 0;
  double t = std::floor((value - lo) / width * static_cast<double>(n_bins));
  t = std::max(t, 0.0);
  t = std::min(t, static_cast<double>(n_bins - 1));
  return static_cast<int64_t>(t);
}

// What one chunk of rows produced; chunks are merged in order, so the op is deterministic.
// One bin's count, min and max side by side: an update touches one cache line, not three (the
// histogram, 1.5 MB at 2^16 bins, does not fit in L2 and bins are hit at random).
struct Bin {
  int64_t count;
  double min, max;
};

template <typename scalar_t>
struct ChunkResult {
  std::vector<Bin> bins;
  std::vector<double> collected;
  std::vector<scalar_t> positives;
  bool saw_nan = false;
};

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> pair_distance_histogram_cpu(
    const at::Tensor& dist, const at::Tensor& query_labels, const at::Tensor& gallery_labels,
    const std::optional<at::Tensor>& query_ids, const std::optional<at::Tensor>& gallery_ids,
    const std::optional<at::Tensor>& query_groups, const std::optional<at::Tensor>& gallery_groups,
    at::ArrayRef<double> chain_lo, at::ArrayRef<double> chain_width, at::IntArrayRef chain_n_bins,
    at::IntArrayRef chain_bin, double lower, double upper, double lo, double width, int64_t n_bins,
    bool collect, bool with_positives) {
  TORCH_CHECK_VALUE(dist.dim() == 2, "`dist` must be a 2-D tensor [rows, Ng], got ",
                    describe(dist));
  TORCH_CHECK_TYPE(dist.scalar_type() == at::kFloat || dist.scalar_type() == at::kDouble,
                   "`dist` must be float32 or float64, got ", describe(dist));
  const auto device = dist.device();
  const int64_t rows = dist.size(0), n_gallery = dist.size(1);
  check_index_vector(query_labels, "query_labels", rows, device);
  check_index_vector(gallery_labels, "gallery_labels", n_gallery, device);
  const bool has_ids = retrieval::check_key_pair(query_ids, "query_ids", gallery_ids, "gallery_ids",
                                                 rows, n_gallery, device);
  const bool has_groups = retrieval::check_key_pair(query_groups, "query_groups", gallery_groups,
                                                    "gallery_groups", rows, n_gallery, device);
  const auto depth = static_cast<int64_t>(chain_lo.size());
  TORCH_CHECK_VALUE(
      static_cast<int64_t>(chain_width.size()) == depth &&
          static_cast<int64_t>(chain_n_bins.size()) == depth &&
          static_cast<int64_t>(chain_bin.size()) == depth,
      "`chain_lo`, `chain_width`, `chain_n_bins` and `chain_bin` must have the same length, got ",
      depth, ", ", chain_width.size(), ", ", chain_n_bins.size(), ", ", chain_bin.size());
  for (int64_t level = 0; level < depth; ++level)
    TORCH_CHECK_VALUE(chain_n_bins[level] >= 1, "`chain_n_bins` must be positive, got ",
                      chain_n_bins[level]);
  TORCH_CHECK_VALUE(n_bins >= 1, "`n_bins` must be a positive integer, got ", n_bins);
  // Checked before the per-thread histograms are allocated.
  TORCH_CHECK_VALUE(n_bins <= kMaxBins, "`n_bins` must be at most ", kMaxBins, " (2**20), got ",
                    n_bins);

  const at::Tensor d = dist.contiguous();
  const at::Tensor ql = query_labels.contiguous(), gl = gallery_labels.contiguous();
  const at::Tensor qid = has_ids ? query_ids->contiguous() : at::Tensor();
  const at::Tensor gid = has_ids ? gallery_ids->contiguous() : at::Tensor();
  const at::Tensor qgr = has_groups ? query_groups->contiguous() : at::Tensor();
  const at::Tensor ggr = has_groups ? gallery_groups->contiguous() : at::Tensor();
  const int64_t* ql_p = ql.data_ptr<int64_t>();
  const int64_t* gl_p = gl.data_ptr<int64_t>();
  const int64_t* qid_p = has_ids ? qid.data_ptr<int64_t>() : nullptr;
  const int64_t* gid_p = has_ids ? gid.data_ptr<int64_t>() : nullptr;
  const int64_t* qgr_p = has_groups ? qgr.data_ptr<int64_t>() : nullptr;
  const int64_t* ggr_p = has_groups ? ggr.data_ptr<int64_t>() : nullptr;
  const std::vector<double> c_lo(chain_lo.begin(), chain_lo.end()),
      c_width(chain_width.begin(), chain_width.end());
  const std::vector<int64_t> c_n(chain_n_bins.begin(), chain_n_bins.end()),
      c_bin(chain_bin.begin(), chain_bin.end());
  const int64_t hist_bins = collect ? 0 : n_bins;
  constexpr double kInf = std::numeric_limits<double>::infinity();

  at::Tensor counts = at::zeros({hist_bins}, d.options().dtype(at::kLong));
  at::Tensor mins = at::full({hist_bins}, kInf, d.options().dtype(at::kDouble));
  at::Tensor maxs = at::full({hist_bins}, -kInf, d.options().dtype(at::kDouble));
  at::Tensor collected, positives;

  AT_DISPATCH_FLOATING_TYPES(d.scalar_type(), "pair_distance_histogram_cpu", [&] {
    const scalar_t* d_p = d.data_ptr<scalar_t>();
    // One chunk per thread (at most), each with its own histogram: no atomics, deterministic merge.
    const int64_t n_chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows));
    std::vector<ChunkResult<scalar_t>> chunks(n_chunks);
    at::parallel_for(0, n_chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
      for (int64_t c = chunk_begin; c < chunk_end; ++c) {
        ChunkResult<scalar_t>& out = chunks[c];
        if (!collect) out.bins.assign(n_bins, Bin{0, kInf, -kInf});
        const int64_t row_begin = rows * c / n_chunks, row_end = rows * (c + 1) / n_chunks;
        for (int64_t i = row_begin; i < row_end; ++i) {
          const scalar_t* row = d_p + i * n_gallery;
          const int64_t label = ql_p[i];
          const int64_t id = has_ids ? qid_p[i] : 0, group = has_groups ? qgr_p[i] : 0;
          for (int64_t j = 0; j < n_gallery; ++j) {
            if (has_ids && gid_p[j] == id) continue;
            if (has_groups && ggr_p[j] == group) continue;
            const scalar_t v = row[j];
            if (gl_p[j] == label) {
              if (with_positives) out.positives.push_back(v);
              continue;
            }
            const double x = static_cast<double>(v);
            if (std::isnan(x)) {
              out.saw_nan = true;
              continue;
            }
            // The window is the value interval [lower, upper] (bins are consecutive value ranges
            // and these are the exact min and max of its last level's bin, seen by an earlier
            // pass), so this rejects almost every value before any division; the chain check stays
            // exact.
            if (x < lower || x > upper) continue;
            bool inside = true;
            for (int64_t level = 0; level < depth && inside; ++level)
              inside = bin_of(x, c_lo[level], c_width[level], c_n[level]) == c_bin[level];
            if (!inside) continue;
            if (collect) {
              out.collected.push_back(x);
            } else {
              Bin& bin = out.bins[bin_of(x, lo, width, n_bins)];
              ++bin.count;
              bin.min = std::min(bin.min, x);
              bin.max = std::max(bin.max, x);
            }
          }
        }
      }
    });

    bool saw_nan = false;
    int64_t n_collected = 0, n_positive = 0;
    for (const auto& chunk : chunks) {
      saw_nan |= chunk.saw_nan;
      n_collected += static_cast<int64_t>(chunk.collected.size());
      n_positive += static_cast<int64_t>(chunk.positives.size());
    }
    TORCH_CHECK_VALUE(!saw_nan, "`dist` contains NaN distances between negative pairs");
    collected = at::empty({n_collected}, d.options().dtype(at::kDouble));
    positives = at::empty({n_positive}, d.options());
    double* collected_p = collected.data_ptr<double>();
    scalar_t* positives_p = positives.data_ptr<scalar_t>();
    int64_t* counts_p = counts.data_ptr<int64_t>();
    double* mins_p = mins.data_ptr<double>();
    double* maxs_p = maxs.data_ptr<double>();
    for (const auto& chunk : chunks) {
      collected_p = std::copy(chunk.collected.begin(), chunk.collected.end(), collected_p);
      positives_p = std::copy(chunk.positives.begin(), chunk.positives.end(), positives_p);
      for (int64_t b = 0; b < hist_bins; ++b) {
        counts_p[b] += chunk.bins[b].count;
        mins_p[b] = std::min(mins_p[b], chunk.bins[b].min);
        maxs_p[b] = std::max(maxs_p[b], chunk.bins[b].max);
      }
    }
  });
  return {counts, mins, maxs, collected, positives};
}

}  // namespace

TORCH_LIBRARY_IMPL(oml_fast, CPU, m) {
  m.impl("_pair_distance_histogram", &pair_distance_histogram_cpu);
}

}  // namespace oml_fast
