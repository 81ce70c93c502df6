// Streaming exact k-nearest-neighbour search on the CPU.
//
// For a tile of queries and a tile of gallery rows, one GEMM gives the inner products; an epilogue
// turns them into a per-query "ranking value" (a monotone function of the distance, cheaper than
// the distance itself) and compares them, 8 at a time, against the query's current threshold. The
// few that pass the threshold are checked against the exclusions and appended to the query's
// candidate buffer. Only the outputs, the candidate buffers and one GEMM tile per thread are ever
// allocated.
//
// Exactness. The GEMM ranking value has a rounding error that is bounded per query (`band` below),
// so the buffer keeps every candidate whose ranking value is within 2 * band of the current k-th
// best: that set provably contains the exact top k. At the end (or when near-ties overflow the
// buffer) the distances of the kept candidates are recomputed directly in float64 and sorted by
// (distance, gallery index), which gives exact values, exact ties and the smaller-index tie rule.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define OML_FAST_X86 1
#endif

#include "common/simd.h"
#include "retrieval/retrieval_checks.h"

namespace oml_fast {
namespace {

// Tile sizes: the [kQueryTile, kGalleryTile] float tile (1 MiB) stays in L2 (or close by) between
// the GEMM that writes it and the epilogue that reads it; MKL repacks the gallery tile once per
// GEMM call, so taller query tiles make that cost smaller.
constexpr int64_t kQueryTile = 256;
constexpr int64_t kGalleryTile = 1024;

// Exclusion keys for one query: a gallery item with an equal id or an equal group is skipped.
struct Exclusions {
  const int64_t* query_ids = nullptr;
  const int64_t* gallery_ids = nullptr;
  const int64_t* query_groups = nullptr;
  const int64_t* gallery_groups = nullptr;

