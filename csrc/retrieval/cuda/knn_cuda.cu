// Streaming exact k-nearest-neighbour search on CUDA.
//
// Per tile of queries: for each chunk of the gallery, one cuBLAS GEMM (through ATen) gives the
// inner products; `select_chunk_kernel` (one block per query) turns them into ranking values, drops
// the excluded pairs and those above the query's current K2-th value, and merges the survivors into
// the query's running list of K2 = k + kMargin candidates with a bitonic sort in shared memory
// (keys (value, index), so ties go to the smaller index). `finish_kernel` then recomputes the
// distances of the K2 candidates exactly (float64, from the differences) and sorts them again, so
// the returned distances and tie order do not depend on GEMM rounding. The margin of extra
// candidates covers near-ties that GEMM rounding could otherwise push out of the top k.
//
// k > kMaxOnChipK uses a bounded-memory ATen path (topk per query tile) instead of the on-chip
// list. float16 / bfloat16 inputs are searched in float32; their distances are returned as float32.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <limits>

#include "retrieval/retrieval_checks.h"

namespace oml_fast {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMargin = 32;
constexpr int64_t kMaxOnChipK = 1024;
constexpr int32_t kNoIndex = std::numeric_limits<int32_t>::max();  // sorts after every real index

// Exclusion keys, as raw pointers (null when the pair is not given).
struct ExclusionKeys {
  const int64_t* query_ids;
  const int64_t* gallery_ids;
  const int64_t* query_groups;
  const int64_t* gallery_groups;
};

template <typename key_t>
__device__ __forceinline__ bool greater_pair(key_t a, int32_t ia, key_t b, int32_t ib) {
  return a > b || (a == b && ia > ib);
}

// Ascending bitonic sort of `n` (a power of two) (key, index) pairs in shared memory.
template <typename key_t>
__device__ void bitonic_sort(key_t* key, int32_t* index, int n) {
  for (int size = 2; size <= n; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int t = threadIdx.x; t < n / 2; t += blockDim.x) {
        const int pos = 2 * t - (t & (stride - 1));
        const int partner = pos + stride;
        const bool ascending = (pos & size) == 0;
        if (greater_pair(key[pos], index[pos], key[partner], index[partner]) == ascending) {
          const key_t k = key[pos];
          key[pos] = key[partner];
          key[partner] = k;
          const int32_t i = index[pos];
          index[pos] = index[partner];
          index[partner] = i;
        }
      }
      __syncthreads();
    }
  }
}

// One block per query row of the tile. Shared layout: [0, list_size) the running list (sorted),
// [list_size, P) the buffer of new candidates; a merge sorts all P and keeps the first list_size.
template <typename acc_t, int P>
__global__ void select_chunk_kernel(const acc_t* __restrict__ products, int64_t n_cols,
                                    const acc_t* __restrict__ bias, const acc_t* __restrict__ scale,
                                    int64_t gallery_begin, int64_t query_begin, ExclusionKeys keys,
                                    acc_t* __restrict__ list_value,
                                    int32_t* __restrict__ list_index, int list_size) {
  __shared__ acc_t key[P];
  __shared__ int32_t index[P];
  __shared__ int count;
  __shared__ acc_t threshold;
  const int64_t row = blockIdx.x;
  const int64_t q = query_begin + row;
  acc_t* row_value = list_value + row * list_size;
  int32_t* row_index = list_index + row * list_size;
  for (int t = threadIdx.x; t < list_size; t += blockDim.x) {
    key[t] = row_value[t];
    index[t] = row_index[t];
  }
  if (threadIdx.x == 0) {
    count = 0;
    threshold = row_value[list_size - 1];
  }
  __syncthreads();
  const int capacity = P - list_size;  // >= 2 * blockDim.x by construction
  const int64_t qid = keys.query_ids ? keys.query_ids[q] : 0;
  const int64_t qgroup = keys.query_groups ? keys.query_groups[q] : 0;
  auto merge = [&](int n_new) {
    for (int t = list_size + n_new + threadIdx.x; t < P; t += blockDim.x) {
      key[t] = std::numeric_limits<acc_t>::infinity();
      index[t] = kNoIndex;
    }
    __syncthreads();
    bitonic_sort(key, index, P);
    if (threadIdx.x == 0) {
      count = 0;
      threshold = key[list_size - 1];
    }
    __syncthreads();
  };
  for (int64_t base = 0; base < n_cols; base += blockDim.x) {
    const int64_t j = base + threadIdx.x;
    if (j < n_cols) {
      const acc_t value = bias[j] + scale[j] * products[row * n_cols + j];
      const int64_t g = gallery_begin + j;
      const bool excluded = (keys.query_ids && keys.gallery_ids[g] == qid) ||
                            (keys.query_groups && keys.gallery_groups[g] == qgroup);
      if (!excluded && value <= threshold) {
        const int slot = atomicAdd(&count, 1);
        key[list_size + slot] = value;
        index[list_size + slot] = static_cast<int32_t>(g);
      }
    }
    __syncthreads();
    const int n_new = count;
    __syncthreads();  // everyone has read `count` before a merge resets it
    if (n_new > capacity - static_cast<int>(blockDim.x)) merge(n_new);
  }
  const int n_new = count;
  __syncthreads();
  if (n_new > 0) merge(n_new);
  for (int t = threadIdx.x; t < list_size; t += blockDim.x) {
    row_value[t] = key[t];
    row_index[t] = index[t];
  }
}

