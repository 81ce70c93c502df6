// Device-independent parts of pairwise_distance: input checks and the backward formulas.
#include <ATen/ATen.h>

#include "common/checks.h"
#include "distance/pairwise_distance.h"

namespace oml_fast {

void check_pairwise_distance_inputs(const at::Tensor& x1, const at::Tensor& x2) {
  check_embeddings(x1, "x1");
  check_embeddings(x2, "x2");
  check_embedding_pair(x1, "x1", x2, "x2");
}

void check_distance_out(const at::Tensor& x1, const at::Tensor& x2, const at::Tensor& out) {
  TORCH_CHECK_VALUE(out.dim() == 2 && out.size(0) == x1.size(0) && out.size(1) == x2.size(0),
                    "`out` must have shape [", x1.size(0), ", ", x2.size(0), "], got ",
                    describe(out));
  TORCH_CHECK_TYPE(out.scalar_type() == x1.scalar_type(), "`out` must have the dtype of `x1` (",
                   describe(x1), "), got ", describe(out));
  TORCH_CHECK_VALUE(out.device() == x1.device() && out.is_contiguous(),
                    "`out` must be contiguous on the device of `x1`, got ", describe(out));
}

at::Tensor unit_rows(const at::Tensor& x) {
  // Each row is divided by its largest |entry| first, so that its norm neither overflows nor
  // underflows (1e-20 or 1e20 rows in float32); a row is zero only when every entry is 0.
  const at::Tensor row_max = at::amax(x.abs(), {1}, /*keepdim=*/true);
  const at::Tensor y = x / at::where(row_max > 0, row_max, at::ones_like(row_max));
  return y / y.norm(2, /*dim=*/{1}, /*keepdim=*/true).clamp_min(kCosineEps);
}

std::tuple<at::Tensor, at::Tensor> pairwise_distance_backward(const at::Tensor& grad,
                                                              const at::Tensor& x1,
                                                              const at::Tensor& x2,
                                                              const at::Tensor& dist,
                                                              c10::string_view metric_name) {
  const Metric metric = parse_metric(metric_name);
  // Half inputs (every device): the formulas run in float32 and the gradients are cast back.
  const bool half = is_half(x1);
  const auto compute = [&](const at::Tensor& t) { return half ? t.to(at::kFloat) : t; };
  const at::Tensor g = compute(grad), a = compute(x1), b = compute(x2), d = compute(dist);

  at::Tensor grad_a, grad_b;
  switch (metric) {
    case Metric::Euclidean:
    case Metric::SqEuclidean: {
      // d/da |a - b|^2 = 2 (a - b); d/da |a - b| = (a - b) / |a - b|, taken as 0 at a == b.
      at::Tensor w = metric == Metric::SqEuclidean
                         ? g * 2
                         : at::where(d > 0, g / d.clamp_min(1e-30), at::zeros_like(g));
      grad_a = w.sum(1, /*keepdim=*/true) * a - w.mm(b);
      grad_b = w.sum(0).unsqueeze(1) * b - w.t().mm(a);
      break;
    }
    case Metric::Dot:
      grad_a = -g.mm(b);
      grad_b = -g.t().mm(a);
      break;
    case Metric::Cosine: {
      // d = 1 - <u, v> with u = a / |a|; du/da = (I - u u^T) / |a|.
      const at::Tensor norm_a = a.norm(2, {1}, true).clamp_min(kCosineEps);
      const at::Tensor norm_b = b.norm(2, {1}, true).clamp_min(kCosineEps);
      const at::Tensor u = a / norm_a, v = b / norm_b;
      const at::Tensor grad_u = -g.mm(v), grad_v = -g.t().mm(u);
      grad_a = (grad_u - (grad_u * u).sum(1, true) * u) / norm_a;
      grad_b = (grad_v - (grad_v * v).sum(1, true) * v) / norm_b;
      break;
    }
  }
  return {grad_a.to(x1.scalar_type()), grad_b.to(x2.scalar_type())};
}

}  // namespace oml_fast