  inline bool excluded(int64_t q, int64_t g) const {
    return (query_ids && query_ids[q] == gallery_ids[g]) ||
           (query_groups && query_groups[q] == gallery_groups[g]);
  }
};

// Writes the indices j (offset by `base`) and values v = bias[j] + scale[j] * s[j] of every j with
// v <= threshold. Returns how many were written.
template <typename T>
int64_t scan_row_scalar(const T* s, const T* bias, const T* scale, int64_t n, T threshold,
                        int64_t base, int64_t* out_index, T* out_value) {
  int64_t count = 0;
  for (int64_t j = 0; j < n; ++j) {
    const T v = bias[j] + scale[j] * s[j];
    if (v <= threshold) {
      out_index[count] = base + j;
      out_value[count] = v;
      ++count;
    }
  }
  return count;
}

#ifdef OML_FAST_X86
// AVX2 version of scan_row_scalar for float: 32 values per step, one branch per step in the common
// case where nothing passes (after the first few tiles, almost always).
__attribute__((target("avx2,fma"))) int64_t scan_row_avx2(const float* s, const float* bias,
                                                          const float* scale, int64_t n,
                                                          float threshold, int64_t base,
                                                          int64_t* out_index, float* out_value) {
  const __m256 thr = _mm256_set1_ps(threshold);
  int64_t count = 0, j = 0;
  alignas(32) float values[32];
  for (; j + 32 <= n; j += 32) {
    __m256 v[4];
    int masks[4];
    for (int u = 0; u < 4; ++u) {
      v[u] = _mm256_fmadd_ps(_mm256_loadu_ps(s + j + 8 * u), _mm256_loadu_ps(scale + j + 8 * u),
                             _mm256_loadu_ps(bias + j + 8 * u));
      masks[u] = _mm256_movemask_ps(_mm256_cmp_ps(v[u], thr, _CMP_LE_OQ));
    }
    if ((masks[0] | masks[1] | masks[2] | masks[3]) == 0) continue;
    for (int u = 0; u < 4; ++u) {
      if (!masks[u]) continue;
      _mm256_store_ps(values + 8 * u, v[u]);
      for (unsigned m = static_cast<unsigned>(masks[u]); m; m &= m - 1) {
        const int t = __builtin_ctz(m);
        out_index[count] = base + j + 8 * u + t;
        out_value[count] = values[8 * u + t];
        ++count;
      }
    }
  }
  return count + scan_row_scalar<float>(s + j, bias + j, scale + j, n - j, threshold, base + j,
                                        out_index + count, out_value + count);
}

bool cpu_has_avx2_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#endif

template <typename T>
int64_t scan_row(const T* s, const T* bias, const T* scale, int64_t n, T threshold, int64_t base,
                 int64_t* out_index, T* out_value) {
#ifdef OML_FAST_X86
  if constexpr (std::is_same_v<T, float>) {
    if (cpu_has_avx2_fma())
      return scan_row_avx2(s, bias, scale, n, threshold, base, out_index, out_value);
  }
#endif
  return scan_row_scalar<T>(s, bias, scale, n, threshold, base, out_index, out_value);
}

// Everything the search needs about the inputs, prepared once.
template <typename T>
struct KnnProblem {
  const T* queries;
  const T* gallery;
  int64_t n_query, n_gallery, dim, k;
  Metric metric;
  Exclusions exclusions;
  std::vector<double> query_norm, gallery_norm;  // L2 norms, float64
  std::vector<T> bias, scale;                    // ranking value = bias[j] + scale[j] * <q, g_j>
  double gallery_norm_max = 0;
};

// Squared difference norm / inner product in float64 with four partial sums: independent chains
// (and, with the multiversioned clones, one AVX2 register of four doubles) instead of one serial
// chain. The order is fixed, so equal rows still give bitwise equal results.
template <typename T>
inline double squared_distance_f64(const T* a, const T* b, int64_t dim) {
  double part[4] = {0, 0, 0, 0};
  const int64_t dim4 = dim - dim % 4;
  for (int64_t d = 0; d < dim4; d += 4) {
    for (int u = 0; u < 4; ++u) {
      const double diff = static_cast<double>(a[d + u]) - static_cast<double>(b[d + u]);
      part[u] += diff * diff;
    }
  }
  for (int64_t d = dim4; d < dim; ++d) {
    const double diff = static_cast<double>(a[d]) - static_cast<double>(b[d]);
    part[0] += diff * diff;
  }
  return (part[0] + part[1]) + (part[2] + part[3]);
}

template <typename T>
inline double dot_f64(const T* a, const T* b, int64_t dim) {
  double part[4] = {0, 0, 0, 0};
  const int64_t dim4 = dim - dim % 4;
  for (int64_t d = 0; d < dim4; d += 4) {
    for (int u = 0; u < 4; ++u)
      part[u] += static_cast<double>(a[d + u]) * static_cast<double>(b[d + u]);
  }
  for (int64_t d = dim4; d < dim; ++d)
    part[0] += static_cast<double>(a[d]) * static_cast<double>(b[d]);
  return (part[0] + part[1]) + (part[2] + part[3]);
}

OML_FAST_MULTIVERSION double squared_distance_float(const float* a, const float* b, int64_t dim) {
  return squared_distance_f64(a, b, dim);
}

OML_FAST_MULTIVERSION double dot_float(const float* a, const float* b, int64_t dim) {
  return dot_f64(a, b, dim);
}

inline double squared_distance(const float* a, const float* b, int64_t dim) {
  return squared_distance_float(a, b, dim);
}
inline double squared_distance(const double* a, const double* b, int64_t dim) {
  return squared_distance_f64(a, b, dim);
}
inline double dot(const float* a, const float* b, int64_t dim) { return dot_float(a, b, dim); }
inline double dot(const double* a, const double* b, int64_t dim) { return dot_f64(a, b, dim); }

// The exact distance between query q and gallery item g, in float64.
template <typename T>
double exact_distance(const KnnProblem<T>& p, int64_t q, int64_t g) {
  const T* a = p.queries + q * p.dim;
  const T* b = p.gallery + g * p.dim;
  if (p.metric == Metric::Euclidean || p.metric == Metric::SqEuclidean) {
    const double squared = squared_distance(a, b, p.dim);
    return p.metric == Metric::Euclidean ? std::sqrt(squared) : squared;
  }
  const double inner = dot(a, b, p.dim);
  if (p.metric == Metric::Dot) return -inner;
  const double cos =
      inner / (std::max(p.query_norm[q], kCosineEps) * std::max(p.gallery_norm[g], kCosineEps));
  return std::min(2.0, std::max(0.0, 1.0 - cos));
}

// The candidates of one query: every non-excluded gallery item whose ranking value was within the
// band of the k-th best when it was seen. `threshold` only ever decreases.
template <typename T>
struct CandidateBuffer {
  T* value;
  int64_t* index;
  int64_t size = 0;
  T threshold = std::numeric_limits<T>::infinity();
};

template <typename T>
class QueryTileSearch {
 public:
  QueryTileSearch(const KnnProblem<T>& p) : p_(p) {
    const int64_t k_eff = std::min(p.k, p.n_gallery);
    k_eff_ = std::max<int64_t>(k_eff, 1);
    // Room for 2k + 32: a compaction frees at least half of the buffer in the common case.
    capacity_ = 2 * k_eff_ + 32;
    values_.resize(kQueryTile * capacity_);
    indices_.resize(kQueryTile * capacity_);
    tile_.resize(kQueryTile * kGalleryTile);
    pass_index_.resize(kGalleryTile);
    pass_value_.resize(kGalleryTile);
    scratch_value_.resize(capacity_);
    exact_.resize(capacity_);
    order_.resize(capacity_);
    constexpr double unit_roundoff = std::is_same_v<T, double> ? 0x1p-53 : 0x1p-24;
    band_factor_ = 2.0 * 1.25 * (static_cast<double>(p.dim) + 8.0) * unit_roundoff;
  }

