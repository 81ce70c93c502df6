// Input checks shared by every op. Each throws ValueError (TORCH_CHECK_VALUE) or TypeError
// (TORCH_CHECK_TYPE) with a message that names the argument and what was expected. Their Python
// twins, with the same messages, are in oml_fast/ops/checks.py (used by the fake kernels and the
// reference ops): change both together (tests/ops/test_checks.py compares them).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>

namespace oml_fast {

// "[512, 1] float32 on cpu": how error messages describe a tensor (dtypes by their Python names).
std::string describe(const at::Tensor& t);

// A 2-D floating embedding matrix: float32, float64, float16 or bfloat16, on every device (CPU
// kernels compute half precision in float32, see upcast_half_on_cpu).
void check_embeddings(const at::Tensor& t, const char* name);

// The CPU half-precision policy of every op: float16 / bfloat16 tensors on the CPU are computed in
// float32 (the CPU kernels are written for float32 / float64 only; 16-bit accumulation would also
// lose too much). Other tensors are returned as they are. Ops that return distances cast them back
// to the input dtype (pairwise_distance) or document float32 outputs (knn).
at::Tensor upcast_half_on_cpu(const at::Tensor& t);

// Whether `t` is float16 or bfloat16.
bool is_half(const at::Tensor& t);

// Two embedding matrices that are compared with each other: same device, dtype and width D.
void check_embedding_pair(const at::Tensor& a, const char* a_name, const at::Tensor& b,
                          const char* b_name);

// A 1-D int64 vector of `length` items on `device` (labels, ids, groups).
void check_index_vector(const at::Tensor& t, const char* name, int64_t length,
                        const at::Device& device);

// Same as check_index_vector for optional arguments; an absent one passes.
void check_optional_index_vector(const std::optional<at::Tensor>& t, const char* name,
                                 int64_t length, const at::Device& device);

// Exclusion arguments come in pairs (query_ids with gallery_ids, ...): both or neither.
void check_both_or_neither(const std::optional<at::Tensor>& a, const char* a_name,
                           const std::optional<at::Tensor>& b, const char* b_name);

// Whether every entry is finite (reads the data back to the host).
bool all_finite(const at::Tensor& t);

// Rejects NaN / inf entries (reads the data): `name` names the argument, `op` the op that ranks or
// selects by distance, in the message.
void check_finite(const at::Tensor& t, const char* name, const char* op = "knn");

}  // namespace oml_fast
