// The tiles in which the CPU computes a whole distance matrix: pairwise_distance writes them to its
// output, the fused FNMR pass (retrieval/cpu/fnmr_fused_cpu.cpp) sorts them into histogram slots.
// Both go through TileDistances, so they give the same values bit for bit (BLAS results depend on
// the shape of the call: a float64 test failed by one ulp when the two cut different panels).
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>

#include "common/distance_math.h"
#include "common/metric.h"
#include "common/scaling.h"
#include "distance/cpu/distance_rows.h"
#include "distance/pairwise_distance.h"

namespace oml_fast::cpu {

// Output tiles of `rows x cols`. Each tile's GEMM writes into a contiguous per-thread buffer that
// stays in cache (kTileBytes), where the epilogue converts it and then copies it to the output.
// Measured at N = M = 8192 (2-core AMD EPYC, MKL): a GEMM into such a buffer runs at the speed of
// the one multi-threaded GEMM (0.9-1.0x), where row panels written in place into the output lost
// 15-50%: single-threaded BLAS calls on short panels re-pack the whole gallery each time, and a
// panel of a power-of-two-wide output maps onto a fraction of the cache sets. The shape depends on
// (n, m, element size) only, never on the thread count, so the values do not either. A fused caller
// that must give the same values as pairwise_distance cuts the same tiles into the same kind of
// buffer (the GEMM of a tile is then the same call).
constexpr int64_t kTileBytes = int64_t(2) << 20;
constexpr int64_t kMaxTileCols = 512;
constexpr int64_t kMinTileRows = 16;
constexpr int64_t kMaxTileRows = 1024;

struct DistanceTiles {
  int64_t rows, cols;  // of a full tile; the last row / column of tiles may be smaller
  int64_t n_row_tiles, n_col_tiles;

  int64_t count() const { return n_row_tiles * n_col_tiles; }
  // Tiles are numbered row-major: a worker with a contiguous range of tiles goes through the column
  // blocks of one row block (its queries stay in cache) before the next.
  int64_t row_begin(int64_t tile) const { return (tile / n_col_tiles) * rows; }
  int64_t col_begin(int64_t tile) const { return (tile % n_col_tiles) * cols; }
};

// Tiles of an [n, m] output (none when n or m is 0): column blocks of at most kMaxTileCols, rows to
// fill kTileBytes (kMinTileRows..kMaxTileRows), both evened out so that edge tiles are not slivers.
inline DistanceTiles distance_tiles(int64_t n, int64_t m, int64_t element_size) {
  if (n <= 0 || m <= 0) return {1, 1, 0, 0};
  const auto ceil_div = [](int64_t x, int64_t y) { return (x + y - 1) / y; };
  const int64_t n_col_tiles = ceil_div(m, kMaxTileCols);
  const int64_t cols = ceil_div(m, n_col_tiles);
  const int64_t max_rows = std::clamp(kTileBytes / std::max<int64_t>(1, cols * element_size),
                                      kMinTileRows, kMaxTileRows);
  const int64_t n_row_tiles = ceil_div(n, max_rows);
  const int64_t rows = ceil_div(n, n_row_tiles);
  return {rows, cols, n_row_tiles, ceil_div(m, cols)};
}

// The contiguous [rows, cols] view of a tile buffer (numel >= rows * cols) that a tile's GEMM
// writes.
inline at::Tensor tile_view(const at::Tensor& buffer, int64_t rows, int64_t cols) {
  return buffer.view(-1).narrow(0, 0, rows * cols).view({rows, cols});
}

// The GEMM operands of the distances between x1's and x2's rows: detached and contiguous (the
// GEMMs must not see autograd metadata: worker threads of at::parallel_for do not inherit the
// dispatcher's below-autograd state). The cosine normalises each row; the other metrics scale both
// sides by 2^exponent when their magnitudes are far from 1 (exact), so that 1e-20 or 1e18 float32
// rows neither underflow nor overflow once squared.
struct DistanceOperands {
  at::Tensor a, b;
  int exponent = 0;

