// hard_mining on CUDA, exact by construction (the rule of the CPU kernel, hard_mining_cpu.cpp; the
// maths is in common/distance_math.h; a host imitation of this selection runs in the CPU test
// suite: tests/ops/test_mining_cuda_selection.py).
//
// Per tile of anchors, cuBLAS (at::mm_out) writes the inner products into one reusable [rows, B]
// buffer; `select_rows_kernel` (one block per anchor) then works in three passes over the row:
//  1. every positive (same label, not the anchor) gets the interval [v - E, v + E] of its ranking
//     value v = bias + scale * <x_a, x_j> (the GEMM key; E from dist::ranking_coefficients, with
//     the GEMM precision in effect: TF32 / bfloat16 when torch's float32 matmul precision allows
//     them), likewise every negative; the n-th largest lower end among positives (n-th smallest
//     upper end among negatives) is found by n rounds of a lexicographic block minimum;
//  2. every item whose interval reaches that limit is a candidate -- n items are provably at least
//     as hard as any other -- and gets its exact key (dist::hardness_key: float64 from the rows,
//     bitwise the CPU kernel's key) in a [rows, B] float64 workspace;
//  3. n rounds of a lexicographic minimum of (exact key, index) over the candidates choose the
//     hardest items, hardest first, the smaller index first among equal keys, -1 padding.
// What is exact: the chosen items and their order are those of the exact keys (squared distance
// from the differences of the prepared rows, or -<x, y> of unit rows for cosine / of the rows for
// dot), whatever the GEMM's rounding; the CPU kernel chooses the same items (for the cosine metric
// up to the rounding of the row normalisation, which runs on each device). Each round costs
// O(B / threads) per row: ideal for the usual n = 1..8. The B x B matrix is never allocated and no
// value is read back to the host except by the finiteness check of the input.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdint>
#include <limits>

#include "common/cuda/scaling_cuda.cuh"
#include "common/distance_math.h"
#include "mining/hard_mining_common.h"

namespace oml_fast {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kNoId = std::numeric_limits<int64_t>::max();
// The tree reduction assumes one shared slot per thread and a power-of-two block.
static_assert((kThreads & (kThreads - 1)) == 0, "kThreads must be a power of two");
static_assert(kThreads * (sizeof(double) + sizeof(int64_t)) <= 48 * 1024, "shared memory");

// Per item of the batch (distance_math.h): value_j = bias[j] + scale[j] <x_a, x_j>, and
// |value_j - exact| <= e_self[j] + |x_a| e_cross[j].
struct MiningItems {
  const double* bias;
  const double* scale;
  const double* e_self;
  const double* e_cross;
  const double* norms;
};

__global__ void __launch_bounds__(kThreads)
    prepare_items_kernel(const double* __restrict__ norms, int64_t n, Metric metric, double alpha,
                         double floor, double* bias, double* scale, double* e_self,
                         double* e_cross) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  const dist::Ranking r = dist::ranking_coefficients(metric, norms[j], alpha, floor);
  bias[j] = r.bias;
  scale[j] = r.scale;
  e_self[j] = r.e_self;
  e_cross[j] = r.e_cross;
}

__device__ __forceinline__ bool lex_less(double ka, int64_t ia, double kb, int64_t ib) {
  return ka < kb || (ka == kb && ia < ib);
}

// Block-wide lexicographic minimum of (key, id); every thread gets the result.
__device__ void block_lex_min(double& key, int64_t& id, double* s_keys, int64_t* s_ids) {
  s_keys[threadIdx.x] = key;
  s_ids[threadIdx.x] = id;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) {
      const int other = threadIdx.x + stride;
      if (lex_less(s_keys[other], s_ids[other], s_keys[threadIdx.x], s_ids[threadIdx.x])) {
        s_keys[threadIdx.x] = s_keys[other];
        s_ids[threadIdx.x] = s_ids[other];
      }
    }
    __syncthreads();
  }
  key = s_keys[0];
  id = s_ids[0];
  __syncthreads();  // everyone has read the winner before the buffer is reused
}

