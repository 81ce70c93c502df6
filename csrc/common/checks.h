// Input checks shared by every op. Each throws a Python-visible error (ValueError / TypeError /
// RuntimeError through TORCH_CHECK_*) whose message names the argument and what was expected.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>

namespace oml_fast {

// "[512, 1] float32 on cpu": how error messages describe a tensor.
std::string describe(const at::Tensor& t);

// A 2-D floating embedding matrix. float16/bfloat16 are accepted only where `allow_half`.
void check_embeddings(const at::Tensor& t, const char* name, bool allow_half);

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

// Rejects NaN / inf entries; `what` names the argument in the message.
void check_finite(const at::Tensor& t, const char* name);

}  // namespace oml_fast
