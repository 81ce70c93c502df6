// _triplet_distances: the anchor-positive and anchor-negative Euclidean distances of index triplets
// into one batch, and its backward, for the triplet losses with an in-batch miner
// (oml_fast/losses/_common.py). Private ops: the CPU kernels (mining/cpu/triplet_distances_cpu.cpp)
// read the rows in place and write one [B, D] gradient; the composite kernels below (ATen ops, any
// device) define the same maths.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

namespace oml_fast {

// embeddings [B, D] floating; positives, negatives [T] int64 on its device; anchors [T] int64 or
// absent (then T == B and anchor t is row t). Reads no data (index bounds are the kernels').
void check_triplet_inputs(const at::Tensor& embeddings, const std::optional<at::Tensor>& anchors,
                          const at::Tensor& positives, const at::Tensor& negatives);

// Every index in [0, B) (reads the data).
void check_triplet_indices(const at::Tensor& ids, const char* name, int64_t batch);

std::tuple<at::Tensor, at::Tensor> triplet_distances_composite(
    const at::Tensor& embeddings, const std::optional<at::Tensor>& anchors,
    const at::Tensor& positives, const at::Tensor& negatives);

at::Tensor triplet_distances_backward_composite(
    const at::Tensor& grad_ap, const at::Tensor& grad_an, const at::Tensor& embeddings,
    const std::optional<at::Tensor>& anchors, const at::Tensor& positives,
    const at::Tensor& negatives, const at::Tensor& dist_ap, const at::Tensor& dist_an);

}  // namespace oml_fast
