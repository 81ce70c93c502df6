// Streaming exact k-nearest-neighbour search on CUDA, exact by construction (the same rule as the
// CPU kernel; the maths is in common/distance_math.h, a host imitation of this selection runs in
// the CPU test suite: tests/ops/test_knn_cuda_selection.py).
//
// Preparation: the GEMM sees a copy of the data that is mean-centred (euclidean metrics: same
// distances, no offset cancellation) and scaled by a power of two towards 1 (no overflow or
// subnormal products); every gallery item gets its ranking coefficients and its error terms
// (`prepare_gallery_kernel`), with the bound of the GEMM precision in effect (TF32 / bfloat16 when
// torch's float32 matmul precision allows them).
//
// Per tile of queries, for each chunk of the gallery, one cuBLAS GEMM (through ATen) gives the
// inner products; `select_chunk_kernel` (one block per query) computes each item's lower end l = v
// - E, admits the non-excluded items with l <= threshold into a buffer in shared memory and merges
// buffer and running list with a bitonic sort of (l, index). After a merge the threshold is the
// largest upper end (l + 2E) among the k smallest lower ends -- k items are known to be at least
// that close -- and every item whose lower end exceeds it is dropped. Every item that can be in the
// exact top k is kept: no fixed margin. If more than the list's capacity stay inside the band
// (massive near-ties), the query is flagged, its block stops, and `exact_fallback_kernel` answers
// it from float64 distances of the whole gallery (a top-k list of exact keys, which needs no band).
// `finish_kernel` recomputes the kept candidates' distances exactly (float64, from the input data)
// and sorts them by (distance, index), so values, ties and the smaller-index rule do not depend on
// GEMM rounding. No host synchronisation happens on this path (bar the input checks).
//
// k above the on-chip limit uses a bounded-memory ATen path with the same band rule, also without
// host synchronisation (knn_large_k). float16 / bfloat16 inputs are searched in float32; their
// distances are returned as float32.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>

#include "common/cuda/scaling_cuda.cuh"
#include "common/distance_math.h"
#include "common/scaling.h"
#include "retrieval/knn_workspace.h"
#include "retrieval/retrieval_checks.h"

namespace oml_fast {
namespace {

constexpr int kThreads = 256;
constexpr int32_t kNoIndex = std::numeric_limits<int32_t>::max();  // sorts after every real index
constexpr int64_t kStaticSharedBytes = 48 * 1024;

// The largest k kept on chip: the list holds 2k + 64 candidates and the select kernel sorts the
// list plus a buffer of two blocks in shared memory (size_for_list below), within 48 KiB.
template <typename acc_t>
constexpr int64_t kMaxOnChipK = sizeof(acc_t) == 4 ? 992 : 480;

inline int64_t list_capacity(int64_t k, int64_t n_gallery) {
  const int64_t k_eff = std::max<int64_t>(std::min(k, n_gallery), 1);
  return std::max<int64_t>(std::min<int64_t>(2 * k_eff + 64, n_gallery), 1);
}

// Exclusion keys, as raw pointers (null when the pair is not given).
struct ExclusionKeys {
  const int64_t* query_ids;
  const int64_t* gallery_ids;
  const int64_t* query_groups;
  const int64_t* gallery_groups;

