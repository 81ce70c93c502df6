// hard_mining on CUDA: tiles of anchors, inner products by cuBLAS (at::mm_out) into one reusable
// [tile_rows, B] buffer, then one thread block per anchor row selects the n hardest positives and
// negatives. Selection is iterative: round r takes the lexicographic minimum of (hardness, index)
// strictly after the pair chosen in round r-1. That is exact, keeps "smaller index first" among
// equal keys without any sort, and costs O(n * B / threads) per row, which is ideal for the usual
// n = 1..8. The B x B matrix is never allocated.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cstdint>
#include <limits>

#include "mining/hard_mining_common.h"

namespace oml_fast {
namespace {

constexpr int kThreads = 256;

// (key, index) pairs with "smaller is harder"; positives use the negated key so both lists are
// minima.
template <typename key_t>
__device__ __forceinline__ bool lex_less(key_t ka, int64_t ia, key_t kb, int64_t ib) {
  return ka < kb || (ka == kb && ia < ib);
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    select_rows_kernel(const scalar_t* __restrict__ products, const scalar_t* __restrict__ sq_norms,
                       const int64_t* __restrict__ labels, const bool* __restrict__ anchor_mask,
                       int64_t batch, int64_t row0, int64_t n_positive, int64_t n_negative,
                       int64_t* __restrict__ positives, int64_t* __restrict__ negatives) {
  const int64_t r = blockIdx.x;
  const int64_t anchor = row0 + r;
  int64_t* out_pos = positives + anchor * n_positive;
  int64_t* out_neg = negatives + anchor * n_negative;
  if (anchor_mask != nullptr && !anchor_mask[anchor]) {
    for (int64_t k = threadIdx.x; k < n_positive; k += blockDim.x) out_pos[k] = -1;
    for (int64_t k = threadIdx.x; k < n_negative; k += blockDim.x) out_neg[k] = -1;
    return;
  }
  const scalar_t* row = products + r * batch;
  const int64_t anchor_label = labels[anchor];

  // The tree reduction below assumes one shared slot per thread and a power-of-two block.
  static_assert((kThreads & (kThreads - 1)) == 0, "kThreads must be a power of two");
  static_assert(kThreads * (sizeof(scalar_t) + sizeof(int64_t)) <= 48 * 1024, "shared memory");
  __shared__ scalar_t shared_keys[kThreads];
  __shared__ int64_t shared_ids[kThreads];

  for (int side = 0; side < 2; ++side) {
    const bool want_positive = side == 0;
    const int64_t n = want_positive ? n_positive : n_negative;
    int64_t* out = want_positive ? out_pos : out_neg;
    scalar_t prev_key = -INFINITY;
    int64_t prev_id = -1;
    bool exhausted = false;
    for (int64_t round = 0; round < n; ++round) {
      if (exhausted) {
        if (threadIdx.x == 0) out[round] = -1;
        continue;
      }
      scalar_t best_key = INFINITY;
      int64_t best_id = std::numeric_limits<int64_t>::max();
      for (int64_t j = threadIdx.x; j < batch; j += blockDim.x) {
        const bool same = labels[j] == anchor_label;
        if (want_positive ? (!same || j == anchor) : same) continue;
        // Keys are monotone in the distance: |y|^2 - 2<x,y> (euclidean family) or -<x,y>.
        const scalar_t product = row[j];
        scalar_t key = sq_norms != nullptr ? sq_norms[j] - scalar_t(2) * product : -product;
        if (want_positive) key = -key;  // farthest first
        if (key != key) continue;       // NaN distances are never selected
        if (lex_less(prev_key, prev_id, key, j) && lex_less(key, j, best_key, best_id)) {
          best_key = key;
          best_id = j;
        }
      }
      shared_keys[threadIdx.x] = best_key;
      shared_ids[threadIdx.x] = best_id;
      __syncthreads();
      for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (threadIdx.x < stride) {
          const int other = threadIdx.x + stride;
          if (lex_less(shared_keys[other], shared_ids[other], shared_keys[threadIdx.x],
                       shared_ids[threadIdx.x])) {
            shared_keys[threadIdx.x] = shared_keys[other];
            shared_ids[threadIdx.x] = shared_ids[other];
          }
        }
        __syncthreads();
      }
      prev_key = shared_keys[0];
      prev_id = shared_ids[0];
      __syncthreads();  // everyone has read the winner before the buffer is reused
      exhausted = prev_id == std::numeric_limits<int64_t>::max();
      if (threadIdx.x == 0) out[round] = exhausted ? -1 : prev_id;
    }
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> hard_mining_cuda(const at::Tensor& embeddings,
                                                    const at::Tensor& labels, int64_t n_positive,
                                                    int64_t n_negative, c10::string_view metric,
                                                    const std::optional<at::Tensor>& anchor_mask) {
  const Metric parsed =
      check_hard_mining_inputs(embeddings, labels, n_positive, n_negative, metric, anchor_mask);
  // Distances to NaN / inf rows cannot be ranked: the op would silently never select them.
  check_finite(embeddings, "embeddings", "hard_mining");
  const c10::cuda::CUDAGuard guard(embeddings.device());
  const int64_t batch = embeddings.size(0);
  auto index_options = labels.options().dtype(at::kLong);
  at::Tensor positives = at::empty({batch, n_positive}, index_options);
  at::Tensor negatives = at::empty({batch, n_negative}, index_options);
  if (batch == 0 || (n_positive == 0 && n_negative == 0)) return {positives, negatives};

  at::Tensor x = prepare_mining_embeddings(embeddings, parsed);
  at::Tensor labels64 = labels.contiguous();
  at::Tensor mask = anchor_mask.has_value() ? anchor_mask->contiguous() : at::Tensor();
  at::Tensor sq_norms;
  if (parsed == Metric::Euclidean || parsed == Metric::SqEuclidean)
    sq_norms = (x * x).sum(1).contiguous();

  // A tile of at most ~32M keys (128 MiB fp32) bounds the memory for any B; B = 16k is 2048 rows.
  const int64_t tile_rows =
      std::max<int64_t>(1, std::min<int64_t>(batch, (int64_t{1} << 25) / batch));
  at::Tensor products = at::empty({tile_rows, batch}, x.options());
  const at::Tensor x_t = x.t();
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();

  for (int64_t row0 = 0; row0 < batch; row0 += tile_rows) {
    const int64_t rows = std::min(tile_rows, batch - row0);
    at::Tensor out = products.narrow(0, 0, rows);
    at::mm_out(out, x.narrow(0, row0, rows), x_t);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "hard_mining_cuda", [&] {
      select_rows_kernel<scalar_t><<<static_cast<unsigned int>(rows), kThreads, 0, stream>>>(
          out.data_ptr<scalar_t>(), sq_norms.defined() ? sq_norms.data_ptr<scalar_t>() : nullptr,
          labels64.data_ptr<int64_t>(), mask.defined() ? mask.data_ptr<bool>() : nullptr, batch,
          row0, n_positive, n_negative, positives.data_ptr<int64_t>(),
          negatives.data_ptr<int64_t>());
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {positives, negatives};
}

TORCH_LIBRARY_IMPL(oml_fast, CUDA, m) { m.impl("hard_mining", &hard_mining_cuda); }

}  // namespace oml_fast
