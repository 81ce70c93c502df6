// Device-independent parts of _triplet_distances: the input checks and the composite kernels.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "common/checks.h"
#include "mining/triplet_distances.h"

namespace oml_fast {

namespace {

void check_triplet_ids(const at::Tensor& ids, const char* name, int64_t length,
                       const at::Tensor& embeddings) {
  TORCH_CHECK_VALUE(ids.dim() == 1, "`", name, "` must be a 1-D tensor [T], got ", describe(ids));
  TORCH_CHECK_TYPE(ids.scalar_type() == at::kLong, "`", name, "` must be int64, got ",
                   describe(ids));
  TORCH_CHECK_VALUE(ids.device() == embeddings.device(), "`", name, "` must be on ",
                    embeddings.device(), " (the device of `embeddings`), got ", describe(ids));
  TORCH_CHECK_VALUE(ids.size(0) == length, "`", name, "` must have ", length,
                    " entries (one per triplet), got ", describe(ids));
}

// d loss / d (anchor row) of each triplet end: (a - o) * grad / |a - o|, 0 at distance 0.
at::Tensor end_gradient(const at::Tensor& diff, const at::Tensor& dist, const at::Tensor& grad) {
  const at::Tensor scale = at::where(dist > 0, grad / dist, at::zeros_like(dist));
  return diff * scale.unsqueeze(1);
}

}  // namespace

void check_triplet_inputs(const at::Tensor& embeddings, const std::optional<at::Tensor>& anchors,
                          const at::Tensor& positives, const at::Tensor& negatives) {
  TORCH_CHECK_VALUE(embeddings.dim() == 2, "`embeddings` must be a 2-D tensor [B, D], got ",
                    describe(embeddings));
  TORCH_CHECK_TYPE(at::isFloatingType(embeddings.scalar_type()),
                   "`embeddings` must be floating point, got ", describe(embeddings));
  const int64_t n = positives.dim() == 1 ? positives.size(0) : -1;
  check_triplet_ids(positives, "positives", n, embeddings);
  check_triplet_ids(negatives, "negatives", n, embeddings);
  if (anchors.has_value()) {
    check_triplet_ids(*anchors, "anchors", n, embeddings);
  } else {
    TORCH_CHECK_VALUE(n == embeddings.size(0),
                      "without `anchors` (anchor t is row t) there must be one triplet per row of "
                      "`embeddings` (",
                      embeddings.size(0), "), got ", n);
  }
}

void check_triplet_indices(const at::Tensor& ids, const char* name, int64_t batch) {
  if (ids.numel() == 0) return;
  const auto [lowest, highest] = at::aminmax(ids);
  const int64_t lo = lowest.item<int64_t>(), hi = highest.item<int64_t>();
  TORCH_CHECK_INDEX(lo >= 0 && hi < batch, "`", name, "` must hold row indices in [0, ", batch,
                    "), got ", lo < 0 ? lo : hi);
}

std::tuple<at::Tensor, at::Tensor> triplet_distances_composite(
    const at::Tensor& embeddings, const std::optional<at::Tensor>& anchors,
    const at::Tensor& positives, const at::Tensor& negatives) {
  check_triplet_inputs(embeddings, anchors, positives, negatives);
  const at::Tensor x = embeddings.detach();
  const at::Tensor a = anchors.has_value() ? x.index_select(0, *anchors) : x;
  return {at::linalg_vector_norm(a - x.index_select(0, positives), 2, {1}),
          at::linalg_vector_norm(a - x.index_select(0, negatives), 2, {1})};
}

at::Tensor triplet_distances_backward_composite(
    const at::Tensor& grad_ap, const at::Tensor& grad_an, const at::Tensor& embeddings,
    const std::optional<at::Tensor>& anchors, const at::Tensor& positives,
    const at::Tensor& negatives, const at::Tensor& dist_ap, const at::Tensor& dist_an) {
  check_triplet_inputs(embeddings, anchors, positives, negatives);
  const at::Tensor x = embeddings.detach();
  const at::Tensor a = anchors.has_value() ? x.index_select(0, *anchors) : x;
  const at::Tensor g_p = end_gradient(a - x.index_select(0, positives), dist_ap, grad_ap);
  const at::Tensor g_n = end_gradient(a - x.index_select(0, negatives), dist_an, grad_an);
  at::Tensor grad = at::zeros_like(x);
  if (anchors.has_value()) {
    grad.index_add_(0, *anchors, g_p + g_n);
  } else {
    grad.add_(g_p + g_n);
  }
  grad.index_add_(0, positives, g_p, -1);
  grad.index_add_(0, negatives, g_n, -1);
  return grad;
}

TORCH_LIBRARY_IMPL(oml_fast, CompositeExplicitAutograd, m) {
  m.impl("_triplet_distances", &triplet_distances_composite);
  m.impl("_triplet_distances_backward", &triplet_distances_backward_composite);
}

}  // namespace oml_fast