  void run(int64_t q_begin, int64_t q_end, T* out_dist, int64_t* out_idx) {
    const int64_t n_rows = q_end - q_begin;
    for (int64_t r = 0; r < n_rows; ++r) {
      buffers_[r] =
          CandidateBuffer<T>{values_.data() + r * capacity_, indices_.data() + r * capacity_};
      band_[r] = band_for_query(q_begin + r);
    }
    auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
    const T* queries = p_.queries + q_begin * p_.dim;
    at::Tensor query_tile = at::from_blob(const_cast<T*>(queries), {n_rows, p_.dim}, options);
    for (int64_t g_begin = 0; g_begin < p_.n_gallery; g_begin += kGalleryTile) {
      const int64_t n_cols = std::min(kGalleryTile, p_.n_gallery - g_begin);
      at::Tensor gallery_tile =
          at::from_blob(const_cast<T*>(p_.gallery + g_begin * p_.dim), {n_cols, p_.dim}, options);
      at::Tensor products = at::from_blob(tile_.data(), {n_rows, n_cols}, options);
      at::mm_out(products, query_tile, gallery_tile.t());
      for (int64_t r = 0; r < n_rows; ++r) {
        CandidateBuffer<T>& buffer = buffers_[r];
        if (buffer.threshold == std::numeric_limits<T>::infinity() && n_cols > k_eff_)
          seed_threshold(q_begin + r, buffer, band_[r], tile_.data() + r * n_cols, g_begin, n_cols);
        const int64_t n_pass = scan_row<T>(tile_.data() + r * n_cols, p_.bias.data() + g_begin,
                                           p_.scale.data() + g_begin, n_cols, buffer.threshold,
                                           g_begin, pass_index_.data(), pass_value_.data());
        for (int64_t t = 0; t < n_pass; ++t) {
          if (pass_value_[t] > buffer.threshold) continue;  // the threshold fell during this row
          const int64_t g = pass_index_[t];
          if (p_.exclusions.excluded(q_begin + r, g)) continue;
          buffer.value[buffer.size] = pass_value_[t];
          buffer.index[buffer.size] = g;
          if (++buffer.size == capacity_) compact(q_begin + r, buffer, band_[r]);
        }
      }
    }
    for (int64_t r = 0; r < n_rows; ++r)
      finish(q_begin + r, buffers_[r], band_[r], out_dist + r * p_.k, out_idx + r * p_.k);
  }

