// pairwise_distance(x1 [N, D], x2 [M, D], metric) -> [N, M], and its backward.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <tuple>

#include "common/metric.h"

namespace oml_fast {

// Shape/dtype/device checks shared by the CPU and CUDA kernels.
void check_pairwise_distance_inputs(const at::Tensor& x1, const at::Tensor& x2);

// The `out` of pairwise_distance.out: [x1 rows, x2 rows], x1's dtype and device, contiguous.
void check_distance_out(const at::Tensor& x1, const at::Tensor& x2, const at::Tensor& out);

// Rows scaled to unit length (zero rows stay zero), in the dtype of `x`: the cosine metric is the
// dot metric of unit vectors.
at::Tensor unit_rows(const at::Tensor& x);

// Gradients of sum(grad * pairwise_distance(x1, x2)) with respect to x1 and x2, written with ATen
// ops so that one implementation serves every device. `dist` is the forward output. The euclidean
// gradient at zero distance is 0 (a subgradient), never NaN.
std::tuple<at::Tensor, at::Tensor> pairwise_distance_backward(const at::Tensor& grad,
                                                              const at::Tensor& x1,
                                                              const at::Tensor& x2,
                                                              const at::Tensor& dist,
                                                              c10::string_view metric);

}  // namespace oml_fast