  __device__ __forceinline__ bool excluded(int64_t qid, int64_t qgroup, int64_t g) const {
    return (query_ids && gallery_ids[g] == qid) || (query_groups && gallery_groups[g] == qgroup);
  }
};

// Per gallery item: lower end = bias_lo + scale * <q, g> - |q| e_cross; half width = e_self + |q|
// e_cross.
template <typename acc_t>
struct GalleryTerms {
  const acc_t* bias_lo;
  const acc_t* scale;
  const acc_t* e_self;
  const acc_t* e_cross;
};

template <typename key_t>
__device__ __forceinline__ bool greater_pair(key_t a, int32_t ia, key_t b, int32_t ib) {
  return a > b || (a == b && ia > ib);
}

// Ascending bitonic sort of P (a power of two) (key, index) pairs in shared memory.
template <typename key_t, int P>
__device__ void bitonic_sort(key_t* key, int32_t* index) {
  static_assert((P & (P - 1)) == 0 && P >= 2, "bitonic sort needs a power of two");
  for (int size = 2; size <= P; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int t = threadIdx.x; t < P / 2; t += blockDim.x) {
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

// Block-wide maximum (every thread gets the result). Needs blockDim.x == kThreads.
template <typename T>
__device__ T block_max(T value, T* scratch) {
  for (int offset = 16; offset > 0; offset >>= 1)
    value = max(value, __shfl_down_sync(0xffffffffu, value, offset));
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = value;
  __syncthreads();
  if (threadIdx.x == 0) {
    T best = scratch[0];
    for (int w = 1; w < kThreads / 32; ++w) best = max(best, scratch[w]);
    scratch[0] = best;
  }
  __syncthreads();
  const T result = scratch[0];
  __syncthreads();
  return result;
}

__device__ int block_sum(int value, int* scratch) {
  for (int offset = 16; offset > 0; offset >>= 1)
    value += __shfl_down_sync(0xffffffffu, value, offset);
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = value;
  __syncthreads();
  if (threadIdx.x == 0) {
    int total = 0;
    for (int w = 0; w < kThreads / 32; ++w) total += scratch[w];
    scratch[0] = total;
  }
  __syncthreads();
  const int result = scratch[0];
  __syncthreads();
  return result;
}

// One block per query row of the tile. Shared layout: [0, L) the running list (sorted by lower
// end, `n_list` valid entries), [L, P) the buffer of new candidates. Per-row state in global
// memory: the list, its size, the threshold (an upper end) and the overflow flag.
template <typename acc_t, int P>
__global__ void __launch_bounds__(kThreads)
    select_chunk_kernel(const acc_t* __restrict__ products, int64_t n_cols,
                        GalleryTerms<acc_t> terms, const double* __restrict__ query_norm,
                        int64_t gallery_begin, int64_t query_begin, ExclusionKeys keys,
                        int64_t k_eff, int L, acc_t* __restrict__ list_value,
                        int32_t* __restrict__ list_index, int32_t* __restrict__ list_size,
                        acc_t* __restrict__ row_threshold, int32_t* __restrict__ overflow) {
  static_assert(P * (sizeof(acc_t) + sizeof(int32_t)) + 256 <= kStaticSharedBytes,
                "select_chunk_kernel: shared memory over 48 KiB");
  __shared__ acc_t key[P];
  __shared__ int32_t index[P];
  __shared__ int count;
  __shared__ acc_t threshold;
  __shared__ int n_list;
  __shared__ acc_t scratch_max[kThreads / 32];
  __shared__ int scratch_sum[kThreads / 32];
  const int64_t row = blockIdx.x;
  if (overflow[row]) return;
  const int64_t q = query_begin + row;
  const acc_t nq = static_cast<acc_t>(query_norm[q]);
  acc_t* row_value = list_value + row * L;
  int32_t* row_index = list_index + row * L;
  if (threadIdx.x == 0) {
    count = 0;
    threshold = row_threshold[row];
    n_list = list_size[row];
  }
  __syncthreads();
  for (int t = threadIdx.x; t < L; t += blockDim.x) {
    key[t] = t < n_list ? row_value[t] : std::numeric_limits<acc_t>::infinity();
    index[t] = t < n_list ? row_index[t] : kNoIndex;
  }
  __syncthreads();
  const int capacity = P - L;  // >= 2 * blockDim.x by construction
  const int64_t qid = keys.query_ids ? keys.query_ids[q] : 0;
  const int64_t qgroup = keys.query_groups ? keys.query_groups[q] : 0;
  bool overflowed = false;
  // Sorts list + buffer, lowers the threshold, keeps what is inside it. Returns false on overflow.
  auto merge = [&](int n_new) -> bool {
    for (int t = L + n_new + threadIdx.x; t < P; t += blockDim.x) {
      key[t] = std::numeric_limits<acc_t>::infinity();
      index[t] = kNoIndex;
    }
    __syncthreads();
    bitonic_sort<acc_t, P>(key, index);
    // The largest upper end among the k smallest lower ends (valid only with k real entries).
    acc_t upper = -std::numeric_limits<acc_t>::infinity();
    for (int t = threadIdx.x; t < k_eff; t += blockDim.x) {
      const int32_t g = index[t];
      upper = g == kNoIndex ? std::numeric_limits<acc_t>::infinity()
                            : max(upper, key[t] + 2 * (terms.e_self[g] + nq * terms.e_cross[g]));
    }
    upper = block_max(upper, scratch_max);
    const acc_t new_threshold = min(threshold, upper);
    int inside = 0;
    for (int t = threadIdx.x; t < P; t += blockDim.x)
      inside += index[t] != kNoIndex && key[t] <= new_threshold;
    inside = block_sum(inside, scratch_sum);
    if (threadIdx.x == 0) {
      threshold = new_threshold;
      count = 0;
      n_list = min(inside, L);
    }
    // Entries past the kept prefix are padding from now on.
    for (int t = inside + threadIdx.x; t < L; t += blockDim.x) {
      key[t] = std::numeric_limits<acc_t>::infinity();
      index[t] = kNoIndex;
    }
    __syncthreads();
    return inside <= L;
  };
  for (int64_t base = 0; base < n_cols && !overflowed; base += blockDim.x) {
    const int64_t j = base + threadIdx.x;
    if (j < n_cols) {
      const int64_t g = gallery_begin + j;
      const acc_t lower =
          terms.bias_lo[g] + terms.scale[g] * products[row * n_cols + j] - nq * terms.e_cross[g];
      if (lower <= threshold && !keys.excluded(qid, qgroup, g)) {
        const int slot = atomicAdd(&count, 1);
        key[L + slot] = lower;
        index[L + slot] = static_cast<int32_t>(g);
      }
    }
    __syncthreads();
    const int n_new = count;
    __syncthreads();  // everyone has read `count` before a merge resets it
    if (n_new > capacity - static_cast<int>(blockDim.x)) overflowed = !merge(n_new);
  }
  if (!overflowed) {
    const int n_new = count;
    __syncthreads();
    if (n_new > 0) overflowed = !merge(n_new);
  }
  if (overflowed) {
    if (threadIdx.x == 0) overflow[row] = 1;
    return;
  }
  for (int t = threadIdx.x; t < L; t += blockDim.x) {
    row_value[t] = key[t];
    row_index[t] = index[t];
  }
  if (threadIdx.x == 0) {
    list_size[row] = n_list;
    row_threshold[row] = threshold;
  }
}

// The exact distance of query q and gallery item g, in float64, from the input data.
template <typename acc_t>
__device__ double exact_distance(const acc_t* a, const acc_t* b, int64_t dim, Metric metric,
                                 double norm_a, double norm_b) {
  double squared = 0, inner = 0;
  if (metric == Metric::Euclidean || metric == Metric::SqEuclidean) {
    for (int64_t d = 0; d < dim; ++d) {
      const double diff = static_cast<double>(a[d]) - static_cast<double>(b[d]);
      squared += diff * diff;
    }
  } else {
    for (int64_t d = 0; d < dim; ++d)
      inner += static_cast<double>(a[d]) * static_cast<double>(b[d]);
  }
  return dist::exact_distance(metric, squared, inner, norm_a, norm_b);
}

// One block per query row: exact distances of the kept candidates, sorted by (distance, index); the
// first k are written out, padded with (inf, -1). Flagged rows are left to the fallback.
template <typename acc_t, typename out_t, int P>
__global__ void __launch_bounds__(kThreads)
    finish_kernel(const acc_t* __restrict__ queries, const acc_t* __restrict__ gallery, int64_t dim,
                  const double* __restrict__ query_norm, const double* __restrict__ gallery_norm,
                  Metric metric, int64_t query_begin, const int32_t* __restrict__ list_index,
                  const int32_t* __restrict__ list_size, const int32_t* __restrict__ overflow,
                  int L, int64_t k, out_t* __restrict__ out_dist, int64_t* __restrict__ out_idx) {
  static_assert(P * (sizeof(double) + sizeof(int32_t)) <= kStaticSharedBytes,
                "finish_kernel: shared memory over 48 KiB");
  __shared__ double key[P];
  __shared__ int32_t index[P];
  const int64_t row = blockIdx.x;
  if (overflow[row]) return;
  const int64_t q = query_begin + row;
  const int n_list = list_size[row];
  const acc_t* a = queries + q * dim;
  for (int t = threadIdx.x; t < P; t += blockDim.x) {
    const int32_t g = t < n_list ? list_index[row * L + t] : kNoIndex;
    index[t] = g;
    key[t] = g == kNoIndex ? std::numeric_limits<double>::infinity()
                           : exact_distance(a, gallery + static_cast<int64_t>(g) * dim, dim, metric,
                                            query_norm[q], gallery_norm[g]);
  }
  __syncthreads();
  bitonic_sort<double, P>(key, index);
  for (int64_t t = threadIdx.x; t < k; t += blockDim.x) {
    const bool valid = t < P && index[t] != kNoIndex;
    out_dist[q * k + t] =
        valid ? static_cast<out_t>(key[t]) : std::numeric_limits<out_t>::infinity();
    out_idx[q * k + t] = valid ? static_cast<int64_t>(index[t]) : -1;
  }
}

// One block per flagged query row: the exact top k over the whole gallery from float64 distances.
// Exact keys need no band, so a list of k entries (plus a buffer) is enough.
template <typename acc_t, typename out_t, int P>
__global__ void __launch_bounds__(kThreads)
    exact_fallback_kernel(const acc_t* __restrict__ queries, const acc_t* __restrict__ gallery,
                          int64_t n_gallery, int64_t dim, const double* __restrict__ query_norm,
                          const double* __restrict__ gallery_norm, Metric metric,
                          int64_t query_begin, ExclusionKeys keys, const int32_t* overflow,
                          int64_t k, out_t* __restrict__ out_dist, int64_t* __restrict__ out_idx) {
  static_assert(P * (sizeof(double) + sizeof(int32_t)) + 64 <= kStaticSharedBytes,
                "exact_fallback_kernel: shared memory over 48 KiB");
  __shared__ double key[P];
  __shared__ int32_t index[P];
  __shared__ int count;
  const int64_t row = blockIdx.x;
  if (!overflow[row]) return;
  const int64_t q = query_begin + row;
  const int list = static_cast<int>(k < n_gallery ? k : n_gallery);
  const acc_t* a = queries + q * dim;
  for (int t = threadIdx.x; t < P; t += blockDim.x) {
    key[t] = std::numeric_limits<double>::infinity();
    index[t] = kNoIndex;
  }
  if (threadIdx.x == 0) count = 0;
  __syncthreads();
  const int capacity = P - list;  // >= 2 * blockDim.x by construction
  const int64_t qid = keys.query_ids ? keys.query_ids[q] : 0;
  const int64_t qgroup = keys.query_groups ? keys.query_groups[q] : 0;
  auto merge = [&](int n_new) {
    for (int t = list + n_new + threadIdx.x; t < P; t += blockDim.x) {
      key[t] = std::numeric_limits<double>::infinity();
      index[t] = kNoIndex;
    }
    __syncthreads();
    bitonic_sort<double, P>(key, index);
    if (threadIdx.x == 0) count = 0;
    __syncthreads();
  };
  for (int64_t base = 0; base < n_gallery; base += blockDim.x) {
    const int64_t g = base + threadIdx.x;
    if (g < n_gallery && !keys.excluded(qid, qgroup, g)) {
      const double d =
          exact_distance(a, gallery + g * dim, dim, metric, query_norm[q], gallery_norm[g]);
      if (index[list - 1] == kNoIndex || d <= key[list - 1]) {
        const int slot = atomicAdd(&count, 1);
        key[list + slot] = d;
        index[list + slot] = static_cast<int32_t>(g);
      }
    }
    __syncthreads();
    const int n_new = count;
    __syncthreads();
    if (n_new > capacity - static_cast<int>(blockDim.x)) merge(n_new);
  }
  const int n_new = count;
  __syncthreads();
  if (n_new > 0) merge(n_new);
  for (int64_t t = threadIdx.x; t < k; t += blockDim.x) {
    const bool valid = t < list && index[t] != kNoIndex;
    out_dist[q * k + t] =
        valid ? static_cast<out_t>(key[t]) : std::numeric_limits<out_t>::infinity();
    out_idx[q * k + t] = valid ? static_cast<int64_t>(index[t]) : -1;
  }
}

// Ranking coefficients and error terms of every gallery item (distance_math.h).
template <typename acc_t>
__global__ void __launch_bounds__(kThreads)
    prepare_gallery_kernel(const double* __restrict__ norm, int64_t n, Metric metric, double alpha,
                           double floor, acc_t* bias_lo, acc_t* scale, acc_t* e_self,
                           acc_t* e_cross) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  const dist::Ranking r = dist::ranking_coefficients(metric, norm[j], alpha, floor);
  bias_lo[j] = static_cast<acc_t>(r.bias - r.e_self);
  scale[j] = static_cast<acc_t>(r.scale);
  e_self[j] = static_cast<acc_t>(r.e_self);
  e_cross[j] = static_cast<acc_t>(r.e_cross);
}

// The one size dispatch of the shared-memory sorts: calls fn with std::integral_constant<int, P>
// for P = p in {64, ..., MaxP} (sizes above MaxP are not even instantiated: their kernels would not
// fit in shared memory); any other size is a bug, asserted, never a silent default.
template <int P, int MaxP, typename Fn>
bool call_if_size(int64_t p, Fn& fn) {
  if constexpr (P <= MaxP) {
    if (p == P) {
      fn(std::integral_constant<int, P>{});
      return true;
    }
  }
  return false;
}

template <int MaxP, typename Fn>
void dispatch_sort_size(int64_t p, Fn&& fn) {
  const bool done = call_if_size<64, MaxP>(p, fn) || call_if_size<128, MaxP>(p, fn) ||
                    call_if_size<256, MaxP>(p, fn) || call_if_size<512, MaxP>(p, fn) ||
                    call_if_size<1024, MaxP>(p, fn) || call_if_size<2048, MaxP>(p, fn) ||
                    call_if_size<4096, MaxP>(p, fn);
  TORCH_CHECK(done, "oml_fast knn (CUDA): unsupported sort size ", p, " (max ", MaxP,
              "; internal error)");
}

// Largest sort sizes: the select kernel sorts acc_t keys (4096 float / 2048 double pairs), the
// finish and fallback kernels float64 keys (2048 pairs). kMaxOnChipK keeps every size within them.
template <typename acc_t>
constexpr int kMaxSelectP = sizeof(acc_t) == 4 ? 4096 : 2048;
constexpr int kMaxExactP = 2048;
static_assert(2 * kMaxOnChipK<float> + 64 + 2 * kThreads <= kMaxSelectP<float>);
static_assert(2 * kMaxOnChipK<double> + 64 + 2 * kThreads <= kMaxSelectP<double>);
static_assert(2 * kMaxOnChipK<float> + 64 <= kMaxExactP);
static_assert(kMaxOnChipK<float> + 2 * kThreads <= kMaxExactP);

int64_t next_power_of_two(int64_t n) {
  int64_t p = 64;
  while (p < n) p <<= 1;
  return p;
}

// What the GEMM sees: the data mean-centred (euclidean metrics) and scaled by a power of two
// towards 1 (dist::scale_exponent_tensor: the exponent is computed on the device, no host
// synchronisation; ldexp is exact, also for subnormal data whose factor would not fit in float32).
std::pair<at::Tensor, at::Tensor> screen_data(const at::Tensor& q, const at::Tensor& g,
                                              Metric metric) {
  at::Tensor qs = q, gs = g;
  if (metric == Metric::Euclidean || metric == Metric::SqEuclidean) {
    const at::Tensor centre = g.mean({0}, /*keepdim=*/true, at::kDouble).to(g.scalar_type());
    qs = q - centre;
    gs = g - centre;
  }
  const at::Tensor exponent = dist::scale_exponent_tensor(qs, gs, g.scalar_type());
  return {dist::scaled_by_pow2(qs, exponent, 1), dist::scaled_by_pow2(gs, exponent, 1)};
}

// Exact distances (float64, from the input data) of each row's candidates: column c of row r is
// gallery item candidates[r * width + c] (candidates == nullptr: item c, the whole gallery); +inf
// where the pair is excluded or the row is not active (active == nullptr: every row is).
template <typename acc_t>
__global__ void __launch_bounds__(kThreads)
    exact_candidates_kernel(const acc_t* __restrict__ queries, const acc_t* __restrict__ gallery,
                            int64_t dim, const double* __restrict__ query_norm,
                            const double* __restrict__ gallery_norm, Metric metric,
                            int64_t query_begin, ExclusionKeys keys,
                            const int64_t* __restrict__ candidates, int64_t n_rows, int64_t width,
                            const bool* __restrict__ active, double* __restrict__ out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       index < n_rows * width; index += stride) {
    const int64_t row = index / width;
    const int64_t q = query_begin + row;
    const int64_t g = candidates != nullptr ? candidates[index] : index - row * width;
    const bool skip = (active != nullptr && !active[row]) ||
                      keys.excluded(keys.query_ids ? keys.query_ids[q] : 0,
                                    keys.query_groups ? keys.query_groups[q] : 0, g);
    out[index] = skip ? std::numeric_limits<double>::infinity()
                      : exact_distance(queries + q * dim, gallery + g * dim, dim, metric,
                                       query_norm[q], gallery_norm[g]);
  }
}

int grid_for(int64_t total) {
  return static_cast<int>(std::clamp<int64_t>((total + kThreads - 1) / kThreads, 1, 65535));
}

// k > kMaxOnChipK: per query tile, the full [T, Ng] lower and upper ends (bounded workspace); the
// threshold is the k-th smallest upper end and every item whose lower end is within it is a
// candidate. Buffers are sized from host-known shapes only (no value is read back): the
// W = min(Ng, 2k + 64) smallest lower ends are recomputed exactly and sorted by (distance, index);
// a row with more than W candidates (massive near-ties) is flagged on the device and answered from
// the exact distances of the whole gallery (computed for flagged rows only; the sort of that
// workspace runs for every row, the price of not synchronising on this rare path).
template <typename acc_t>
void knn_large_k(const at::Tensor& q, const at::Tensor& g, const at::Tensor& qs,
                 const at::Tensor& gs, int64_t k, Metric metric, const at::Tensor& query_norm,
                 const at::Tensor& gallery_norm, const at::Tensor& query_norm_s,
                 const at::Tensor& bias_lo, const at::Tensor& scale, const at::Tensor& e_self,
                 const at::Tensor& e_cross, const ExclusionKeys& keys,
                 const std::optional<at::Tensor>& query_ids,
                 const std::optional<at::Tensor>& gallery_ids,
                 const std::optional<at::Tensor>& query_groups,
                 const std::optional<at::Tensor>& gallery_groups, at::Tensor& out_dist,
                 at::Tensor& out_idx) {
  const int64_t n_query = q.size(0), n_gallery = g.size(0), dim = q.size(1);
  const int64_t k_eff = std::min(k, n_gallery);
  const int64_t width = std::min(n_gallery, 2 * k_eff + 64);
  const int64_t n_take = std::min(k, width);
  const int64_t tile = std::max<int64_t>(1, (int64_t{1} << 23) / std::max<int64_t>(n_gallery, 1));
  const double inf = std::numeric_limits<double>::infinity();
  const auto stream = c10::cuda::getCurrentCUDAStream();
  for (int64_t q_begin = 0; q_begin < n_query; q_begin += tile) {
    const int64_t n_rows = std::min(tile, n_query - q_begin);
    const at::Tensor nq = query_norm_s.narrow(0, q_begin, n_rows).to(q.scalar_type()).unsqueeze(1);
    const at::Tensor half = e_self.unsqueeze(0) + nq * e_cross.unsqueeze(0);
    at::Tensor lower = at::mm(qs.narrow(0, q_begin, n_rows), gs.t())
                           .mul_(scale.unsqueeze(0))
                           .add_(bias_lo.unsqueeze(0))
                           .sub_(nq * e_cross.unsqueeze(0));
    at::Tensor excluded = at::zeros({n_rows, n_gallery}, q.options().dtype(at::kBool));
    if (query_ids)
      excluded |= query_ids->narrow(0, q_begin, n_rows).unsqueeze(1) == gallery_ids->unsqueeze(0);
    if (query_groups)
      excluded |=
          query_groups->narrow(0, q_begin, n_rows).unsqueeze(1) == gallery_groups->unsqueeze(0);
    lower.masked_fill_(excluded, inf);
    const at::Tensor upper = (lower + 2 * half).masked_fill_(excluded, inf);
    const at::Tensor threshold =
        std::get<0>(upper.topk(k_eff, 1, /*largest=*/false, /*sorted=*/true))
            .narrow(1, k_eff - 1, 1);
    const at::Tensor inside = (lower <= threshold) & at::logical_not(excluded);
    const at::Tensor overflow = (inside.sum(1) > width).contiguous();
    // Every inside item is among the W smallest lower ends unless the row overflows.
    const at::Tensor candidates =
        std::get<1>(lower.topk(width, 1, /*largest=*/false, /*sorted=*/false)).contiguous();
    at::Tensor dist = at::empty({n_rows, width}, q.options().dtype(at::kDouble));
    exact_candidates_kernel<acc_t><<<grid_for(n_rows * width), kThreads, 0, stream>>>(
        q.const_data_ptr<acc_t>(), g.const_data_ptr<acc_t>(), dim,
        query_norm.const_data_ptr<double>(), gallery_norm.const_data_ptr<double>(), metric, q_begin,
        keys, candidates.const_data_ptr<int64_t>(), n_rows, width, nullptr,
        dist.mutable_data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    // Sort by index, then stably by distance: (distance, index) order.
    const auto by_index = candidates.sort(1);
    const auto by_dist = dist.gather(1, std::get<1>(by_index)).sort(/*stable=*/true, 1);
    at::Tensor idx = std::get<0>(by_index).gather(1, std::get<1>(by_dist)).narrow(1, 0, n_take);
    at::Tensor sorted_dist = std::get<0>(by_dist).narrow(1, 0, n_take);
    // Flagged rows: the exact distances of the whole gallery, in index order, sorted stably.
    at::Tensor all = at::empty({n_rows, n_gallery}, dist.options());
    exact_candidates_kernel<acc_t><<<grid_for(n_rows * n_gallery), kThreads, 0, stream>>>(
        q.const_data_ptr<acc_t>(), g.const_data_ptr<acc_t>(), dim,
        query_norm.const_data_ptr<double>(), gallery_norm.const_data_ptr<double>(), metric, q_begin,
        keys, nullptr, n_rows, n_gallery, overflow.const_data_ptr<bool>(),
        all.mutable_data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    const auto all_sorted = all.sort(/*stable=*/true, 1);
    const at::Tensor flagged = overflow.unsqueeze(1);
    sorted_dist = at::where(flagged, std::get<0>(all_sorted).narrow(1, 0, n_take), sorted_dist);
    idx = at::where(flagged, std::get<1>(all_sorted).narrow(1, 0, n_take), idx);
    idx.masked_fill_(sorted_dist == inf, -1);
    out_dist.narrow(0, q_begin, n_rows).narrow(1, 0, n_take).copy_(sorted_dist);
    out_idx.narrow(0, q_begin, n_rows).narrow(1, 0, n_take).copy_(idx);
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
  retrieval::check_knn_size(queries.size(0), gallery.size(0), k);
  // Outside a CUDA graph capture the finiteness checks read one flag each back to the host, the
  // only synchronisation of the op (a ValueError naming the argument needs the value there); inside
  // one they are device-side asserts (common/checks.cpp).
  check_finite(queries, "queries");
  check_finite(gallery, "gallery");
  const auto acc_type = queries.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor q = queries.detach().to(acc_type).contiguous();
  const at::Tensor g = gallery.detach().to(acc_type).contiguous();
  const int64_t n_query = q.size(0), n_gallery = g.size(0), dim = q.size(1);
  at::Tensor out_dist =
      at::full({n_query, k}, std::numeric_limits<double>::infinity(), q.options());
  at::Tensor out_idx = at::full({n_query, k}, -1, q.options().dtype(at::kLong));
  if (n_query == 0 || n_gallery == 0) return {out_dist, out_idx};

  // Norms of the input (exact cosine) and of the GEMM's data (bands), accumulated in float64
  // without float64 copies of the inputs.
  const auto [qs, gs] = screen_data(q, g, metric);
  const at::Tensor query_norm = dist::row_norms_cuda(q);
  const at::Tensor gallery_norm = dist::row_norms_cuda(g);
  const at::Tensor query_norm_s = dist::row_norms_cuda(qs);
  const at::Tensor gallery_norm_s = dist::row_norms_cuda(gs);
  const int mantissa_bits = dist::gemm_mantissa_bits(acc_type);
  const double alpha = dist::error_factor(dim, dist::gemm_unit_roundoff(mantissa_bits));
  at::Tensor bias_lo = at::empty({n_gallery}, q.options());
  at::Tensor scale = at::empty_like(bias_lo), e_self = at::empty_like(bias_lo),
             e_cross = at::empty_like(bias_lo);
  const auto stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "knn_cuda", [&] {
    using acc_t = scalar_t;
    const double floor =
        dist::subnormal_floor<acc_t>(dim) + static_cast<double>(std::numeric_limits<acc_t>::min());
    prepare_gallery_kernel<acc_t><<<(n_gallery + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
        gallery_norm_s.const_data_ptr<double>(), n_gallery, metric, alpha, floor,
        bias_lo.mutable_data_ptr<acc_t>(), scale.mutable_data_ptr<acc_t>(),
        e_self.mutable_data_ptr<acc_t>(), e_cross.mutable_data_ptr<acc_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    auto key_ptr = [](const std::optional<at::Tensor>& t) -> std::optional<at::Tensor> {
      return t ? std::optional<at::Tensor>(t->contiguous()) : std::nullopt;
    };
    const auto qid = key_ptr(query_ids), gid = key_ptr(gallery_ids);
    const auto qgr = key_ptr(query_groups), ggr = key_ptr(gallery_groups);
    auto raw = [](const std::optional<at::Tensor>& t) -> const int64_t* {
      return t ? t->const_data_ptr<int64_t>() : nullptr;
    };
    const ExclusionKeys keys{raw(qid), raw(gid), raw(qgr), raw(ggr)};
    if (k > kMaxOnChipK<acc_t>) {
      knn_large_k<acc_t>(q, g, qs, gs, k, metric, query_norm, gallery_norm, query_norm_s, bias_lo,
                         scale, e_self, e_cross, keys, qid, gid, qgr, ggr, out_dist, out_idx);
      return;
    }
    const GalleryTerms<acc_t> terms{bias_lo.const_data_ptr<acc_t>(), scale.const_data_ptr<acc_t>(),
                                    e_self.const_data_ptr<acc_t>(),
                                    e_cross.const_data_ptr<acc_t>()};

    const int64_t k_eff = std::min(k, n_gallery);
    const int L = static_cast<int>(list_capacity(k, n_gallery));
    const int64_t select_p = next_power_of_two(L + 2 * kThreads);
    const int64_t finish_p = next_power_of_two(L);
    const int64_t fallback_p = next_power_of_two(k_eff + 2 * kThreads);
    // Query tiles sized so that the lists stay within the byte budget (at most 2048 rows).
    const int64_t query_tile = retrieval::queries_per_tile(L, sizeof(acc_t) + sizeof(int32_t),
                                                           std::min<int64_t>(2048, n_query));
    constexpr int64_t kGalleryChunk = 8192;  // 64 MiB float32 product tile at 2048 rows
    at::Tensor products = at::empty({query_tile, std::min(kGalleryChunk, n_gallery)}, q.options());
    at::Tensor list_value = at::empty({query_tile, L}, q.options());
    at::Tensor list_index = at::empty({query_tile, L}, q.options().dtype(at::kInt));
    at::Tensor list_size = at::empty({query_tile}, q.options().dtype(at::kInt));
    at::Tensor threshold = at::empty({query_tile}, q.options());
    at::Tensor overflow = at::empty({query_tile}, q.options().dtype(at::kInt));

    for (int64_t q_begin = 0; q_begin < n_query; q_begin += query_tile) {
      const int64_t n_rows = std::min(query_tile, n_query - q_begin);
      list_size.zero_();
      threshold.fill_(std::numeric_limits<double>::infinity());
      overflow.zero_();
      const at::Tensor q_tile = qs.narrow(0, q_begin, n_rows);
      for (int64_t g_begin = 0; g_begin < n_gallery; g_begin += kGalleryChunk) {
        const int64_t n_cols = std::min(kGalleryChunk, n_gallery - g_begin);
        // A contiguous [n_rows, n_cols] view of the workspace for the GEMM output.
        at::Tensor out =
            at::from_blob(products.mutable_data_ptr<acc_t>(), {n_rows, n_cols}, q.options());
        at::mm_out(out, q_tile, gs.narrow(0, g_begin, n_cols).t());
        dispatch_sort_size<kMaxSelectP<acc_t>>(select_p, [&](auto p) {
          select_chunk_kernel<acc_t, decltype(p)::value><<<n_rows, kThreads, 0, stream>>>(
              out.const_data_ptr<acc_t>(), n_cols, terms, query_norm_s.const_data_ptr<double>(),
              g_begin, q_begin, keys, k_eff, L, list_value.mutable_data_ptr<acc_t>(),
              list_index.mutable_data_ptr<int32_t>(), list_size.mutable_data_ptr<int32_t>(),
              threshold.mutable_data_ptr<acc_t>(), overflow.mutable_data_ptr<int32_t>());
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
      }
      dispatch_sort_size<kMaxExactP>(finish_p, [&](auto p) {
        finish_kernel<acc_t, acc_t, decltype(p)::value><<<n_rows, kThreads, 0, stream>>>(
            q.const_data_ptr<acc_t>(), g.const_data_ptr<acc_t>(), dim,
            query_norm.const_data_ptr<double>(), gallery_norm.const_data_ptr<double>(), metric,
            q_begin, list_index.const_data_ptr<int32_t>(), list_size.const_data_ptr<int32_t>(),
            overflow.const_data_ptr<int32_t>(), L, k, out_dist.mutable_data_ptr<acc_t>(),
            out_idx.mutable_data_ptr<int64_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
      dispatch_sort_size<kMaxExactP>(fallback_p, [&](auto p) {
        exact_fallback_kernel<acc_t, acc_t, decltype(p)::value><<<n_rows, kThreads, 0, stream>>>(
            q.const_data_ptr<acc_t>(), g.const_data_ptr<acc_t>(), n_gallery, dim,
            query_norm.const_data_ptr<double>(), gallery_norm.const_data_ptr<double>(), metric,
            q_begin, keys, overflow.const_data_ptr<int32_t>(), k,
            out_dist.mutable_data_ptr<acc_t>(), out_idx.mutable_data_ptr<int64_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
    }
  });
  return {out_dist, out_idx};
}

}  // namespace

TORCH_LIBRARY_IMPL(oml_fast, CUDA, m) { m.impl("knn", &knn_cuda); }

}  // namespace oml_fast