 private:
  // Bound on |ranking value computed through the GEMM - its exact value| for query q: a dot product
  // of length D in floating point errs by at most ~D u |a| |b| (any summation order), plus a few
  // roundings of the epilogue; 1.25 is a safety margin.
  T band_for_query(int64_t q) const {
    const double nq = p_.query_norm[q], gm = p_.gallery_norm_max;
    double magnitude = 0;
    switch (p_.metric) {
      case Metric::Euclidean:
      case Metric::SqEuclidean:
        magnitude = gm * gm + 2.0 * nq * gm;  // |g|^2 - 2 <q, g>
        break;
      case Metric::Cosine:
        magnitude = nq;  // <q, g> / |g|
        break;
      case Metric::Dot:
        magnitude = nq * gm;
        break;
    }
    // Tiny absolute floor so that the band never rounds to 0 for all-zero data.
    return static_cast<T>(band_factor_ * magnitude + std::numeric_limits<T>::min());
  }

  // Before a query has any threshold, every value would pass and be copied into the buffer.
  // Instead, take the k-th smallest non-excluded value of this first tile row: k candidates are
  // known to be at least that close, so (k-th + 2 band) is already a valid threshold.
  void seed_threshold(int64_t q, CandidateBuffer<T>& buffer, T band, const T* products,
                      int64_t g_begin, int64_t n_cols) {
    const int64_t n_all = scan_row<T>(products, p_.bias.data() + g_begin, p_.scale.data() + g_begin,
                                      n_cols, std::numeric_limits<T>::infinity(), g_begin,
                                      pass_index_.data(), pass_value_.data());
    int64_t n_kept = 0;
    for (int64_t t = 0; t < n_all; ++t) {
      if (!p_.exclusions.excluded(q, pass_index_[t])) pass_value_[n_kept++] = pass_value_[t];
    }
    if (n_kept < k_eff_) return;
    std::nth_element(pass_value_.begin(), pass_value_.begin() + (k_eff_ - 1),
                     pass_value_.begin() + n_kept);
    buffer.threshold = pass_value_[k_eff_ - 1] + 2 * band;
  }

  // Ranking value of an exact distance (the inverse of the epilogue's monotone map), used once the
  // exact distance of a candidate is known.
  T ranking_value(int64_t q, double distance) const {
    switch (p_.metric) {
      case Metric::Euclidean:
        return static_cast<T>(distance * distance - p_.query_norm[q] * p_.query_norm[q]);
      case Metric::SqEuclidean:
        return static_cast<T>(distance - p_.query_norm[q] * p_.query_norm[q]);
      case Metric::Cosine:
        return static_cast<T>((distance - 1.0) * std::max(p_.query_norm[q], kCosineEps));
      case Metric::Dot:
        return static_cast<T>(distance);
    }
    return 0;
  }

  // The buffer is full: keep only candidates within 2 * band of the k-th best ranking value, which
  // still contain the exact top k. If near-ties keep it nearly full, resolve exactly instead.
  void compact(int64_t q, CandidateBuffer<T>& buffer, T band, bool resolve_if_full = true) {
    std::copy(buffer.value, buffer.value + buffer.size, scratch_value_.begin());
    std::nth_element(scratch_value_.begin(), scratch_value_.begin() + (k_eff_ - 1),
                     scratch_value_.begin() + buffer.size);
    const T kth = scratch_value_[k_eff_ - 1];
    const T threshold = kth + 2 * band;
    int64_t kept = 0;
    for (int64_t t = 0; t < buffer.size; ++t) {
      if (buffer.value[t] <= threshold) {
        buffer.value[kept] = buffer.value[t];
        buffer.index[kept] = buffer.index[t];
        ++kept;
      }
    }
    buffer.size = kept;
    buffer.threshold = std::min(buffer.threshold, threshold);
    if (resolve_if_full && kept > capacity_ - capacity_ / 4) resolve_exactly(q, buffer, band);
  }

