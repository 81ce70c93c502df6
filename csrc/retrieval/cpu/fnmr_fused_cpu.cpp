// `_embedding_pair_histogram` on the CPU: one whole streaming pass of FNMR@FMR
// (oml_fast/metrics/fnmr.py) from the embeddings. Tiles of query rows x gallery columns are
// computed exactly as pairwise_distance computes them (the same GEMM call, the same conversion,
// distance/cpu/distance_rows.h), and every row of a tile goes through the slots of every window
// (fnmr_histogram.h) right after its conversion, while it is still in cache: the distances are
// never written to a tile that is read again, the gallery's norms are computed once per pass, and
// each thread reuses one tile buffer.
//
// Tiles are split into one contiguous chunk per thread, each with its own slots, merged in chunk
// order: no atomics on the slots, deterministic. A collecting window stops collecting (and says so
// in `overflowed`) once more than `max_collect` negatives fell inside it, so that a window that
// turned out too wide does not hold the pass's memory.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "common/checks.h"
#include "distance/cpu/distance_tiles.h"
#include "distance/pairwise_distance.h"
#include "retrieval/cpu/fnmr_histogram.h"
#include "retrieval/retrieval_checks.h"

namespace oml_fast {
namespace {

// Bytes of all threads' tile buffers together: at most this many threads work at once (bounded
// memory whatever the thread count).
constexpr int64_t kBufferBudgetBytes = int64_t(32) << 20;

struct Windows {
  at::ArrayRef<double> lowers, uppers;
  at::IntArrayRef n_bins;
  std::vector<bool> collect;
  int64_t size() const { return static_cast<int64_t>(lowers.size()); }
};

using Outputs =
    std::tuple<std::vector<at::Tensor>, std::vector<at::Tensor>, std::vector<at::Tensor>,
               std::vector<at::Tensor>, at::Tensor, at::Tensor>;

template <typename scalar_t>
Outputs run_pass(const at::Tensor& queries, const at::Tensor& gallery, Metric metric,
                 const at::Tensor& ql, const at::Tensor& qid, const at::Tensor& qgr,
                 const cpu::RowKeys& gallery_keys, const Windows& windows, int64_t max_collect,
                 bool with_positives) {
  const int64_t n_windows = windows.size();
  // pairwise_distance's tiles and values, one chunk of consecutive tiles per worker.
  const cpu::TileDistances<scalar_t> distances(metric, queries, gallery);
  const cpu::DistanceTiles& tiles = distances.tiles();
  const int64_t n_tiles = tiles.count();
  const int64_t tile_bytes = tiles.rows * tiles.cols * queries.element_size();
  const int64_t workers = std::clamp<int64_t>(kBufferBudgetBytes / tile_bytes, 1,
                                              std::max<int64_t>(1, at::get_num_threads()));
  const int64_t n_chunks = std::max<int64_t>(1, std::min(workers, n_tiles));

  // chunk x window tallies; window 0 of a chunk also holds its positives.
  std::vector<std::vector<cpu::WindowTally<scalar_t>>> tallies(n_chunks);
  for (auto& chunk : tallies)
    for (int64_t w = 0; w < n_windows; ++w) chunk.emplace_back(windows.n_bins[w]);
  std::unique_ptr<std::atomic<int64_t>[]> collected_total(new std::atomic<int64_t>[n_windows]);
  std::unique_ptr<std::atomic<bool>[]> overflowed(new std::atomic<bool>[n_windows]);
  for (int64_t w = 0; w < n_windows; ++w) {
    collected_total[w] = 0;
    overflowed[w] = false;
  }

  const int64_t* ql_ptr = ql.const_data_ptr<int64_t>();
  const int64_t* qid_ptr = gallery_keys.ids != nullptr ? qid.const_data_ptr<int64_t>() : nullptr;
  const int64_t* qgr_ptr = gallery_keys.groups != nullptr ? qgr.const_data_ptr<int64_t>() : nullptr;
  at::parallel_for(0, n_chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    for (int64_t c = chunk_begin; c < chunk_end; ++c) {
      auto& chunk = tallies[c];
      const at::Tensor buffer = distances.new_buffer();
      std::vector<int64_t> flagged((tiles.cols + cpu::kFnmrBlock - 1) / cpu::kFnmrBlock);
      cpu::RowKeys keys = gallery_keys;
      for (int64_t t = n_tiles * c / n_chunks; t < n_tiles * (c + 1) / n_chunks; ++t) {
        distances.for_each_row(
            t, buffer, [&](int64_t i, int64_t j0, const scalar_t* row, int64_t cols) {
              // The query's keys, and the gallery's keys of this column block.
              keys.labels = gallery_keys.labels + j0;
              keys.ids = gallery_keys.ids != nullptr ? gallery_keys.ids + j0 : nullptr;
              keys.groups = gallery_keys.groups != nullptr ? gallery_keys.groups + j0 : nullptr;
              keys.label = ql_ptr[i];
              keys.id = qid_ptr != nullptr ? qid_ptr[i] : 0;
              keys.group = qgr_ptr != nullptr ? qgr_ptr[i] : 0;
              for (int64_t w = 0; w < n_windows; ++w) {
                const bool collect =
                    windows.collect[w] && !overflowed[w].load(std::memory_order_relaxed);
                const int64_t added = cpu::histogram_row(
                    row, cols, keys, windows.lowers[w], windows.uppers[w], windows.n_bins[w],
                    collect, with_positives && w == 0, flagged.data(), chunk[w]);
                if (added > 0 && collected_total[w].fetch_add(added) + added > max_collect)
                  overflowed[w] = true;
              }
            });
      }
      for (auto& tally : chunk) tally.finish();
    }
  });

