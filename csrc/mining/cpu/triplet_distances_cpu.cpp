// _triplet_distances on CPU: the rows are read in place (no gathered [T, D] copies), the distances
// summed in float64 (dist::hardness_key), and the backward writes one [B, D] gradient: its columns
// are split between the threads, so every thread adds its triplets' terms to its own columns in
// triplet order (no races, deterministic).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

#include "common/checks.h"
#include "common/distance_math.h"
#include "mining/triplet_distances.h"

namespace oml_fast {
namespace {

// Columns per task of the backward: whole cache lines, and enough work per task.
constexpr int64_t kColumnGrain = 64;

bool cpu_kernel_takes(const at::Tensor& embeddings) {
  return embeddings.scalar_type() == at::kFloat || embeddings.scalar_type() == at::kDouble;
}

std::tuple<at::Tensor, at::Tensor> triplet_distances_cpu(const at::Tensor& embeddings,
                                                         const std::optional<at::Tensor>& anchors,
                                                         const at::Tensor& positives,
                                                         const at::Tensor& negatives) {
  check_triplet_inputs(embeddings, anchors, positives, negatives);
  // float16 / bfloat16 (and any other floating type): the composite maths.
  if (!cpu_kernel_takes(embeddings)) {
    return triplet_distances_composite(embeddings, anchors, positives, negatives);
  }
  const int64_t batch = embeddings.size(0), dim = embeddings.size(1);
  check_triplet_indices(positives, "positives", batch);
  check_triplet_indices(negatives, "negatives", batch);
  if (anchors.has_value()) check_triplet_indices(*anchors, "anchors", batch);
  const at::Tensor x = embeddings.detach().contiguous();
  const int64_t n = positives.size(0);
  at::Tensor dist_ap = at::empty({n}, x.options());
  at::Tensor dist_an = at::empty({n}, x.options());
  const at::Tensor pos = positives.contiguous(), neg = negatives.contiguous();
  const at::Tensor anc = anchors.has_value() ? anchors->contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "triplet_distances_cpu", [&] {
    const scalar_t* rows = x.const_data_ptr<scalar_t>();
    const int64_t* p = pos.const_data_ptr<int64_t>();
    const int64_t* q = neg.const_data_ptr<int64_t>();
    const int64_t* a = anc.defined() ? anc.const_data_ptr<int64_t>() : nullptr;
    scalar_t* out_p = dist_ap.mutable_data_ptr<scalar_t>();
    scalar_t* out_n = dist_an.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const scalar_t* anchor = rows + (a != nullptr ? a[t] : t) * dim;
        out_p[t] = static_cast<scalar_t>(
            std::sqrt(dist::hardness_key(anchor, rows + p[t] * dim, dim, /*euclidean=*/true)));
        out_n[t] = static_cast<scalar_t>(
            std::sqrt(dist::hardness_key(anchor, rows + q[t] * dim, dim, /*euclidean=*/true)));
      }
    });
  });
  return {dist_ap, dist_an};
}

// scale[t] = grad[t] / dist[t], 0 at distance 0 (the gradient of |a - o| there is taken as 0).
template <typename scalar_t>
std::vector<scalar_t> end_scales(const at::Tensor& grad, const at::Tensor& dist) {
  const at::Tensor g = grad.to(dist.scalar_type()).contiguous(), d = dist.contiguous();
  const scalar_t* g_ptr = g.const_data_ptr<scalar_t>();
  const scalar_t* d_ptr = d.const_data_ptr<scalar_t>();
  std::vector<scalar_t> scale(d.numel());
  for (int64_t t = 0; t < d.numel(); ++t) scale[t] = d_ptr[t] > 0 ? g_ptr[t] / d_ptr[t] : 0;
  return scale;
}

