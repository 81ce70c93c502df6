// `_pair_distance_histogram` on the CPU: one streaming pass of FNMR@FMR over a distance tile
// (oml_fast/metrics/fnmr.py). Every negative pair goes to a slot of the window [lower, upper]
// (below, one of n_bins bins, above; fnmr_common.h) whose count, min and max are kept; negatives
// inside the window are also returned when `collect`, positives when `with_positives`.
//
// Rows are split into one chunk per thread, each with its own slots, merged in order: no atomics,
// deterministic. Inside a row, a vectorised look (fnmr_rows.h) settles the negatives outside the
// window; only blocks holding something else go through the shared per-element formulas.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "retrieval/cpu/fnmr_histogram.h"
#include "retrieval/fnmr_common.h"
#include "retrieval/retrieval_checks.h"

namespace oml_fast {
namespace {

template <typename scalar_t>
void histogram_rows(const scalar_t* dist, int64_t row_begin, int64_t row_end, int64_t n_gallery,
                    const int64_t* query_labels, const int64_t* query_ids,
                    const int64_t* query_groups, cpu::RowKeys keys, double lower, double upper,
                    int64_t n_bins, bool collect, bool with_positives,
                    cpu::WindowTally<scalar_t>& out) {
  std::vector<int64_t> flagged((n_gallery + cpu::kFnmrBlock - 1) / cpu::kFnmrBlock);
  for (int64_t i = row_begin; i < row_end; ++i) {
    keys.label = query_labels[i];
    keys.id = keys.ids != nullptr ? query_ids[i] : 0;
    keys.group = keys.groups != nullptr ? query_groups[i] : 0;
    cpu::histogram_row(dist + i * n_gallery, n_gallery, keys, lower, upper, n_bins, collect,
                       with_positives, flagged.data(), out);
  }
  out.finish();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> pair_distance_histogram_cpu(
    const at::Tensor& dist, const at::Tensor& query_labels, const at::Tensor& gallery_labels,
    const std::optional<at::Tensor>& query_ids, const std::optional<at::Tensor>& gallery_ids,
    const std::optional<at::Tensor>& query_groups, const std::optional<at::Tensor>& gallery_groups,
    double lower, double upper, int64_t n_bins, bool collect, bool with_positives) {
  const auto [has_ids, has_groups] = retrieval::check_pair_distance_histogram_inputs(
      dist, query_labels, gallery_labels, query_ids, gallery_ids, query_groups, gallery_groups,
      lower, upper, n_bins);
  TORCH_CHECK_VALUE(dist.device().is_cpu(), "`dist` must be on the CPU for this kernel, got ",
                    describe(dist));
  if (is_half(dist)) {
    // CPU half-precision policy (common/checks.h): float32 inside (exact for these values), the
    // returned distances in the input dtype.
    auto [counts, mins, maxs, collected, positives] = pair_distance_histogram_cpu(
        upcast_half_on_cpu(dist), query_labels, gallery_labels, query_ids, gallery_ids,
        query_groups, gallery_groups, lower, upper, n_bins, collect, with_positives);
    return {counts, mins, maxs, collected.to(dist.scalar_type()), positives.to(dist.scalar_type())};
  }
  const int64_t rows = dist.size(0), n_gallery = dist.size(1), n_slots = n_bins + 2;
  const at::Tensor d = dist.contiguous();
  const at::Tensor ql = query_labels.contiguous(), gl = gallery_labels.contiguous();
  const at::Tensor qid = has_ids ? query_ids->contiguous() : at::Tensor();
  const at::Tensor gid = has_ids ? gallery_ids->contiguous() : at::Tensor();
  const at::Tensor qgr = has_groups ? query_groups->contiguous() : at::Tensor();
  const at::Tensor ggr = has_groups ? gallery_groups->contiguous() : at::Tensor();
  const cpu::RowKeys keys{gl.const_data_ptr<int64_t>(),
                          has_ids ? gid.const_data_ptr<int64_t>() : nullptr,
                          has_groups ? ggr.const_data_ptr<int64_t>() : nullptr,
                          0,
                          0,
                          0};
  constexpr double kInf = std::numeric_limits<double>::infinity();
  at::Tensor counts = at::zeros({n_slots}, d.options().dtype(at::kLong));
  at::Tensor mins = at::full({n_slots}, kInf, d.options().dtype(at::kDouble));
  at::Tensor maxs = at::full({n_slots}, -kInf, d.options().dtype(at::kDouble));
  at::Tensor collected, positives;

  AT_DISPATCH_FLOATING_TYPES(d.scalar_type(), "pair_distance_histogram_cpu", [&] {
    const int64_t n_chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows));
    std::vector<cpu::WindowTally<scalar_t>> chunks(n_chunks, cpu::WindowTally<scalar_t>(n_bins));
    at::parallel_for(0, n_chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
      for (int64_t c = chunk_begin; c < chunk_end; ++c) {
        histogram_rows<scalar_t>(d.const_data_ptr<scalar_t>(), rows * c / n_chunks,
                                 rows * (c + 1) / n_chunks, n_gallery, ql.const_data_ptr<int64_t>(),
                                 has_ids ? qid.const_data_ptr<int64_t>() : nullptr,
                                 has_groups ? qgr.const_data_ptr<int64_t>() : nullptr, keys, lower,
                                 upper, n_bins, collect, with_positives, chunks[c]);
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
    collected = at::empty({n_collected}, d.options());
    positives = at::empty({n_positive}, d.options());
    scalar_t* collected_p = collected.mutable_data_ptr<scalar_t>();
    scalar_t* positives_p = positives.mutable_data_ptr<scalar_t>();
    int64_t* counts_p = counts.mutable_data_ptr<int64_t>();
    double* mins_p = mins.mutable_data_ptr<double>();
    double* maxs_p = maxs.mutable_data_ptr<double>();
    for (const auto& chunk : chunks) {
      collected_p = std::copy(chunk.collected.begin(), chunk.collected.end(), collected_p);
      positives_p = std::copy(chunk.positives.begin(), chunk.positives.end(), positives_p);
      for (int64_t s = 0; s < n_slots; ++s) {
        counts_p[s] += chunk.slots[s].count;
        mins_p[s] = std::min(mins_p[s], chunk.slots[s].min);
        maxs_p[s] = std::max(maxs_p[s], chunk.slots[s].max);
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
