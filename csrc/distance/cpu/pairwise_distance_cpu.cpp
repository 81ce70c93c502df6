// CPU kernel of pairwise_distance: a GEMM per output tile, then the conversion of that tile into
// distances while it is still in cache, so the cost stays close to that of the bare GEMM.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "common/checks.h"
#include "common/distance_math.h"
#include "common/scaling.h"
#include "distance/cpu/distance_rows.h"
#include "distance/pairwise_distance.h"

namespace oml_fast {
namespace {

template <typename scalar_t>
void convert_tile(Metric metric, scalar_t* out, int64_t ld, int64_t rows, int64_t cols,
                  const scalar_t* a, const scalar_t* b, const scalar_t* sq_norm_a,
                  const scalar_t* sq_norm_b, int64_t dim, scalar_t ratio) {
  for (int64_t i = 0; i < rows; ++i) {
    cpu::convert_row(metric, out + i * ld, cols, a + i * dim, b,
                     sq_norm_a != nullptr ? sq_norm_a[i] : scalar_t(0), sq_norm_b, dim, ratio);
  }
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

  // Detached, contiguous operands: the GEMM calls below must not see autograd metadata (worker
  // threads of at::parallel_for do not inherit the dispatcher's below-autograd state).
  at::Tensor a = x1.detach().contiguous(), b = x2.detach().contiguous();
  // Magnitudes far from 1 are scaled by a power of two before anything is squared (exact; the
  // distances are scaled back at the end), so that 1e-20 or 1e18 float32 rows neither underflow nor
  // overflow. The cosine normalises each row instead.
  int exponent = 0;
  if (metric == Metric::Cosine) {
    a = unit_rows(a).contiguous();
    b = unit_rows(b).contiguous();
  } else {
    exponent = dist::scale_exponent_of(a, b, a.scalar_type());
    a = dist::scale_by_pow2(a, exponent);
    b = dist::scale_by_pow2(b, exponent);
  }
  const bool needs_norms = metric == Metric::Euclidean || metric == Metric::SqEuclidean;
  const at::Tensor sq_norm_a = needs_norms ? cpu::squared_norms(a) : at::Tensor();
  const at::Tensor sq_norm_b = needs_norms ? cpu::squared_norms(b) : at::Tensor();

  const int64_t rows_per_panel = cpu::distance_panel_rows(n, m, a.element_size());
  const int64_t n_panels = (n + rows_per_panel - 1) / rows_per_panel;
  const int mantissa_bits = dist::gemm_mantissa_bits(a.scalar_type());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "pairwise_distance_cpu", [&] {
    const auto ratio = static_cast<scalar_t>(dist::recompute_ratio<scalar_t>(dim, mantissa_bits));
    const scalar_t* a_ptr = a.const_data_ptr<scalar_t>();
    const scalar_t* b_ptr = b.const_data_ptr<scalar_t>();
    const scalar_t* na_ptr = needs_norms ? sq_norm_a.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* nb_ptr = needs_norms ? sq_norm_b.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* out_ptr = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, n_panels, 1, [&](int64_t begin, int64_t end) {
      for (int64_t panel = begin; panel < end; ++panel) {
        const int64_t i0 = panel * rows_per_panel;
        const int64_t rows = std::min(rows_per_panel, n - i0);
        // Row panels of `out` are contiguous; BLAS writes them in place (single-threaded here:
        // BLAS called inside a parallel region does not spawn threads of its own).
        at::Tensor out_panel = out.narrow(0, i0, rows);
        at::mm_out(out_panel, a.narrow(0, i0, rows), b.t());
        convert_tile<scalar_t>(metric, out_ptr + i0 * m, m, rows, m, a_ptr + i0 * dim, b_ptr,
                               needs_norms ? na_ptr + i0 : nullptr, nb_ptr, dim, ratio);
      }
    });
  });
  if (exponent != 0) {
    // Back to the input's units: |a - b| scales with 2^e, |a - b|^2 and <a, b> with 2^2e.
    const int back = metric == Metric::Euclidean ? -exponent : -2 * exponent;
    dist::scale_by_pow2_(out, back);
  }
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
