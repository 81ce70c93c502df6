// The elementwise hot loops of the symmetric hard_mining path (mining/cpu/symmetric_mining.h): one
// anchor's view of a segment of GEMM inner products, turned into ranking keys, the anchor's bounds
// and its list of candidates. float32 runs hand-vectorised AVX2 code where the CPU has it (picked
// at run time: the extension is built for any x86-64); float64 and other CPUs run the scalar loops.
//
// Keys and error terms (common/distance_math.h, dist::ranking_coefficients):
//   key_c  = bias_c - 2 dot_c   (euclidean metrics; bias_c = |x_c|^2)   or   -dot_c
//   half_c = e_self_c + |x_anchor| e_cross_c,   |key_c - exact key| <= half_c
// so item c's exact key lies in [key_c - half_c, key_c + half_c] ("lower end", "upper end").
#pragma once

#include <cstdint>

namespace oml_fast::mining {

// Per-item inputs of one hard_mining call, indexed by item (column) number.
template <typename T>
struct ItemTerms {
  const T* bias;    // |x_c|^2 (euclidean metrics) or nullptr (key = -dot)
  const T* e_self;  // error terms, widened to cover the rounding of the scan's own arithmetic
  const T* e_cross;
  const int32_t* labels;  // dense label ids
};

// keys[c] = key of item `first + c` from dots[c], for c < m.
void segment_keys(const float* dots, const ItemTerms<float>& items, int64_t first, int64_t m,
                  float* keys);
void segment_keys(const double* dots, const ItemTerms<double>& items, int64_t first, int64_t m,
                  double* keys);

// segment_keys, and the n = 1 bounds of an anchor of norm `norm` and label `label` over the
// segment: *pos_bound = max(*pos_bound, largest lower end among same-label items), *neg_bound =
// min(*neg_bound, smallest upper end among other-label items). NaN keys are ignored.
void segment_keys_and_bounds(const float* dots, const ItemTerms<float>& items, int64_t first,
                             int64_t m, float norm, int32_t label, float* keys, float* pos_bound,
                             float* neg_bound);
void segment_keys_and_bounds(const double* dots, const ItemTerms<double>& items, int64_t first,
                             int64_t m, double norm, int32_t label, double* keys, double* pos_bound,
                             double* neg_bound);

// Positions c < m (ascending) of the candidates of an anchor: same-label items whose upper end
// reaches `pos_limit` (into pos, returns their count in *n_pos) and other-label items whose lower
// end reaches `neg_limit` (into neg, *n_neg). A NaN limit disables its side; NaN keys are never
// candidates. pos and neg hold m entries.
void segment_candidates(const float* keys, const ItemTerms<float>& items, int64_t first, int64_t m,
                        float norm, int32_t label, float pos_limit, float neg_limit, int32_t* pos,
                        int64_t* n_pos, int32_t* neg, int64_t* n_neg);
void segment_candidates(const double* keys, const ItemTerms<double>& items, int64_t first,
                        int64_t m, double norm, int32_t label, double pos_limit, double neg_limit,
                        int32_t* pos, int64_t* n_pos, int32_t* neg, int64_t* n_neg);

// out[j * rows + i] = in[i * ld + j] for i < rows, j < cols (cache-blocked).
void transpose_block(const float* in, int64_t ld, int64_t rows, int64_t cols, float* out);
void transpose_block(const double* in, int64_t ld, int64_t rows, int64_t cols, double* out);

}  // namespace oml_fast::mining
