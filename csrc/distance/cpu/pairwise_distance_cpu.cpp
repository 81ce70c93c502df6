// CPU kernel of pairwise_distance: a GEMM per output tile into a buffer that stays in cache, the
// conversion of that tile into distances there, then one (streaming) copy into the output, so the
// cost stays close to that of the bare GEMM (distance/cpu/distance_tiles.h).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <unistd.h>

#include <algorithm>

#include "common/checks.h"
#include "distance/cpu/distance_rows.h"
#include "distance/cpu/distance_tiles.h"
#include "distance/pairwise_distance.h"

namespace oml_fast {
namespace {

// Writes one element of every memory page of out[0, numel), threads taking contiguous ranges. A
// fresh output (at::empty) is not mapped yet: the tiles would take its page faults in a strided
// order (each tile row lands on another page), which measured 5-20% slower at N = M = 4096-8192
// than faulting the pages in first, in address order (2-core EPYC VM, interleaved runs). On an
// output already mapped this costs one cache line per page.
template <typename scalar_t>
void map_output_pages(scalar_t* out, int64_t numel) {
  const int64_t step = std::max<int64_t>(1, sysconf(_SC_PAGESIZE) / int64_t(sizeof(scalar_t)));
  at::parallel_for(0, numel, int64_t(1) << 20, [&](int64_t begin, int64_t end) {
    for (int64_t k = (begin + step - 1) / step * step; k < end; k += step) out[k] = scalar_t(0);
  });
}

at::Tensor pairwise_distance_cpu(const at::Tensor& x1, const at::Tensor& x2,
                                 c10::string_view metric_name);

// Writes into `out` ([N, M], x1's dtype, contiguous, on the CPU): the kernel itself.
at::Tensor& pairwise_distance_out_cpu(const at::Tensor& x1, const at::Tensor& x2,
                                      c10::string_view metric_name, at::Tensor& out) {
  const Metric metric = parse_metric(metric_name);
  check_pairwise_distance_inputs(x1, x2);
  TORCH_CHECK_VALUE(x1.device().is_cpu(), "`x1` must be on the CPU for this kernel, got ",
                    describe(x1));
  check_distance_out(x1, x2, out);
  if (is_half(x1)) {
    // CPU half-precision policy (common/checks.h): computed in float32, returned in the input
    // dtype.
    out.copy_(pairwise_distance_cpu(upcast_half_on_cpu(x1), upcast_half_on_cpu(x2), metric_name));
    return out;
  }
  const int64_t n = x1.size(0), m = x2.size(0), dim = x1.size(1);
  if (n == 0 || m == 0) return out;
  if (dim == 0) return out.fill_(metric == Metric::Cosine ? 1.0 : 0.0);

  const bool streaming = n * m * out.element_size() >= cpu::kStreamingBytes;
  AT_DISPATCH_FLOATING_TYPES(x1.scalar_type(), "pairwise_distance_cpu", [&] {
    const cpu::TileDistances<scalar_t> distances(metric, x1, x2);
    scalar_t* out_ptr = out.mutable_data_ptr<scalar_t>();
    if (streaming) map_output_pages(out_ptr, n * m);
    at::parallel_for(0, distances.tiles().count(), 1, [&](int64_t begin, int64_t end) {
      // One tile buffer per worker, reused: the GEMM writes it, the conversion reads it in cache.
      const at::Tensor buffer = distances.new_buffer();
      for (int64_t tile = begin; tile < end; ++tile) {
        distances.for_each_row(tile, buffer,
                               [&](int64_t i, int64_t j0, const scalar_t* row, int64_t cols) {
                                 cpu::copy_to_output(row, out_ptr + i * m + j0, cols, streaming);
                               });
      }
      if (streaming) cpu::streaming_done();
    });
  });
  return out;
}

at::Tensor pairwise_distance_cpu(const at::Tensor& x1, const at::Tensor& x2,
                                 c10::string_view metric_name) {
  check_pairwise_distance_inputs(x1, x2);
  at::Tensor out = at::empty({x1.size(0), x2.size(0)}, x1.options());
  return pairwise_distance_out_cpu(x1, x2, metric_name, out);
}

}  // namespace

TORCH_LIBRARY_IMPL(oml_fast, CPU, m) {
  m.impl("pairwise_distance", &pairwise_distance_cpu);
  m.impl("pairwise_distance.out", &pairwise_distance_out_cpu);
  m.impl("_pairwise_distance_backward", &pairwise_distance_backward);
}

}  // namespace oml_fast