// One block per query row: exact distances of the K2 candidates, sorted by (distance, index); the
// first k are written out, padded with (inf, -1).
template <typename acc_t, typename out_t, int P>
__global__ void finish_kernel(const acc_t* __restrict__ queries, const acc_t* __restrict__ gallery,
                              int64_t dim, const double* __restrict__ query_norm,
                              const double* __restrict__ gallery_norm, int metric,
                              int64_t query_begin, const int32_t* __restrict__ list_index,
                              int list_size, int64_t k, out_t* __restrict__ out_dist,
                              int64_t* __restrict__ out_idx) {
  __shared__ double key[P];
  __shared__ int32_t index[P];
  const int64_t row = blockIdx.x;
  const int64_t q = query_begin + row;
  const acc_t* a = queries + q * dim;
  for (int t = threadIdx.x; t < P; t += blockDim.x) {
    const int32_t g = t < list_size ? list_index[row * list_size + t] : kNoIndex;
    index[t] = g;
    if (g == kNoIndex) {
      key[t] = std::numeric_limits<double>::infinity();
      continue;
    }
    const acc_t* b = gallery + static_cast<int64_t>(g) * dim;
    double acc = 0;
    if (metric == static_cast<int>(Metric::Euclidean) ||
        metric == static_cast<int>(Metric::SqEuclidean)) {
      for (int64_t d = 0; d < dim; ++d) {
        const double diff = static_cast<double>(a[d]) - static_cast<double>(b[d]);
        acc += diff * diff;
      }
      key[t] = metric == static_cast<int>(Metric::Euclidean) ? sqrt(acc) : acc;
    } else {
      for (int64_t d = 0; d < dim; ++d)
        acc += static_cast<double>(a[d]) * static_cast<double>(b[d]);
      if (metric == static_cast<int>(Metric::Dot)) {
        key[t] = -acc;
      } else {
        const double cos =
            acc / (fmax(query_norm[q], kCosineEps) * fmax(gallery_norm[g], kCosineEps));
        key[t] = fmin(2.0, fmax(0.0, 1.0 - cos));
      }
    }
  }
  __syncthreads();
  bitonic_sort(key, index, P);
  for (int64_t t = threadIdx.x; t < k; t += blockDim.x) {
    const bool valid = t < P && index[t] != kNoIndex;
    out_dist[q * k + t] =
        valid ? static_cast<out_t>(key[t]) : std::numeric_limits<out_t>::infinity();
    out_idx[q * k + t] = valid ? static_cast<int64_t>(index[t]) : -1;
  }
}