  DistanceOperands(Metric metric, const at::Tensor& x1, const at::Tensor& x2)
      : a(x1.detach().contiguous()), b(x2.detach().contiguous()) {
    if (metric == Metric::Cosine) {
      a = unit_rows(a).contiguous();
      b = unit_rows(b).contiguous();
    } else if (a.size(1) > 0) {
      exponent = dist::scale_exponent_of(a, b, a.scalar_type());
      a = dist::scale_by_pow2(a, exponent);
      b = dist::scale_by_pow2(b, exponent);
    }
  }
};

// Distances between the rows of x1 [n, D] and x2 [m, D] (float32 or float64, on the CPU), tile by
// tile, in the input's units.
template <typename scalar_t>
class TileDistances {
 public:
  TileDistances(Metric metric, const at::Tensor& x1, const at::Tensor& x2)
      : metric_(metric),
        operands_(metric, x1, x2),
        n_(x1.size(0)),
        m_(x2.size(0)),
        dim_(x1.size(1)),
        tiles_(distance_tiles(n_, m_, x1.element_size())),
        // |a - b| scales with 2^e, |a - b|^2 and <a, b> with 2^2e.
        back_(metric == Metric::Euclidean ? -operands_.exponent : -2 * operands_.exponent),
        ratio_(static_cast<scalar_t>(
            dist::recompute_ratio<scalar_t>(dim_, dist::gemm_mantissa_bits(x1.scalar_type())))) {
    if (metric == Metric::Euclidean || metric == Metric::SqEuclidean) {
      sq_norm_a_ = squared_norms(operands_.a);
      sq_norm_b_ = squared_norms(operands_.b);
    }
  }

  const DistanceTiles& tiles() const { return tiles_; }

  // The buffer a worker reuses for all its tiles.
  at::Tensor new_buffer() const {
    return at::empty({tiles_.rows * tiles_.cols}, operands_.a.options());
  }

  // Computes tile `tile` in `buffer` (from new_buffer()) and calls on_row(i, j0, row, cols) for
  // each of its rows right after converting it: `row` holds the distances of query i to gallery
  // items j0 .. j0 + cols - 1 and may be changed in place.
  template <typename OnRow>
  void for_each_row(int64_t tile, const at::Tensor& buffer, OnRow&& on_row) const {
    const int64_t i0 = tiles_.row_begin(tile), j0 = tiles_.col_begin(tile);
    const int64_t rows = std::min(tiles_.rows, n_ - i0), cols = std::min(tiles_.cols, m_ - j0);
    at::Tensor dot = tile_view(buffer, rows, cols);
    // Single-threaded BLAS when called inside a parallel region (it spawns no threads of its own).
    const at::Tensor &a = operands_.a, &b = operands_.b;
    at::mm_out(dot, a.narrow(0, i0, rows), b.narrow(0, j0, cols).t());
    scalar_t* dot_ptr = dot.mutable_data_ptr<scalar_t>();
    const scalar_t* a_ptr = a.const_data_ptr<scalar_t>();
    const scalar_t* b_ptr = b.const_data_ptr<scalar_t>() + j0 * dim_;
    const bool norms = sq_norm_a_.defined();
    const scalar_t* na_ptr = norms ? sq_norm_a_.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* nb_ptr = norms ? sq_norm_b_.const_data_ptr<scalar_t>() + j0 : nullptr;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = i0 + r;
      scalar_t* row = dot_ptr + r * cols;
      convert_row(metric_, row, cols, a_ptr + i * dim_, b_ptr, norms ? na_ptr[i] : scalar_t(0),
                  nb_ptr, dim_, ratio_);
      if (back_ != 0) {
        at::Tensor row_tensor = dot.narrow(0, r, 1);
        dist::scale_by_pow2_(row_tensor, back_);
      }
      on_row(i, j0, row, cols);
    }
  }

 private:
  Metric metric_;
  DistanceOperands operands_;
  at::Tensor sq_norm_a_, sq_norm_b_;
  int64_t n_, m_, dim_;
  DistanceTiles tiles_;
  int back_;
  scalar_t ratio_;
};

}  // namespace oml_fast::cpu
