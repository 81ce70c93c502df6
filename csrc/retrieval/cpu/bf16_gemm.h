// A bfloat16 screening GEMM for the CPU kNN: inputs rounded to bfloat16 (round to nearest even),
// products accumulated in float32, float32 output. Its error bound is dist::bf16_error_factor
// (common/distance_math.h). On CPUs with AVX512-BF16 (detected at run time) a hand-written
// VDPBF16PS micro-kernel computes it; elsewhere it is emulated by a float32 GEMM of
// bfloat16-rounded copies (same bound; only useful to test the algorithm, never faster).
#pragma once

#include <cstdint>
#include <vector>

namespace oml_fast {
namespace bf16 {

// Whether this CPU (and its OS) runs AVX512-BF16 instructions.
bool cpu_has_avx512_bf16();

// Columns per micro-kernel step: the packed gallery and the output tiles are padded to this.
constexpr int64_t kColumnBlock = 32;

// Dimension padded to an even number (VDPBF16PS multiplies pairs).
inline int64_t padded_dim(int64_t dim) { return dim + (dim & 1); }

// float32 -> bfloat16 bits, round to nearest even (finite inputs).
uint16_t round_to_bf16(float x);

// The gallery rows [n, dim] as bfloat16 in the micro-kernel's layout: blocks of 16 rows, each
// [padded_dim / 2][16][2] (pairs of dimensions of 16 rows side by side), zero-padded to a multiple
// of kColumnBlock rows and to padded_dim.
std::vector<uint16_t> pack_gallery(const float* gallery, int64_t n, int64_t dim);

// Rows [n, dim] as bfloat16, row-major with row stride padded_dim (zero-padded).
void round_rows(const float* x, int64_t n, int64_t dim, uint16_t* out);

// c[r * ldc + j] = <a_r, g_{first + j}> for r < m, j < round_up(n, kColumnBlock), with a from
// round_rows and g from pack_gallery; `first` is a multiple of kColumnBlock, ldc of 16. Needs
// cpu_has_avx512_bf16().
void gemm_avx512_bf16(const uint16_t* a, int64_t m, int64_t dim, const uint16_t* packed,
                      int64_t first, int64_t n, float* c, int64_t ldc);

}  // namespace bf16
}  // namespace oml_fast