int64_t next_power_of_two(int64_t n) {
  int64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

// Ranking value = bias[j] + scale[j] * <q, g_j>, monotone in the distance for a fixed query.
std::pair<at::Tensor, at::Tensor> ranking_coefficients(const at::Tensor& g,
                                                       const at::Tensor& gallery_norm,
                                                       Metric metric) {
  if (metric == Metric::Euclidean || metric == Metric::SqEuclidean)
    return {gallery_norm.square().to(g.scalar_type()), at::full({g.size(0)}, -2.0, g.options())};
  if (metric == Metric::Cosine)
    return {at::zeros({g.size(0)}, g.options()),
            (-1.0 / gallery_norm.clamp_min(kCosineEps)).to(g.scalar_type())};
  return {at::zeros({g.size(0)}, g.options()), at::full({g.size(0)}, -1.0, g.options())};
}

template <typename acc_t, int P>
void launch_select(int64_t n_rows, const at::Tensor& products, const at::Tensor& bias,
                   const at::Tensor& scale, int64_t g_begin, int64_t q_begin, ExclusionKeys keys,
                   at::Tensor& list_value, at::Tensor& list_index, int list_size,
                   cudaStream_t stream) {
  select_chunk_kernel<acc_t, P><<<n_rows, kThreads, 0, stream>>>(
      products.const_data_ptr<acc_t>(), products.size(1), bias.const_data_ptr<acc_t>() + g_begin,
      scale.const_data_ptr<acc_t>() + g_begin, g_begin, q_begin, keys,
      list_value.mutable_data_ptr<acc_t>(), list_index.mutable_data_ptr<int32_t>(), list_size);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename acc_t, typename out_t, int P>
void launch_finish(int64_t n_rows, const at::Tensor& q, const at::Tensor& g,
                   const at::Tensor& query_norm, const at::Tensor& gallery_norm, Metric metric,
                   int64_t q_begin, const at::Tensor& list_index, int list_size, int64_t k,
                   at::Tensor& out_dist, at::Tensor& out_idx, cudaStream_t stream) {
  finish_kernel<acc_t, out_t, P><<<n_rows, kThreads, 0, stream>>>(
      q.const_data_ptr<acc_t>(), g.const_data_ptr<acc_t>(), q.size(1),
      query_norm.const_data_ptr<double>(), gallery_norm.const_data_ptr<double>(),
      static_cast<int>(metric), q_begin, list_index.const_data_ptr<int32_t>(), list_size, k,
      out_dist.mutable_data_ptr<out_t>(), out_idx.mutable_data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Distances of candidates (exact, float64, from the differences), for the ATen path.
at::Tensor exact_distances(const at::Tensor& q_tile, const at::Tensor& g,
                           const at::Tensor& candidates, Metric metric) {
  const at::Tensor a = q_tile.to(at::kDouble).unsqueeze(1);  // [T, 1, D]
  const at::Tensor b =
      g.index_select(0, candidates.reshape(-1))
          .to(at::kDouble)
          .view({candidates.size(0), candidates.size(1), g.size(1)});  // [T, K2, D]
  if (metric == Metric::Euclidean || metric == Metric::SqEuclidean) {
    const at::Tensor sq = (a - b).square().sum(-1);
    return metric == Metric::Euclidean ? sq.sqrt() : sq;
  }
  const at::Tensor dot = (a * b).sum(-1);
  if (metric == Metric::Dot) return -dot;
  const at::Tensor norms =
      a.norm(2, -1).clamp_min(kCosineEps) * b.norm(2, -1).clamp_min(kCosineEps);
  return (1.0 - dot / norms).clamp(0.0, 2.0);
}

// k > kMaxOnChipK: per query tile, the full [T, Ng] ranking values (bounded workspace), topk of
// K2 candidates, exact recomputation, stable sort by (distance, index).
void knn_large_k(const at::Tensor& q, const at::Tensor& g, int64_t k, Metric metric,
                 const at::Tensor& bias, const at::Tensor& scale,
                 const std::optional<at::Tensor>& query_ids,
                 const std::optional<at::Tensor>& gallery_ids,
                 const std::optional<at::Tensor>& query_groups,
                 const std::optional<at::Tensor>& gallery_groups, at::Tensor& out_dist,
                 at::Tensor& out_idx) {
  const int64_t n_query = q.size(0), n_gallery = g.size(0);
  const int64_t list_size = std::min(n_gallery, k + kMargin);
  const int64_t tile = std::max<int64_t>(
      1, (int64_t(1) << 25) / std::max<int64_t>(n_gallery, list_size * q.size(1)));
  const double inf = std::numeric_limits<double>::infinity();
  for (int64_t q_begin = 0; q_begin < n_query; q_begin += tile) {
    const int64_t n_rows = std::min(tile, n_query - q_begin);
    const at::Tensor q_tile = q.narrow(0, q_begin, n_rows);
    // bias + scale * <q, g>
    at::Tensor values = at::mm(q_tile, g.t()).mul_(scale.unsqueeze(0)).add_(bias.unsqueeze(0));
    at::Tensor excluded = at::zeros({n_rows, n_gallery}, q.options().dtype(at::kBool));
    if (query_ids)
      excluded |= query_ids->narrow(0, q_begin, n_rows).unsqueeze(1) == gallery_ids->unsqueeze(0);
    if (query_groups)
      excluded |=
          query_groups->narrow(0, q_begin, n_rows).unsqueeze(1) == gallery_groups->unsqueeze(0);
    values.masked_fill_(excluded, inf);
    const at::Tensor candidates =
        std::get<1>(values.topk(list_size, 1, /*largest=*/false, /*sorted=*/false));
    const at::Tensor candidate_excluded = excluded.gather(1, candidates);
    at::Tensor dist =
        exact_distances(q_tile, g, candidates, metric).masked_fill_(candidate_excluded, inf);
    // Sort by index, then stably by distance: (distance, index) order.
    const auto by_index = candidates.sort(1);
    const at::Tensor dist_by_index = dist.gather(1, std::get<1>(by_index));
    const auto by_dist = dist_by_index.sort(/*stable=*/true, 1);
    at::Tensor idx = std::get<0>(by_index).gather(1, std::get<1>(by_dist));
    at::Tensor sorted_dist = std::get<0>(by_dist);
    idx.masked_fill_(sorted_dist == inf, -1);
    const int64_t n_take = std::min(k, list_size);
    out_dist.narrow(0, q_begin, n_rows)
        .narrow(1, 0, n_take)
        .copy_(sorted_dist.narrow(1, 0, n_take));
    out_idx.narrow(0, q_begin, n_rows).narrow(1, 0, n_take).copy_(idx.narrow(1, 0, n_take));
  }
}

std::tuple<at::Tensor, at::Tensor> knn_cuda(const at::Tensor& queries, const at::Tensor& gallery,
                                            int64_t k, c10::string_view metric_name,
                                            const std::optional<at::Tensor>& query_ids,
                                            const std::optional<at::Tensor>& gallery_ids,
                                            const std::optional<at::Tensor>& query_groups,
                                            const std::optional<at::Tensor>& gallery_groups) {
  const Metric metric = retrieval::check_knn_inputs(queries, gallery, k, metric_name, query_ids,
                                                    gallery_ids, query_groups, gallery_groups);
  const c10::cuda::CUDAGuard device_guard(queries.device());
  TORCH_CHECK_VALUE(gallery.size(0) < kNoIndex,
                    "`gallery` must have fewer than 2^31 - 1 rows on CUDA, got ",
                    describe(gallery));
  check_finite(queries, "queries");
  check_finite(gallery, "gallery");
  const auto acc_type = queries.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor q = queries.detach().to(acc_type).contiguous();
  const at::Tensor g = gallery.detach().to(acc_type).contiguous();
  const int64_t n_query = q.size(0), n_gallery = g.size(0);
  at::Tensor out_dist =
      at::full({n_query, k}, std::numeric_limits<double>::infinity(), q.options());
  at::Tensor out_idx = at::full({n_query, k}, -1, q.options().dtype(at::kLong));
  if (n_query == 0 || n_gallery == 0) return {out_dist, out_idx};

  const at::Tensor query_norm = q.to(at::kDouble).norm(2, 1).contiguous();
  const at::Tensor gallery_norm = g.to(at::kDouble).norm(2, 1).contiguous();
  auto [bias, scale] = ranking_coefficients(g, gallery_norm, metric);
  bias = bias.contiguous();
  scale = scale.contiguous();
  if (k > kMaxOnChipK) {
    knn_large_k(q, g, k, metric, bias, scale, query_ids, gallery_ids, query_groups, gallery_groups,
                out_dist, out_idx);
    return {out_dist, out_idx};
  }

  auto key_ptr = [](const std::optional<at::Tensor>& t) -> const int64_t* {
    return t ? t->const_data_ptr<int64_t>() : nullptr;
  };
  const std::optional<at::Tensor> qid =
      query_ids ? std::optional<at::Tensor>(query_ids->contiguous()) : std::nullopt;
  const std::optional<at::Tensor> gid =
      gallery_ids ? std::optional<at::Tensor>(gallery_ids->contiguous()) : std::nullopt;
  const std::optional<at::Tensor> qgr =
      query_groups ? std::optional<at::Tensor>(query_groups->contiguous()) : std::nullopt;
  const std::optional<at::Tensor> ggr =
      gallery_groups ? std::optional<at::Tensor>(gallery_groups->contiguous()) : std::nullopt;
  const ExclusionKeys keys{key_ptr(qid), key_ptr(gid), key_ptr(qgr), key_ptr(ggr)};

  const int list_size = static_cast<int>(std::min<int64_t>(n_gallery, k + kMargin));
  // Shared sort size: the list plus a buffer of at least 2 blocks of new candidates.
  const int64_t select_p = next_power_of_two(list_size + 2 * kThreads);
  const int64_t finish_p = next_power_of_two(list_size);
  constexpr int64_t kQueryTile = 2048, kGalleryChunk = 8192;  // 64 MiB float32 product tile
  const auto stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor products =
      at::empty({std::min(kQueryTile, n_query), std::min(kGalleryChunk, n_gallery)}, q.options());
  at::Tensor list_value = at::empty({std::min(kQueryTile, n_query), list_size}, q.options());
  at::Tensor list_index =
      at::empty({std::min(kQueryTile, n_query), list_size}, q.options().dtype(at::kInt));

  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "knn_cuda", [&] {
    using acc_t = scalar_t;
    for (int64_t q_begin = 0; q_begin < n_query; q_begin += kQueryTile) {
      const int64_t n_rows = std::min(kQueryTile, n_query - q_begin);
      at::Tensor row_value = list_value.narrow(0, 0, n_rows);
      at::Tensor row_index = list_index.narrow(0, 0, n_rows);
      row_value.fill_(std::numeric_limits<double>::infinity());
      row_index.fill_(kNoIndex);
      const at::Tensor q_tile = q.narrow(0, q_begin, n_rows);
      for (int64_t g_begin = 0; g_begin < n_gallery; g_begin += kGalleryChunk) {
        const int64_t n_cols = std::min(kGalleryChunk, n_gallery - g_begin);
        // A contiguous [n_rows, n_cols] view of the workspace for the GEMM output.
        at::Tensor out = at::from_blob(products.data_ptr<acc_t>(), {n_rows, n_cols}, q.options());
        at::mm_out(out, q_tile, g.narrow(0, g_begin, n_cols).t());
        switch (select_p) {
          case 512:
            launch_select<acc_t, 512>(n_rows, out, bias, scale, g_begin, q_begin, keys, row_value,
                                      row_index, list_size, stream);
            break;
          case 1024:
            launch_select<acc_t, 1024>(n_rows, out, bias, scale, g_begin, q_begin, keys, row_value,
                                       row_index, list_size, stream);
            break;
          default:
            launch_select<acc_t, 2048>(n_rows, out, bias, scale, g_begin, q_begin, keys, row_value,
                                       row_index, list_size, stream);
            break;
        }
      }
      switch (finish_p) {
        case 1:
        case 2:
        case 4:
        case 8:
        case 16:
        case 32:
        case 64:
          launch_finish<acc_t, acc_t, 64>(n_rows, q, g, query_norm, gallery_norm, metric, q_begin,
                                          row_index, list_size, k, out_dist, out_idx, stream);
          break;
        case 128:
        case 256:
          launch_finish<acc_t, acc_t, 256>(n_rows, q, g, query_norm, gallery_norm, metric, q_begin,
                                           row_index, list_size, k, out_dist, out_idx, stream);
          break;
        case 512:
          launch_finish<acc_t, acc_t, 512>(n_rows, q, g, query_norm, gallery_norm, metric, q_begin,
                                           row_index, list_size, k, out_dist, out_idx, stream);
          break;
        case 1024:
          launch_finish<acc_t, acc_t, 1024>(n_rows, q, g, query_norm, gallery_norm, metric, q_begin,
                                            row_index, list_size, k, out_dist, out_idx, stream);
          break;
        default:
          launch_finish<acc_t, acc_t, 2048>(n_rows, q, g, query_norm, gallery_norm, metric, q_begin,
                                            row_index, list_size, k, out_dist, out_idx, stream);
          break;
      }
    }
  });
  return {out_dist, out_idx};
}

}  // namespace

TORCH_LIBRARY_IMPL(oml_fast, CUDA, m) { m.impl("knn", &knn_cuda); }

}  // namespace oml_fast
