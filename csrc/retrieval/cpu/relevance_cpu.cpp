// Relevance of retrieved items and the number of relevant candidates per query (n_gt), on the CPU.
//
// n_gt is counted, never read from a label matrix: with C(...) the number of gallery items with the
// given key, the candidates of query q with its label are
//   C(label) - C(label, id) - C(label, group) + C(label, id, group)
// (inclusion-exclusion over "equal id" and "equal group"), so the cost is O(Nq * k + Ng).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <unordered_map>

#include "retrieval/retrieval_checks.h"

namespace oml_fast {
namespace {

template <size_t N>
struct KeyHash {
  size_t operator()(const std::array<int64_t, N>& key) const {
    // splitmix64 finaliser over the combined words: labels and ids are often small consecutive
    // ints.
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (int64_t v : key) {
      uint64_t x = static_cast<uint64_t>(v) + h;
      x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
      x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
      h = x ^ (x >> 31);
    }
    return static_cast<size_t>(h);
  }
};

template <size_t N>
using KeyCounts = std::unordered_map<std::array<int64_t, N>, int64_t, KeyHash<N>>;

template <size_t N>
int64_t count_of(const KeyCounts<N>& counts, const std::array<int64_t, N>& key) {
  const auto it = counts.find(key);
  return it == counts.end() ? 0 : it->second;
}

std::tuple<at::Tensor, at::Tensor> retrieval_relevance_cpu(
    const at::Tensor& retrieved, const at::Tensor& query_labels, const at::Tensor& gallery_labels,
    const std::optional<at::Tensor>& query_ids, const std::optional<at::Tensor>& gallery_ids,
    const std::optional<at::Tensor>& query_groups,
    const std::optional<at::Tensor>& gallery_groups) {
  const auto [has_ids, has_groups] =
      retrieval::check_relevance_inputs(retrieved, query_labels, gallery_labels, query_ids,
                                        gallery_ids, query_groups, gallery_groups);
  const int64_t n_query = retrieved.size(0), width = retrieved.size(1),
                n_gallery = gallery_labels.size(0);

  const at::Tensor ret = retrieved.contiguous();
  const at::Tensor ql = query_labels.contiguous(), gl = gallery_labels.contiguous();
  const at::Tensor qid = has_ids ? query_ids->contiguous() : at::Tensor();
  const at::Tensor gid = has_ids ? gallery_ids->contiguous() : at::Tensor();
  const at::Tensor qgr = has_groups ? query_groups->contiguous() : at::Tensor();
  const at::Tensor ggr = has_groups ? gallery_groups->contiguous() : at::Tensor();
  const int64_t* ret_p = ret.data_ptr<int64_t>();
  const int64_t* ql_p = ql.data_ptr<int64_t>();
  const int64_t* gl_p = gl.data_ptr<int64_t>();

  // Counting pass over the gallery: O(Ng).
  KeyCounts<1> by_label;
  KeyCounts<2> by_label_id, by_label_group;
  KeyCounts<3> by_label_id_group;
  by_label.reserve(n_gallery);
  for (int64_t j = 0; j < n_gallery; ++j) {
    ++by_label[{gl_p[j]}];
    if (has_ids) ++by_label_id[{gl_p[j], gid.data_ptr<int64_t>()[j]}];
    if (has_groups) ++by_label_group[{gl_p[j], ggr.data_ptr<int64_t>()[j]}];
    if (has_ids && has_groups)
      ++by_label_id_group[{gl_p[j], gid.data_ptr<int64_t>()[j], ggr.data_ptr<int64_t>()[j]}];
  }

  at::Tensor is_relevant = at::empty({n_query, width}, ret.options().dtype(at::kBool));
  at::Tensor n_gt = at::empty({n_query}, ret.options());
  bool* rel_p = is_relevant.data_ptr<bool>();
  int64_t* n_gt_p = n_gt.data_ptr<int64_t>();
  std::atomic<bool> has_bad_index{false};
  at::parallel_for(0, n_query, 256, [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end; ++q) {
      const int64_t label = ql_p[q];
      for (int64_t t = 0; t < width; ++t) {
        const int64_t g = ret_p[q * width + t];
        if (g < -1 || g >= n_gallery) {
          has_bad_index.store(true);
          rel_p[q * width + t] = false;
          continue;
        }
        rel_p[q * width + t] = g >= 0 && gl_p[g] == label;
      }
      int64_t count = count_of(by_label, {label});
      if (has_ids) count -= count_of(by_label_id, {label, qid.data_ptr<int64_t>()[q]});
      if (has_groups) count -= count_of(by_label_group, {label, qgr.data_ptr<int64_t>()[q]});
      if (has_ids && has_groups)
        count += count_of(by_label_id_group,
                          {label, qid.data_ptr<int64_t>()[q], qgr.data_ptr<int64_t>()[q]});
      n_gt_p[q] = count;
    }
  });
  // The loop only notices; the shared check reports the first bad entry (deterministically).
  if (has_bad_index.load()) retrieval::check_retrieved_indices(ret, n_gallery);
  return {is_relevant, n_gt};
}

}  // namespace

TORCH_LIBRARY_IMPL(oml_fast, CPU, m) { m.impl("retrieval_relevance", &retrieval_relevance_cpu); }

}  // namespace oml_fast
