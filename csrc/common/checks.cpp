#include "common/checks.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <sstream>

#include "common/metric.h"

namespace oml_fast {

std::string describe(const at::Tensor& t) {
  std::ostringstream out;
  out << t.sizes() << " " << c10::toString(t.scalar_type()) << " on " << t.device();
  return out.str();
}

void check_embeddings(const at::Tensor& t, const char* name, bool allow_half) {
  TORCH_CHECK_VALUE(t.dim() == 2, "`", name, "` must be a 2-D tensor [N, D], got ", describe(t));
  const auto dtype = t.scalar_type();
  const bool is_full = dtype == at::kFloat || dtype == at::kDouble;
  const bool is_half = dtype == at::kHalf || dtype == at::kBFloat16;
  TORCH_CHECK_TYPE(is_full || (allow_half && is_half), "`", name, "` must be ",
                   allow_half ? "float32, float64, float16 or bfloat16" : "float32 or float64",
                   allow_half ? "" : " on this device (float16/bfloat16 are supported on CUDA)",
                   ", got ", describe(t));
}

void check_embedding_pair(const at::Tensor& a, const char* a_name, const at::Tensor& b,
                          const char* b_name) {
  TORCH_CHECK_VALUE(a.device() == b.device(), "`", a_name, "` and `", b_name,
                    "` must be on the same device, got ", a.device(), " and ", b.device());
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), "`", a_name, "` and `", b_name,
                   "` must have the same dtype, got ", describe(a), " and ", describe(b));
  TORCH_CHECK_VALUE(a.size(1) == b.size(1), "`", a_name, "` and `", b_name,
                    "` must have the same number of columns D, got ", describe(a), " and ",
                    describe(b));
}

void check_index_vector(const at::Tensor& t, const char* name, int64_t length,
                        const at::Device& device) {
  TORCH_CHECK_VALUE(t.dim() == 1 && t.size(0) == length, "`", name,
                    "` must be a 1-D tensor of length ", length, ", got ", describe(t));
  TORCH_CHECK_TYPE(t.scalar_type() == at::kLong, "`", name, "` must be int64, got ", describe(t));
  TORCH_CHECK_VALUE(t.device() == device, "`", name, "` must be on ", device, ", got ",
                    describe(t));
}

void check_optional_index_vector(const std::optional<at::Tensor>& t, const char* name,
                                 int64_t length, const at::Device& device) {
  if (t.has_value()) check_index_vector(*t, name, length, device);
}

void check_both_or_neither(const std::optional<at::Tensor>& a, const char* a_name,
                           const std::optional<at::Tensor>& b, const char* b_name) {
  TORCH_CHECK_VALUE(a.has_value() == b.has_value(), "`", a_name, "` and `", b_name,
                    "` must be given together (or both omitted), got only `",
                    a.has_value() ? a_name : b_name, "`");
}

void check_finite(const at::Tensor& t, const char* name) {
  if (t.numel() == 0) return;
  TORCH_CHECK_VALUE(at::isfinite(t).all().item<bool>(), "`", name, "` contains NaN or inf values (",
                    describe(t), "); distances to them are undefined");
}

Metric parse_metric(c10::string_view name) {
  if (name == "euclidean") return Metric::Euclidean;
  if (name == "sqeuclidean") return Metric::SqEuclidean;
  if (name == "cosine") return Metric::Cosine;
  if (name == "dot") return Metric::Dot;
  TORCH_CHECK_VALUE(false,
                    "`metric` must be one of 'euclidean', 'sqeuclidean', 'cosine', 'dot', got '",
                    std::string(name), "'");
}

const char* metric_name(Metric metric) {
  switch (metric) {
    case Metric::Euclidean:
      return "euclidean";
    case Metric::SqEuclidean:
      return "sqeuclidean";
    case Metric::Cosine:
      return "cosine";
    case Metric::Dot:
      return "dot";
  }
  return "?";
}

}  // namespace oml_fast
