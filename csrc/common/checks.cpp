#include "common/checks.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <sstream>

#ifdef OML_FAST_WITH_CUDA
#include <c10/cuda/CUDAGraphsC10Utils.h>
#endif

#include "common/metric.h"

namespace oml_fast {

namespace {

// The name Python gives the dtype (str(torch.float32) without "torch."), so that messages read
// the same from C++ and from oml_fast/ops/checks.py.
const char* python_dtype_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat:
      return "float32";
    case at::kDouble:
      return "float64";
    case at::kHalf:
      return "float16";
    case at::kBFloat16:
      return "bfloat16";
    case at::kLong:
      return "int64";
    case at::kInt:
      return "int32";
    case at::kShort:
      return "int16";
    case at::kChar:
      return "int8";
    case at::kByte:
      return "uint8";
    case at::kBool:
      return "bool";
    case at::kComplexFloat:
      return "complex64";
    case at::kComplexDouble:
      return "complex128";
    default:
      return c10::toString(dtype);
  }
}

}  // namespace

std::string describe(const at::Tensor& t) {
  std::ostringstream out;
  out << t.sizes() << " " << python_dtype_name(t.scalar_type()) << " on " << t.device();
  return out.str();
}

void check_embeddings(const at::Tensor& t, const char* name) {
  TORCH_CHECK_VALUE(t.dim() == 2, "`", name, "` must be a 2-D tensor [N, D], got ", describe(t));
  const auto dtype = t.scalar_type();
  TORCH_CHECK_TYPE(dtype == at::kFloat || dtype == at::kDouble || is_half(t), "`", name,
                   "` must be float32, float64, float16 or bfloat16, got ", describe(t));
}

bool is_half(const at::Tensor& t) {
  return t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16;
}

at::Tensor upcast_half_on_cpu(const at::Tensor& t) {
  return t.device().is_cpu() && is_half(t) ? t.to(at::kFloat) : t;
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

bool all_finite(const at::Tensor& t) {
  if (t.numel() == 0) return true;
  if (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble) {
    // The smallest and largest entries are finite iff all are (aminmax propagates NaN): one
    // vectorised pass, where isfinite(t).all() costs two and is ~20x slower on CPU.
    const auto [lowest, highest] = at::aminmax(t);
    return std::isfinite(lowest.item<double>()) && std::isfinite(highest.item<double>());
  }
  return at::isfinite(t).all().item<bool>();
}

void check_finite(const at::Tensor& t, const char* name, const char* op) {
  if (t.numel() == 0) return;
#ifdef OML_FAST_WITH_CUDA
  // While a CUDA graph is being captured, reading a value back to the host is illegal: a
  // device-side assert checks the same condition there (a failure is fatal to the CUDA context and
  // its message is only printed by the device; eager calls keep the ValueError below).
  if (t.is_cuda() &&
      c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None) {
    at::_assert_async(at::isfinite(t).all(), "oml_fast: an input contains NaN or inf values");
    return;
  }
#endif
  // Outside a capture the check reads one flag back to the host (a device synchronisation): a
  // ValueError that names the argument needs the value on the host.
  TORCH_CHECK_VALUE(all_finite(t), "`", name, "` contains NaN or inf values (", describe(t), "); ",
                    op, " needs finite embeddings");
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
