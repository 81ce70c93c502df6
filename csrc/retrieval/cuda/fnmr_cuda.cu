// `_pair_distance_histogram` on CUDA: the same slots as the CPU kernel (fnmr_common.h), computed
// where the distance tile lives.
//
// Pass 1 sorts every pair: positives and inside negatives (when collected) are only counted;
// negatives below / above the window (most of them) are reduced per warp before one atomic each;
// inside negatives update their slot with global atomics (min / max through the order-preserving
// int64 image of a double). The host then reads the two counts, allocates the outputs and pass 2
// writes the positives and the collected values (in an unspecified order, as on the CPU).
// The op slots distances it is given (a tile of pairwise_distance, whose maths is in
// common/distance_math.h): it computes no distance itself, so it has no metric to template on.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>

#include "retrieval/fnmr_common.h"
#include "retrieval/retrieval_checks.h"

namespace oml_fast {
namespace {

constexpr int kThreads = 256;
// The warp reductions of slots_kernel assume whole warps in every block.
static_assert(kThreads % 32 == 0, "kThreads must be a multiple of the warp size");

struct TileKeys {
  const int64_t* query_labels;
  const int64_t* gallery_labels;
  const int64_t* query_ids;  // nullptr when not given
  const int64_t* gallery_ids;
  const int64_t* query_groups;
  const int64_t* gallery_groups;
};

__device__ __forceinline__ int kind_of(const TileKeys& keys, int64_t i, int64_t j) {
  const bool has_ids = keys.query_ids != nullptr, has_groups = keys.query_groups != nullptr;
  return fnmr::pair_kind(keys.query_labels[i], keys.gallery_labels[j], has_ids,
                         has_ids ? keys.query_ids[i] : 0, has_ids ? keys.gallery_ids[j] : 0,
                         has_groups, has_groups ? keys.query_groups[i] : 0,
                         has_groups ? keys.gallery_groups[j] : 0);
}

struct Outside {
  unsigned long long count;
  long long min_key, max_key;
};

__device__ __forceinline__ void warp_reduce(Outside& o) {
  for (int offset = 16; offset > 0; offset /= 2) {
    o.count += __shfl_down_sync(0xffffffffu, o.count, offset);
    o.min_key = min(o.min_key, __shfl_down_sync(0xffffffffu, o.min_key, offset));
    o.max_key = max(o.max_key, __shfl_down_sync(0xffffffffu, o.max_key, offset));
  }
}

__device__ __forceinline__ void add_outside(Outside& o, long long key) {
  ++o.count;
  o.min_key = min(o.min_key, key);
  o.max_key = max(o.max_key, key);
}

__device__ __forceinline__ void flush(const Outside& o, int64_t slot, unsigned long long* counts,
                                      long long* min_keys, long long* max_keys) {
  if (o.count == 0) return;
  atomicAdd(counts + slot, o.count);
  atomicMin(min_keys + slot, o.min_key);
  atomicMax(max_keys + slot, o.max_key);
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    slots_kernel(const scalar_t* __restrict__ dist, int64_t rows, int64_t n_gallery, TileKeys keys,
                 double lower, double upper, int64_t n_bins, bool collect, bool with_positives,
                 unsigned long long* counts, long long* min_keys, long long* max_keys,
                 unsigned long long* sizes /* [n_collected, n_positive, saw_nan] */) {
  // An empty slot: min +inf, max -inf (as on the CPU).
  const long long min_init = fnmr::ordered_key(std::numeric_limits<double>::infinity());
  const long long max_init = fnmr::ordered_key(-std::numeric_limits<double>::infinity());
  Outside below{0, min_init, max_init}, above{0, min_init, max_init};
  unsigned long long n_collected = 0, n_positive = 0, saw_nan = 0;
  const int64_t total = rows * n_gallery;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; index < total;
       index += stride) {
    const int64_t i = index / n_gallery, j = index - i * n_gallery;
    const int kind = kind_of(keys, i, j);
    if (kind == fnmr::kPositive) {
      n_positive += with_positives;
      continue;
    }
    if (kind != fnmr::kNegative) continue;
    const double x = static_cast<double>(dist[index]);
    const int64_t slot = fnmr::slot_of(x, lower, upper, n_bins);
    if (slot < 0) {
      saw_nan = 1;
    } else if (slot == 0) {
      add_outside(below, fnmr::ordered_key(x));
    } else if (slot == n_bins + 1) {
      add_outside(above, fnmr::ordered_key(x));
    } else {
      const long long key = fnmr::ordered_key(x);
      atomicAdd(counts + slot, 1ull);
      atomicMin(min_keys + slot, key);
      atomicMax(max_keys + slot, key);
      n_collected += collect;
    }
  }
  warp_reduce(below);
  warp_reduce(above);
  for (int offset = 16; offset > 0; offset /= 2) {
    n_collected += __shfl_down_sync(0xffffffffu, n_collected, offset);
    n_positive += __shfl_down_sync(0xffffffffu, n_positive, offset);
    saw_nan |= __shfl_down_sync(0xffffffffu, saw_nan, offset);
  }
  if (threadIdx.x % 32 == 0) {
    flush(below, 0, counts, min_keys, max_keys);
    flush(above, n_bins + 1, counts, min_keys, max_keys);
    if (n_collected) atomicAdd(sizes, n_collected);
    if (n_positive) atomicAdd(sizes + 1, n_positive);
    if (saw_nan) atomicOr(sizes + 2, 1ull);
  }
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    gather_kernel(const scalar_t* __restrict__ dist, int64_t rows, int64_t n_gallery, TileKeys keys,
                  double lower, double upper, bool collect, bool with_positives,
                  scalar_t* collected, scalar_t* positives,
                  unsigned long long* cursors /* [collected, positives] */) {
  const int64_t total = rows * n_gallery;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; index < total;
       index += stride) {
    const int64_t i = index / n_gallery, j = index - i * n_gallery;
    const int kind = kind_of(keys, i, j);
    const scalar_t v = dist[index];
    if (kind == fnmr::kPositive && with_positives) {
      positives[atomicAdd(cursors + 1, 1ull)] = v;
    } else if (kind == fnmr::kNegative && collect) {
      const double x = static_cast<double>(v);
      if (x >= lower && x <= upper) collected[atomicAdd(cursors, 1ull)] = v;
    }
  }
}

__global__ void __launch_bounds__(kThreads)
    decode_kernel(const long long* keys, double* values, int64_t n) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index < n) values[index] = fnmr::from_ordered_key(keys[index]);
}

