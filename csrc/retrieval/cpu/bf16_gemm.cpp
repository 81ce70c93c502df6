#include "retrieval/cpu/bf16_gemm.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define OML_FAST_BF16_KERNEL 1
#endif

namespace oml_fast {
namespace bf16 {

bool cpu_has_avx512_bf16() {
#ifdef OML_FAST_BF16_KERNEL
  // __builtin_cpu_supports also checks that the OS saves the AVX-512 state (XCR0).
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512bf16");
  return has;
#else
  return false;
#endif
}

uint16_t round_to_bf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  bits += 0x7FFFu + ((bits >> 16) & 1u);  // ties to even (|x| near FLT_MAX rounds to inf)
  return static_cast<uint16_t>(bits >> 16);
}

std::vector<uint16_t> pack_gallery(const float* gallery, int64_t n, int64_t dim) {
  const int64_t dp = padded_dim(dim);
  const int64_t n_padded = (n + kColumnBlock - 1) / kColumnBlock * kColumnBlock;
  std::vector<uint16_t> packed(n_padded * dp, 0);
  at::parallel_for(0, n, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      uint16_t* block = packed.data() + (j / 16) * 16 * dp;
      for (int64_t d = 0; d < dim; ++d)
        block[(d / 2) * 32 + (j % 16) * 2 + (d % 2)] = round_to_bf16(gallery[j * dim + d]);
    }
  });
  return packed;
}

void round_rows(const float* x, int64_t n, int64_t dim, uint16_t* out) {
  const int64_t dp = padded_dim(dim);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t d = 0; d < dim; ++d) out[i * dp + d] = round_to_bf16(x[i * dim + d]);
    if (dp != dim) out[i * dp + dim] = 0;
  }
}

#ifdef OML_FAST_BF16_KERNEL
namespace {

// R query rows x 32 gallery columns: 2R float32 accumulators of 16 lanes; per pair of dimensions,
// two loads of packed gallery pairs, R broadcasts of a query pair, 2R VDPBF16PS.
template <int R>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void micro_kernel(
    const uint16_t* a, int64_t lda, const uint16_t* b, int64_t n_pairs, float* c, int64_t ldc) {
  __m512 acc[R][2];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  const uint16_t* b1 = b + n_pairs * 32;  // the next block of 16 gallery rows
  for (int64_t t = 0; t < n_pairs; ++t) {
    const __m512bh g0 = (__m512bh)_mm512_loadu_si512(b + t * 32);
    const __m512bh g1 = (__m512bh)_mm512_loadu_si512(b1 + t * 32);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      int32_t pair;
      std::memcpy(&pair, a + r * lda + 2 * t, sizeof pair);
      const __m512bh q = (__m512bh)_mm512_set1_epi32(pair);
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], q, g0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], q, g1);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_ps(c + r * ldc, acc[r][0]);
    _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
  }
}

using MicroKernel = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, float*, int64_t);
constexpr int kRows = 12;
constexpr MicroKernel kKernels[kRows + 1] = {
    nullptr,          micro_kernel<1>,  micro_kernel<2>, micro_kernel<3>, micro_kernel<4>,
    micro_kernel<5>,  micro_kernel<6>,  micro_kernel<7>, micro_kernel<8>, micro_kernel<9>,
    micro_kernel<10>, micro_kernel<11>, micro_kernel<12>};

}  // namespace

void gemm_avx512_bf16(const uint16_t* a, int64_t m, int64_t dim, const uint16_t* packed,
                      int64_t first, int64_t n, float* c, int64_t ldc) {
  const int64_t dp = padded_dim(dim), n_pairs = dp / 2;
  for (int64_t j = 0; j < n; j += kColumnBlock) {
    const uint16_t* b = packed + (first + j) * dp;
    for (int64_t r = 0; r < m; r += kRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kRows, m - r));
      kKernels[rows](a + r * dp, dp, b, n_pairs, c + r * ldc + j, ldc);
    }
  }
}
#else
void gemm_avx512_bf16(const uint16_t*, int64_t, int64_t, const uint16_t*, int64_t, int64_t, float*,
                      int64_t) {}
#endif

}  // namespace bf16
}  // namespace oml_fast
