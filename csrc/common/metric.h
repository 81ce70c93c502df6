// Distance metrics shared by every op family ("smaller is closer" for all of them).
#pragma once

#include <c10/util/Exception.h>
#include <c10/util/string_view.h>

#include <string>
#include <type_traits>

namespace oml_fast {

enum class Metric {
  Euclidean,    // |a - b|
  SqEuclidean,  // |a - b|^2
  Cosine,       // 1 - <a, b> / (|a| |b|), cos = 0 when a vector is zero
  Dot,          // -<a, b>
};

// Parses the `metric` argument of an op; throws ValueError naming the valid metrics.
Metric parse_metric(c10::string_view name);

const char* metric_name(Metric metric);

// Calls fn(std::integral_constant<Metric, M>{}) for the runtime `metric`, so that kernels are
// templated on the metric instead of branching per element; an unknown value is asserted.
template <typename Fn>
decltype(auto) dispatch_metric(Metric metric, Fn&& fn) {
  switch (metric) {
    case Metric::Euclidean:
      return fn(std::integral_constant<Metric, Metric::Euclidean>{});
    case Metric::SqEuclidean:
      return fn(std::integral_constant<Metric, Metric::SqEuclidean>{});
    case Metric::Cosine:
      return fn(std::integral_constant<Metric, Metric::Cosine>{});
    case Metric::Dot:
      return fn(std::integral_constant<Metric, Metric::Dot>{});
  }
  TORCH_CHECK(false, "oml_fast: unknown metric ", static_cast<int>(metric), " (internal error)");
}

// Norms below this count as zero for the cosine metric (the cosine with a zero vector is 0). The
// kernels measure norms after scaling each row (or the whole input) by a power of two towards 1,
// so only an all-zero row counts as zero, whatever the magnitude of the data.
constexpr double kCosineEps = 1e-12;

}  // namespace oml_fast
