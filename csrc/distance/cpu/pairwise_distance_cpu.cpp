// CPU kernel of pairwise_distance: a GEMM per output tile, then the conversion of that tile into
// distances while it is still in cache, so the cost stays close to that of the bare GEMM.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "common/checks.h"
#include "distance/cpu/distance_rows.h"
#include "distance/pairwise_distance.h"

namespace oml_fast {
namespace {

// Output tiles of kTileRows x kTileCols: 128 x 512 float32 is 256 KiB, which stays in a 1 MiB L2
// between the GEMM that writes it and the epilogue that converts it. Each tile re-packs its slice
// of x2 inside the BLAS call; that costs 1 / (2 kTileRows) of the GEMM's flops.
constexpr int64_t kTileRows = 128;
constexpr int64_t kTileCols = 512;

template <typename scalar_t>
void convert_tile(Metric metric, scalar_t* out, int64_t ld, int64_t rows, int64_t cols,
                  const scalar_t* a, const scalar_t* b, const scalar_t* sq_norm_a,
                  const scalar_t* sq_norm_b, int64_t dim) {
  for (int64_t i = 0; i < rows; ++i) {
    scalar_t* row = out + i * ld;
    switch (metric) {
      case Metric::Euclidean:
      case Metric::SqEuclidean: {
        const int64_t flagged = cpu::sq_euclidean_from_dot(row, sq_norm_a[i], sq_norm_b, cols, row);
        if (flagged > 0) {
          cpu::recompute_small_sq_euclidean(row, a + i * dim, sq_norm_a[i], b, sq_norm_b, cols,
                                            dim);
        }
        if (metric == Metric::Euclidean) cpu::sqrt_inplace(row, cols);
        break;
      }
      case Metric::Cosine:
        cpu::cosine_from_dot_inplace(row, cols);
        break;
      case Metric::Dot:
        cpu::negate_inplace(row, cols);
        break;
    }
  }
}

at::Tensor pairwise_distance_cpu(const at::Tensor& x1, const at::Tensor& x2,
                                 c10::string_view metric_name) {
  const Metric metric = parse_metric(metric_name);
  check_pairwise_distance_inputs(x1, x2, /*allow_half=*/false);
  TORCH_CHECK_VALUE(x1.device().is_cpu(), "`x1` must be on the CPU for this kernel, got ",
                    describe(x1));
  const int64_t n = x1.size(0), m = x2.size(0), dim = x1.size(1);
  at::Tensor out = at::empty({n, m}, x1.options());
  if (n == 0 || m == 0) return out;
  if (dim == 0) return out.fill_(metric == Metric::Cosine ? 1.0 : 0.0);

  // Detached, contiguous operands: the GEMM calls below must not see autograd metadata (worker
  // threads of at::parallel_for do not inherit the dispatcher's below-autograd state).
  at::Tensor a = x1.detach().contiguous(), b = x2.detach().contiguous();
  if (metric == Metric::Cosine) {
    a = unit_rows(a).contiguous();
    b = unit_rows(b).contiguous();
  }
  const bool needs_norms = metric == Metric::Euclidean || metric == Metric::SqEuclidean;
  const at::Tensor sq_norm_a = needs_norms ? a.mul(a).sum(1) : at::Tensor();
  const at::Tensor sq_norm_b = needs_norms ? b.mul(b).sum(1) : at::Tensor();

  const int64_t tiles_n = (n + kTileRows - 1) / kTileRows;
  const int64_t tiles_m = (m + kTileCols - 1) / kTileCols;
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "pairwise_distance_cpu", [&] {
    const scalar_t* a_ptr = a.const_data_ptr<scalar_t>();
    const scalar_t* b_ptr = b.const_data_ptr<scalar_t>();
    const scalar_t* na_ptr = needs_norms ? sq_norm_a.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* nb_ptr = needs_norms ? sq_norm_b.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* out_ptr = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, tiles_n * tiles_m, 1, [&](int64_t begin, int64_t end) {
      for (int64_t tile = begin; tile < end; ++tile) {
        const int64_t i0 = (tile / tiles_m) * kTileRows, j0 = (tile % tiles_m) * kTileCols;
        const int64_t rows = std::min(kTileRows, n - i0), cols = std::min(kTileCols, m - j0);
        // A strided row-major view of `out` is passed to BLAS as is (ldc = m): no copy.
        at::Tensor out_tile = out.narrow(0, i0, rows).narrow(1, j0, cols);
        at::mm_out(out_tile, a.narrow(0, i0, rows), b.narrow(0, j0, cols).t());
        convert_tile<scalar_t>(metric, out_ptr + i0 * m + j0, m, rows, cols, a_ptr + i0 * dim,
                               b_ptr + j0 * dim, needs_norms ? na_ptr + i0 : nullptr,
                               needs_norms ? nb_ptr + j0 : nullptr, dim);
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(oml_fast, CPU, m) {
  m.impl("pairwise_distance", &pairwise_distance_cpu);
  m.impl("_pairwise_distance_backward", &pairwise_distance_backward);
}

}  // namespace oml_fast