  const auto options = queries.options();
  std::vector<at::Tensor> counts, mins, maxs, collected;
  at::Tensor overflow_out = at::empty({n_windows}, options.dtype(at::kBool));
  for (int64_t w = 0; w < n_windows; ++w) {
    const int64_t n_slots = windows.n_bins[w] + 2;
    constexpr double kInf = std::numeric_limits<double>::infinity();
    at::Tensor c = at::zeros({n_slots}, options.dtype(at::kLong));
    at::Tensor lo = at::full({n_slots}, kInf, options.dtype(at::kDouble));
    at::Tensor hi = at::full({n_slots}, -kInf, options.dtype(at::kDouble));
    int64_t* c_p = c.mutable_data_ptr<int64_t>();
    double* lo_p = lo.mutable_data_ptr<double>();
    double* hi_p = hi.mutable_data_ptr<double>();
    bool saw_nan = false;
    const bool over = overflowed[w].load();
    int64_t n_collected = 0;
    for (const auto& chunk : tallies) {
      saw_nan |= chunk[w].saw_nan;
      n_collected += over ? 0 : static_cast<int64_t>(chunk[w].collected.size());
      for (int64_t s = 0; s < n_slots; ++s) {
        c_p[s] += chunk[w].slots[s].count;
        lo_p[s] = std::min(lo_p[s], chunk[w].slots[s].min);
        hi_p[s] = std::max(hi_p[s], chunk[w].slots[s].max);
      }
    }
    // Only a NaN embedding gives a NaN distance; the Python caller rejects those first.
    TORCH_CHECK_VALUE(!saw_nan, "the distances contain NaN between negative pairs");
    at::Tensor values = at::empty({n_collected}, options);
    scalar_t* v_p = values.mutable_data_ptr<scalar_t>();
    for (auto& chunk : tallies) {
      if (!over) v_p = std::copy(chunk[w].collected.begin(), chunk[w].collected.end(), v_p);
      std::vector<scalar_t>().swap(chunk[w].collected);
    }
    overflow_out.mutable_data_ptr<bool>()[w] = over;
    counts.push_back(c);
    mins.push_back(lo);
    maxs.push_back(hi);
    collected.push_back(values);
  }
  int64_t n_positive = 0;
  for (const auto& chunk : tallies)
    n_positive += n_windows > 0 ? static_cast<int64_t>(chunk[0].positives.size()) : 0;
  at::Tensor positives = at::empty({n_positive}, options);
  scalar_t* pos_p = positives.mutable_data_ptr<scalar_t>();
  for (const auto& chunk : tallies)
    if (n_windows > 0)
      pos_p = std::copy(chunk[0].positives.begin(), chunk[0].positives.end(), pos_p);
  return {counts, mins, maxs, collected, overflow_out, positives};
}

Outputs embedding_pair_histogram_cpu(
    const at::Tensor& queries, const at::Tensor& gallery, c10::string_view metric_name,
    const at::Tensor& query_labels, const at::Tensor& gallery_labels,
    const std::optional<at::Tensor>& query_ids, const std::optional<at::Tensor>& gallery_ids,
    const std::optional<at::Tensor>& query_groups, const std::optional<at::Tensor>& gallery_groups,
    at::ArrayRef<double> lowers, at::ArrayRef<double> uppers, at::IntArrayRef n_bins,
    const c10::List<bool>& collect, int64_t max_collect, bool with_positives) {
  const Metric metric = parse_metric(metric_name);
  check_pairwise_distance_inputs(queries, gallery);
  TORCH_CHECK_VALUE(queries.device().is_cpu(), "`queries` must be on the CPU for this kernel, got ",
                    describe(queries));
  TORCH_CHECK_TYPE(queries.scalar_type() == at::kFloat || queries.scalar_type() == at::kDouble,
                   "`queries` must be float32 or float64 for this kernel, got ", describe(queries));
  const int64_t n = queries.size(0), m = gallery.size(0);
  const auto device = queries.device();
  check_index_vector(query_labels, "query_labels", n, device);
  check_index_vector(gallery_labels, "gallery_labels", m, device);
  const bool has_ids =
      retrieval::check_key_pair(query_ids, "query_ids", gallery_ids, "gallery_ids", n, m, device);
  const bool has_groups = retrieval::check_key_pair(query_groups, "query_groups", gallery_groups,
                                                    "gallery_groups", n, m, device);
  const size_t n_windows = lowers.size();
  TORCH_CHECK_VALUE(
      n_windows >= 1 && uppers.size() == n_windows && n_bins.size() == n_windows &&
          collect.size() == n_windows,
      "`lowers`, `uppers`, `n_bins` and `collect` must be non-empty and of one length, "
      "got ",
      lowers.size(), ", ", uppers.size(), ", ", n_bins.size(), " and ", collect.size());
  for (size_t w = 0; w < n_windows; ++w)
    retrieval::check_fnmr_window(lowers[w], uppers[w], n_bins[w]);
  TORCH_CHECK_VALUE(max_collect >= 0, "`max_collect` must be >= 0, got ", max_collect);

  const at::Tensor ql = query_labels.contiguous(), gl = gallery_labels.contiguous();
  const at::Tensor qid = has_ids ? query_ids->contiguous() : at::Tensor();
  const at::Tensor gid = has_ids ? gallery_ids->contiguous() : at::Tensor();
  const at::Tensor qgr = has_groups ? query_groups->contiguous() : at::Tensor();
  const at::Tensor ggr = has_groups ? gallery_groups->contiguous() : at::Tensor();
  const cpu::RowKeys gallery_keys{gl.const_data_ptr<int64_t>(),
                                  has_ids ? gid.const_data_ptr<int64_t>() : nullptr,
                                  has_groups ? ggr.const_data_ptr<int64_t>() : nullptr,
                                  0,
                                  0,
                                  0};
  Windows windows{lowers, uppers, n_bins, {}};
  for (size_t w = 0; w < n_windows; ++w) windows.collect.push_back(collect.get(w));
  Outputs result;
  AT_DISPATCH_FLOATING_TYPES(queries.scalar_type(), "embedding_pair_histogram_cpu", [&] {
    result = run_pass<scalar_t>(queries, gallery, metric, ql, qid, qgr, gallery_keys, windows,
                                max_collect, with_positives);
  });
  return result;
}

}  // namespace

TORCH_LIBRARY_IMPL(oml_fast, CPU, m) {
  m.impl("_embedding_pair_histogram", &embedding_pair_histogram_cpu);
}

}  // namespace oml_fast