  // Sorts the candidates by (exact distance, index) into order_[0..size).
  void sort_exactly(int64_t q, const CandidateBuffer<T>& buffer) {
    for (int64_t t = 0; t < buffer.size; ++t) exact_[t] = exact_distance(p_, q, buffer.index[t]);
    std::iota(order_.begin(), order_.begin() + buffer.size, 0);
    std::sort(order_.begin(), order_.begin() + buffer.size, [&](int64_t a, int64_t b) {
      return exact_[a] < exact_[b] || (exact_[a] == exact_[b] && buffer.index[a] < buffer.index[b]);
    });
  }

  // Many near-ties (e.g. duplicated gallery rows): keep the exact top k of what was seen so far,
  // with their exact ranking values.
  void resolve_exactly(int64_t q, CandidateBuffer<T>& buffer, T band) {
    sort_exactly(q, buffer);
    const int64_t kept = std::min(k_eff_, buffer.size);
    std::vector<int64_t> kept_index(kept);
    std::vector<T> kept_value(kept);
    for (int64_t t = 0; t < kept; ++t) {
      kept_index[t] = buffer.index[order_[t]];
      kept_value[t] = ranking_value(q, exact_[order_[t]]);
    }
    std::copy(kept_index.begin(), kept_index.end(), buffer.index);
    std::copy(kept_value.begin(), kept_value.end(), buffer.value);
    buffer.size = kept;
    if (kept == k_eff_)
      buffer.threshold = std::min<T>(buffer.threshold, kept_value[kept - 1] + 2 * band);
  }

  void finish(int64_t q, CandidateBuffer<T>& buffer, T band, T* out_dist, int64_t* out_idx) {
    // Drop what the final band rules out before paying for exact distances.
    if (buffer.size > k_eff_) compact(q, buffer, band, /*resolve_if_full=*/false);
    sort_exactly(q, buffer);
    const int64_t n_out = std::min(p_.k, buffer.size);
    for (int64_t t = 0; t < n_out; ++t) {
      out_dist[t] = static_cast<T>(exact_[order_[t]]);
      out_idx[t] = buffer.index[order_[t]];
    }
    for (int64_t t = n_out; t < p_.k; ++t) {
      out_dist[t] = std::numeric_limits<T>::infinity();
      out_idx[t] = -1;
    }
  }

  const KnnProblem<T>& p_;
  int64_t k_eff_, capacity_;
  double band_factor_;
  std::vector<T> values_, tile_, pass_value_, scratch_value_;
  std::vector<int64_t> indices_, pass_index_, order_;
  std::vector<double> exact_;
  CandidateBuffer<T> buffers_[kQueryTile];
  T band_[kQueryTile];
};

template <typename T>
std::vector<double> row_norms(const T* x, int64_t n, int64_t dim) {
  std::vector<double> norms(n);
  at::parallel_for(0, n, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double acc = 0;
      for (int64_t d = 0; d < dim; ++d) acc += static_cast<double>(x[i * dim + d]) * x[i * dim + d];
      norms[i] = std::sqrt(acc);
    }
  });
  return norms;
}

template <typename T>
bool all_finite(const T* x, int64_t n) {
  // x - x is 0 for finite x and NaN for NaN or inf; the loop vectorises.
  bool finite = true;
  for (int64_t i = 0; i < n; ++i) finite &= (x[i] - x[i] == T(0));
  return finite;
}