int grid_for(int64_t total) {
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(blocks, 8192)));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> pair_distance_histogram_cuda(
    const at::Tensor& dist, const at::Tensor& query_labels, const at::Tensor& gallery_labels,
    const std::optional<at::Tensor>& query_ids, const std::optional<at::Tensor>& gallery_ids,
    const std::optional<at::Tensor>& query_groups, const std::optional<at::Tensor>& gallery_groups,
    double lower, double upper, int64_t n_bins, bool collect, bool with_positives) {
  const auto [has_ids, has_groups] = retrieval::check_pair_distance_histogram_inputs(
      dist, query_labels, gallery_labels, query_ids, gallery_ids, query_groups, gallery_groups,
      lower, upper, n_bins);
  const c10::cuda::CUDAGuard device_guard(dist.device());
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const int64_t rows = dist.size(0), n_gallery = dist.size(1), n_slots = n_bins + 2;
  const at::Tensor d = dist.contiguous();
  const at::Tensor ql = query_labels.contiguous(), gl = gallery_labels.contiguous();
  const at::Tensor qid = has_ids ? query_ids->contiguous() : at::Tensor();
  const at::Tensor gid = has_ids ? gallery_ids->contiguous() : at::Tensor();
  const at::Tensor qgr = has_groups ? query_groups->contiguous() : at::Tensor();
  const at::Tensor ggr = has_groups ? gallery_groups->contiguous() : at::Tensor();
  const TileKeys keys{ql.const_data_ptr<int64_t>(),
                      gl.const_data_ptr<int64_t>(),
                      has_ids ? qid.const_data_ptr<int64_t>() : nullptr,
                      has_ids ? gid.const_data_ptr<int64_t>() : nullptr,
                      has_groups ? qgr.const_data_ptr<int64_t>() : nullptr,
                      has_groups ? ggr.const_data_ptr<int64_t>() : nullptr};

  const auto long_options = d.options().dtype(at::kLong);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  at::Tensor counts = at::zeros({n_slots}, long_options);
  at::Tensor min_keys = at::full({n_slots}, fnmr::ordered_key(kInf), long_options);
  at::Tensor max_keys = at::full({n_slots}, fnmr::ordered_key(-kInf), long_options);
  at::Tensor sizes = at::zeros({3}, long_options);
  at::Tensor collected, positives;
  const int64_t total = rows * n_gallery;

  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, d.scalar_type(), "pair_distance_histogram_cuda", [&] {
        const scalar_t* d_p = d.const_data_ptr<scalar_t>();
        auto* sizes_p = reinterpret_cast<unsigned long long*>(sizes.mutable_data_ptr<int64_t>());
        if (total > 0) {
          slots_kernel<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
              d_p, rows, n_gallery, keys, lower, upper, n_bins, collect, with_positives,
              reinterpret_cast<unsigned long long*>(counts.mutable_data_ptr<int64_t>()),
              reinterpret_cast<long long*>(min_keys.mutable_data_ptr<int64_t>()),
              reinterpret_cast<long long*>(max_keys.mutable_data_ptr<int64_t>()), sizes_p);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        }
        // The one host synchronisation of the op, and an unavoidable one: the sizes of the outputs
        // depend on the data (and a NaN distance must raise a ValueError).
        const at::Tensor host_sizes = sizes.cpu();
        const int64_t* h = host_sizes.const_data_ptr<int64_t>();
        TORCH_CHECK_VALUE(h[2] == 0, "`dist` contains NaN distances between negative pairs");
        collected = at::empty({h[0]}, d.options());
        positives = at::empty({h[1]}, d.options());
        if (h[0] + h[1] > 0) {
          sizes.zero_();
          gather_kernel<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
              d_p, rows, n_gallery, keys, lower, upper, collect, with_positives,
              collected.mutable_data_ptr<scalar_t>(), positives.mutable_data_ptr<scalar_t>(),
              sizes_p);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        }
      });
  at::Tensor mins = at::empty({n_slots}, d.options().dtype(at::kDouble));
  at::Tensor maxs = at::empty({n_slots}, d.options().dtype(at::kDouble));
  const int blocks = static_cast<int>((n_slots + kThreads - 1) / kThreads);
  decode_kernel<<<blocks, kThreads, 0, stream>>>(
      reinterpret_cast<const long long*>(min_keys.const_data_ptr<int64_t>()),
      mins.mutable_data_ptr<double>(), n_slots);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  decode_kernel<<<blocks, kThreads, 0, stream>>>(
      reinterpret_cast<const long long*>(max_keys.const_data_ptr<int64_t>()),
      maxs.mutable_data_ptr<double>(), n_slots);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {counts, mins, maxs, collected, positives};
}

}  // namespace

TORCH_LIBRARY_IMPL(oml_fast, CUDA, m) {
  m.impl("_pair_distance_histogram", &pair_distance_histogram_cuda);
}

}  // namespace oml_fast