// The smallest (key, id) of the items for which key_of(j, key) holds, strictly after (prev_key,
// prev_id): one round of the selection. id == kNoId when there is none.
template <typename KeyOf>
__device__ void next_lex_min(int64_t batch, KeyOf key_of, double prev_key, int64_t prev_id,
                             double& key, int64_t& id, double* s_keys, int64_t* s_ids) {
  key = std::numeric_limits<double>::infinity();
  id = kNoId;
  for (int64_t j = threadIdx.x; j < batch; j += kThreads) {
    double k;
    if (!key_of(j, k)) continue;
    if (lex_less(prev_key, prev_id, k, j) && lex_less(k, j, key, id)) {
      key = k;
      id = j;
    }
  }
  block_lex_min(key, id, s_keys, s_ids);
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    select_rows_kernel(const scalar_t* __restrict__ products, const scalar_t* __restrict__ x,
                       int64_t dim, MiningItems items, const int64_t* __restrict__ labels,
                       const bool* __restrict__ anchor_mask, int64_t batch, int64_t row0,
                       bool euclidean, int64_t n_positive, int64_t n_negative,
                       double* __restrict__ exact_keys, int64_t* __restrict__ positives,
                       int64_t* __restrict__ negatives) {
  __shared__ double s_keys[kThreads];
  __shared__ int64_t s_ids[kThreads];
  const int64_t r = blockIdx.x;
  const int64_t anchor = row0 + r;
  int64_t* out_pos = positives + anchor * n_positive;
  int64_t* out_neg = negatives + anchor * n_negative;
  if (anchor_mask != nullptr && !anchor_mask[anchor]) {
    for (int64_t k = threadIdx.x; k < n_positive; k += kThreads) out_pos[k] = -1;
    for (int64_t k = threadIdx.x; k < n_negative; k += kThreads) out_neg[k] = -1;
    return;
  }
  const scalar_t* row = products + r * batch;
  double* row_exact = exact_keys + r * batch;
  const int64_t anchor_label = labels[anchor];
  const double norm_anchor = items.norms[anchor];
  // +1 positive, -1 negative, 0 the anchor itself.
  auto side_of = [&](int64_t j) -> int {
    return labels[j] == anchor_label ? (j == anchor ? 0 : 1) : -1;
  };
  auto interval = [&](int64_t j, double& value, double& half) {
    value = items.bias[j] + items.scale[j] * static_cast<double>(row[j]);
    half = items.e_self[j] + norm_anchor * items.e_cross[j];
  };

  // Pass 1: per side, the n-th smallest "bound" in min-form (positives: -(v - E), the negated lower
  // end; negatives: v + E, the upper end); +inf when the side has fewer than n items.
  double limit[2] = {std::numeric_limits<double>::infinity(),
                     std::numeric_limits<double>::infinity()};
  for (int s = 0; s < 2; ++s) {
    const int want = s == 0 ? 1 : -1;
    const int64_t n_side = s == 0 ? n_positive : n_negative;
    const int64_t n = n_side < batch ? n_side : batch;
    auto bound_of = [&](int64_t j, double& key) {
      if (side_of(j) != want) return false;
      double value, half;
      interval(j, value, half);
      if (value != value) return false;  // NaN keys are never candidates
      key = want > 0 ? -(value - half) : value + half;
      return true;
    };
    double prev_key = -std::numeric_limits<double>::infinity(), key;
    int64_t prev_id = -1, id;
    for (int64_t round = 0; round < n; ++round) {
      next_lex_min(batch, bound_of, prev_key, prev_id, key, id, s_keys, s_ids);
      if (id == kNoId) break;  // fewer than n items: every one is a candidate
      prev_key = key;
      prev_id = id;
      if (round == n - 1) limit[s] = key;
    }
  }

  // Pass 2: exact keys (min-form: positives negated) of the items whose interval reaches the limit;
  // NaN for every other item.
  for (int64_t j = threadIdx.x; j < batch; j += kThreads) {
    const int side = side_of(j);
    double key = std::numeric_limits<double>::quiet_NaN();
    if (side != 0 && (side > 0 ? n_positive : n_negative) > 0) {
      double value, half;
      interval(j, value, half);
      const bool in_band =
          value == value && (side > 0 ? -(value + half) <= limit[0] : value - half <= limit[1]);
      if (in_band) {
        const double exact = dist::hardness_key(x + anchor * dim, x + j * dim, dim, euclidean);
        key = side > 0 ? -exact : exact;
      }
    }
    row_exact[j] = key;
  }
  __syncthreads();  // the block's global writes are visible to the block from here on

  // Pass 3: the n hardest candidates per side, by (exact key, index).
  for (int s = 0; s < 2; ++s) {
    const int want = s == 0 ? 1 : -1;
    const int64_t n = s == 0 ? n_positive : n_negative;
    int64_t* out = s == 0 ? out_pos : out_neg;
    auto exact_of = [&](int64_t j, double& key) {
      key = row_exact[j];
      return key == key && side_of(j) == want;
    };
    double prev_key = -std::numeric_limits<double>::infinity(), key;
    int64_t prev_id = -1, id;
    bool exhausted = false;
    for (int64_t round = 0; round < n; ++round) {
      if (!exhausted) {
        next_lex_min(batch, exact_of, prev_key, prev_id, key, id, s_keys, s_ids);
        exhausted = id == kNoId;
        prev_key = key;
        prev_id = id;
      }
      if (threadIdx.x == 0) out[round] = exhausted ? -1 : id;
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
  // Distances to NaN / inf rows cannot be ranked: the op would silently never select them. Outside
  // a CUDA graph capture this check reads one flag back to the host (the one synchronisation of the
  // op: a ValueError naming the argument needs the value there); inside one it is a device-side
  // assert (common/checks.cpp).
  check_finite(embeddings, "embeddings", "hard_mining");
  const c10::cuda::CUDAGuard guard(embeddings.device());
  const int64_t batch = embeddings.size(0), dim = embeddings.size(1);
  auto index_options = labels.options().dtype(at::kLong);
  at::Tensor positives = at::empty({batch, n_positive}, index_options);
  at::Tensor negatives = at::empty({batch, n_negative}, index_options);
  if (batch == 0 || (n_positive == 0 && n_negative == 0)) return {positives, negatives};

  // The CPU kernel's preparation (hard_mining_common.h), with the magnitude scaling computed on the
  // device: unit rows for the cosine, else data far from 1 scaled by a power of two (exact).
  at::Tensor x;
  if (parsed == Metric::Cosine) {
    x = prepare_mining_embeddings(embeddings, parsed);  // row-wise ATen ops only
  } else {
    x = embeddings.scalar_type() == at::kDouble ? embeddings : embeddings.to(at::kFloat);
    x = dist::scaled_by_pow2(x, dist::scale_exponent_tensor(x, x, x.scalar_type()), 1);
  }
  const bool euclidean = parsed == Metric::Euclidean || parsed == Metric::SqEuclidean;
  at::Tensor labels64 = labels.contiguous();
  at::Tensor mask = anchor_mask.has_value() ? anchor_mask->contiguous() : at::Tensor();
  const auto stream = c10::cuda::getCurrentCUDAStream();

  // Ranking coefficients and error terms per item; cosine rows are unit vectors here, so the dot
  // metric's terms apply (as on the CPU).
  const at::Tensor norms = dist::row_norms_cuda(x);
  const auto double_options = norms.options();
  at::Tensor bias = at::empty({batch}, double_options), scale = at::empty_like(bias),
             e_self = at::empty_like(bias), e_cross = at::empty_like(bias);
  const double alpha =
      dist::error_factor(dim, dist::gemm_unit_roundoff(dist::gemm_mantissa_bits(x.scalar_type())));
  double floor = 0;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "hard_mining_cuda_floor", [&] {
    floor = dist::subnormal_floor<scalar_t>(dim) +
            static_cast<double>(std::numeric_limits<scalar_t>::min());
  });
  prepare_items_kernel<<<(batch + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
      norms.const_data_ptr<double>(), batch, euclidean ? parsed : Metric::Dot, alpha, floor,
      bias.mutable_data_ptr<double>(), scale.mutable_data_ptr<double>(),
      e_self.mutable_data_ptr<double>(), e_cross.mutable_data_ptr<double>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const MiningItems items{bias.const_data_ptr<double>(), scale.const_data_ptr<double>(),
                          e_self.const_data_ptr<double>(), e_cross.const_data_ptr<double>(),
                          norms.const_data_ptr<double>()};

  // A tile of at most ~16M keys (64 MiB of fp32 products + 128 MiB of float64 exact keys) bounds
  // the memory for any B; B = 16k is 1024 rows.
  const int64_t tile_rows =
      std::max<int64_t>(1, std::min<int64_t>(batch, (int64_t{1} << 24) / batch));
  at::Tensor products = at::empty({tile_rows, batch}, x.options());
  at::Tensor exact_keys = at::empty({tile_rows, batch}, double_options);
  const at::Tensor x_t = x.t();

  for (int64_t row0 = 0; row0 < batch; row0 += tile_rows) {
    const int64_t rows = std::min(tile_rows, batch - row0);
    at::Tensor out = products.narrow(0, 0, rows);
    at::mm_out(out, x.narrow(0, row0, rows), x_t);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "hard_mining_cuda", [&] {
      select_rows_kernel<scalar_t><<<static_cast<unsigned int>(rows), kThreads, 0, stream>>>(
          out.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), dim, items,
          labels64.const_data_ptr<int64_t>(),
          mask.defined() ? mask.const_data_ptr<bool>() : nullptr, batch, row0, euclidean,
          n_positive, n_negative, exact_keys.mutable_data_ptr<double>(),
          positives.mutable_data_ptr<int64_t>(), negatives.mutable_data_ptr<int64_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  return {positives, negatives};
}

TORCH_LIBRARY_IMPL(oml_fast, CUDA, m) { m.impl("hard_mining", &hard_mining_cuda); }

}  // namespace oml_fast