template <typename T>
void knn_search(KnnProblem<T>& p, T* out_dist, int64_t* out_idx) {
  p.query_norm = row_norms(p.queries, p.n_query, p.dim);
  p.gallery_norm = row_norms(p.gallery, p.n_gallery, p.dim);
  for (double v : p.gallery_norm) p.gallery_norm_max = std::max(p.gallery_norm_max, v);
  p.bias.assign(p.n_gallery, T(0));
  p.scale.assign(p.n_gallery, T(-1));
  for (int64_t j = 0; j < p.n_gallery; ++j) {
    switch (p.metric) {
      case Metric::Euclidean:
      case Metric::SqEuclidean:  // |q - g|^2 - |q|^2 = |g|^2 - 2 <q, g>
        p.bias[j] = static_cast<T>(p.gallery_norm[j] * p.gallery_norm[j]);
        p.scale[j] = T(-2);
        break;
      case Metric::Cosine:  // (1 - cos) |q| - |q| = -<q, g> / |g|
        p.scale[j] = static_cast<T>(-1.0 / std::max(p.gallery_norm[j], kCosineEps));
        break;
      case Metric::Dot:
        break;
    }
  }
  const int64_t n_tiles = (p.n_query + kQueryTile - 1) / kQueryTile;
  at::parallel_for(0, n_tiles, 1, [&](int64_t tile_begin, int64_t tile_end) {
    QueryTileSearch<T> search(p);
    for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
      const int64_t q_begin = tile * kQueryTile, q_end = std::min(p.n_query, q_begin + kQueryTile);
      search.run(q_begin, q_end, out_dist + q_begin * p.k, out_idx + q_begin * p.k);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> knn_cpu(const at::Tensor& queries, const at::Tensor& gallery,
                                           int64_t k, c10::string_view metric,
                                           const std::optional<at::Tensor>& query_ids,
                                           const std::optional<at::Tensor>& gallery_ids,
                                           const std::optional<at::Tensor>& query_groups,
                                           const std::optional<at::Tensor>& gallery_groups) {
  const Metric parsed = retrieval::check_knn_inputs(queries, gallery, k, metric, query_ids,
                                                    gallery_ids, query_groups, gallery_groups);
  // CPU half-precision policy (common/checks.h): searched in float32, distances returned as
  // float32.
  const at::Tensor q = upcast_half_on_cpu(queries).contiguous();
  const at::Tensor g = upcast_half_on_cpu(gallery).contiguous();
  const int64_t n_query = q.size(0), n_gallery = g.size(0), dim = q.size(1);
  at::Tensor out_dist = at::empty({n_query, k}, q.options());
  at::Tensor out_idx = at::empty({n_query, k}, q.options().dtype(at::kLong));
  auto contiguous_key = [](const std::optional<at::Tensor>& t) {
    return t.has_value() ? std::optional<at::Tensor>(t->contiguous()) : std::nullopt;
  };
  const auto qid = contiguous_key(query_ids), gid = contiguous_key(gallery_ids);
  const auto qgr = contiguous_key(query_groups), ggr = contiguous_key(gallery_groups);
  Exclusions exclusions;
  if (qid) {
    exclusions.query_ids = qid->data_ptr<int64_t>();
    exclusions.gallery_ids = gid->data_ptr<int64_t>();
  }
  if (qgr) {
    exclusions.query_groups = qgr->data_ptr<int64_t>();
    exclusions.gallery_groups = ggr->data_ptr<int64_t>();
  }
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "knn_cpu", [&] {
    TORCH_CHECK_VALUE(all_finite(q.data_ptr<scalar_t>(), q.numel()),
                      "`queries` contains NaN or inf values (", describe(queries),
                      "); knn needs finite embeddings");
    TORCH_CHECK_VALUE(all_finite(g.data_ptr<scalar_t>(), g.numel()),
                      "`gallery` contains NaN or inf values (", describe(gallery),
                      "); knn needs finite embeddings");
    if (n_query == 0) return;
    if (n_gallery == 0) {  // nothing to retrieve: all padding
      out_dist.fill_(std::numeric_limits<scalar_t>::infinity());
      out_idx.fill_(-1);
      return;
    }
    KnnProblem<scalar_t> problem{q.data_ptr<scalar_t>(),
                                 g.data_ptr<scalar_t>(),
                                 n_query,
                                 n_gallery,
                                 dim,
                                 k,
                                 parsed,
                                 exclusions,
                                 {},
                                 {},
                                 {},
                                 {},
                                 0.0};
    knn_search(problem, out_dist.data_ptr<scalar_t>(), out_idx.data_ptr<int64_t>());
  });
  return {out_dist, out_idx};
}

}  // namespace

TORCH_LIBRARY_IMPL(oml_fast, CPU, m) { m.impl("knn", &knn_cpu); }

}  // namespace oml_fast