at::Tensor triplet_distances_backward_cpu(const at::Tensor& grad_ap, const at::Tensor& grad_an,
                                          const at::Tensor& embeddings,
                                          const std::optional<at::Tensor>& anchors,
                                          const at::Tensor& positives, const at::Tensor& negatives,
                                          const at::Tensor& dist_ap, const at::Tensor& dist_an) {
  check_triplet_inputs(embeddings, anchors, positives, negatives);
  const int64_t n = positives.size(0);
  for (const at::Tensor* t : {&grad_ap, &grad_an, &dist_ap, &dist_an}) {
    TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == n,
                      "gradients and distances of _triplet_distances must be [T] = [", n, "], got ",
                      describe(*t));
  }
  if (!cpu_kernel_takes(embeddings) || dist_ap.scalar_type() != embeddings.scalar_type() ||
      dist_an.scalar_type() != embeddings.scalar_type()) {
    return triplet_distances_backward_composite(grad_ap, grad_an, embeddings, anchors, positives,
                                                negatives, dist_ap, dist_an);
  }
  const int64_t batch = embeddings.size(0), dim = embeddings.size(1);
  check_triplet_indices(positives, "positives", batch);
  check_triplet_indices(negatives, "negatives", batch);
  if (anchors.has_value()) check_triplet_indices(*anchors, "anchors", batch);
  const at::Tensor x = embeddings.detach().contiguous();
  const at::Tensor pos = positives.contiguous(), neg = negatives.contiguous();
  const at::Tensor anc = anchors.has_value() ? anchors->contiguous() : at::Tensor();
  // Without anchor ids every row is written by its own triplet first: no zero fill needed.
  at::Tensor grad = anc.defined() ? at::zeros_like(x) : at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "triplet_distances_backward_cpu", [&] {
    const std::vector<scalar_t> scale_p = end_scales<scalar_t>(grad_ap, dist_ap);
    const std::vector<scalar_t> scale_n = end_scales<scalar_t>(grad_an, dist_an);
    const scalar_t* rows = x.const_data_ptr<scalar_t>();
    const int64_t* p = pos.const_data_ptr<int64_t>();
    const int64_t* q = neg.const_data_ptr<int64_t>();
    const int64_t* a = anc.defined() ? anc.const_data_ptr<int64_t>() : nullptr;
    scalar_t* g = grad.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, dim, kColumnGrain, [&](int64_t c0, int64_t c1) {
      // The anchors' terms: d|a - o| / d a = (a - o) / |a - o|, times the incoming gradient.
      for (int64_t t = 0; t < n; ++t) {
        const int64_t anchor = a != nullptr ? a[t] : t;
        const scalar_t* xa = rows + anchor * dim;
        const scalar_t* xp = rows + p[t] * dim;
        const scalar_t* xn = rows + q[t] * dim;
        scalar_t* ga = g + anchor * dim;
        const scalar_t sp = scale_p[t], sn = scale_n[t];
        if (a != nullptr) {
          for (int64_t c = c0; c < c1; ++c) ga[c] += sp * (xa[c] - xp[c]) + sn * (xa[c] - xn[c]);
        } else {
          for (int64_t c = c0; c < c1; ++c) ga[c] = sp * (xa[c] - xp[c]) + sn * (xa[c] - xn[c]);
        }
      }
      // The other ends: minus the same terms (after every anchor row is written).
      for (int64_t t = 0; t < n; ++t) {
        const scalar_t* xa = rows + (a != nullptr ? a[t] : t) * dim;
        const scalar_t* xp = rows + p[t] * dim;
        const scalar_t* xn = rows + q[t] * dim;
        scalar_t* gp = g + p[t] * dim;
        scalar_t* gn = g + q[t] * dim;
        const scalar_t sp = scale_p[t], sn = scale_n[t];
        for (int64_t c = c0; c < c1; ++c) gp[c] -= sp * (xa[c] - xp[c]);
        for (int64_t c = c0; c < c1; ++c) gn[c] -= sn * (xa[c] - xn[c]);
      }
    });
  });
  return grad;
}

}  // namespace

TORCH_LIBRARY_IMPL(oml_fast, CPU, m) {
  m.impl("_triplet_distances", &triplet_distances_cpu);
  m.impl("_triplet_distances_backward", &triplet_distances_backward_cpu);
}

}  // namespace oml_fast
