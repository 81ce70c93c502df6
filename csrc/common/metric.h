// Distance metrics shared by every op family ("smaller is closer" for all of them).
#pragma once

#include <c10/util/string_view.h>

#include <string>

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

// Norms below this count as zero for the cosine metric (the cosine with a zero vector is 0). The
// kernels measure norms after scaling each row (or the whole input) by a power of two towards 1,
// so only an all-zero row counts as zero, whatever the magnitude of the data.
constexpr double kCosineEps = 1e-12;

}  // namespace oml_fast
