#include "mining/cpu/symmetric_mining.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "common/distance_math.h"
#include "mining/cpu/segment_scan.h"

namespace oml_fast::mining {
namespace {

// Candidate-list slots per anchor and side (per thread). A list that fills up is first compacted
// against the anchor's current bound; only near-ties beyond this many send the row to the per-row
// path.
int64_t list_capacity(int64_t n) { return 16 + 2 * n; }

// Anchors per panel: panels of at most ~1M products (4 MiB float32, cache-resident between the
// GEMM that writes them and the scans that read them), up to 128 rows (the unshared triangle of
// each diagonal block costs B * rows / 2 extra products in all), and at least four panels per
// thread so the shrinking panels balance.
int64_t panel_rows(int64_t batch, int64_t threads) {
  const int64_t by_cache = std::max<int64_t>((int64_t{1} << 20) / std::max<int64_t>(batch, 1), 16);
  const int64_t by_balance = (batch + 4 * threads - 1) / (4 * threads);
  return std::max<int64_t>(1, std::min({int64_t{128}, by_cache, by_balance}));
}

// Widens a float64 error term when rounding it to the scan's dtype, so that the scan's own
// roundings (a few units in the last place of a sum of two products) stay covered.
template <typename T>
T widened(double value) {
  return static_cast<T>(value * (1.0 + 0x1p-18));
}

// The state one thread keeps for every anchor. Bounds are kept sorted (positives: descending
// lower ends; negatives: ascending upper ends), one slot at least, so the n-th bound is the last.
template <typename T>
struct ThreadState {
  int64_t pos_slots, neg_slots, capacity;
  std::vector<T> pos_bounds, neg_bounds;
  std::vector<T> pos_reach, neg_reach;  // candidates' upper (positives) / lower (negatives) ends
  std::vector<int32_t> pos_ids, neg_ids;
  std::vector<int32_t> pos_count, neg_count;
  std::vector<uint8_t> overflow;
  // Scratch of one segment.
  std::vector<T> keys;
  std::vector<int32_t> pos_hits, neg_hits;

  ThreadState(int64_t batch, int64_t n_pos, int64_t n_neg)
      : pos_slots(std::max<int64_t>(n_pos, 1)),
        neg_slots(std::max<int64_t>(n_neg, 1)),
        capacity(list_capacity(std::max(n_pos, n_neg))),
        pos_bounds(batch * pos_slots, -std::numeric_limits<T>::infinity()),
        neg_bounds(batch * neg_slots, std::numeric_limits<T>::infinity()),
        pos_reach(batch * capacity),
        neg_reach(batch * capacity),
        pos_ids(batch * capacity),
        neg_ids(batch * capacity),
        pos_count(batch, 0),
        neg_count(batch, 0),
        overflow(batch, 0),
        keys(batch),
        pos_hits(batch),
        neg_hits(batch) {}
};

// Inserts `value` into the sorted bounds b[0..n) if it beats the last one.
template <typename T, bool kDescending>
inline void insert_bound(T* b, int64_t n, T value) {
  if (!(kDescending ? value > b[n - 1] : value < b[n - 1])) return;  // also drops NaN
  int64_t pos = n - 1;
  while (pos > 0 && (kDescending ? value > b[pos - 1] : value < b[pos - 1])) {
    b[pos] = b[pos - 1];
    --pos;
  }
  b[pos] = value;
}

// Appends a candidate to an anchor's list; a full list is compacted against `limit` first.
template <typename T>
inline void append_candidate(T* reach, int32_t* ids, int32_t& count, int64_t capacity, T value,
                             int32_t id, T limit, bool positive, uint8_t& overflow) {
  if (count == capacity) {
    int32_t kept = 0;
    for (int32_t e = 0; e < count; ++e) {
      if (positive ? reach[e] >= limit : reach[e] <= limit) {
        reach[kept] = reach[e];
        ids[kept] = ids[e];
        ++kept;
      }
    }
    count = kept;
    if (count == capacity) {
      overflow = 1;
      return;
    }
  }
  reach[count] = value;
  ids[count] = id;
  ++count;
}

template <typename T>
struct Context {
  ItemTerms<T> items;
  const T* norms;  // anchors' norms, rounded up
  int64_t n_pos, n_neg;
};

// One anchor's view of `m` products with items first..first + m - 1 (`self`: the anchor's own
// position in the segment, or -1): updates its bounds, then its candidate lists.
template <typename T>
void scan_segment(ThreadState<T>& s, const Context<T>& ctx, int64_t anchor, const T* dots,
                  int64_t first, int64_t m, int64_t self) {
  if (s.overflow[anchor]) return;
  const T norm = ctx.norms[anchor];
  const int32_t label = ctx.items.labels[anchor];
  T* keys = s.keys.data();
  T* pos_b = s.pos_bounds.data() + anchor * s.pos_slots;
  T* neg_b = s.neg_bounds.data() + anchor * s.neg_slots;
  if (ctx.n_pos <= 1 && ctx.n_neg <= 1) {
    if (self < 0) {
      segment_keys_and_bounds(dots, ctx.items, first, m, norm, label, keys, pos_b, neg_b);
    } else {
      segment_keys_and_bounds(dots, ctx.items, first, self, norm, label, keys, pos_b, neg_b);
      segment_keys_and_bounds(dots + self + 1, ctx.items, first + self + 1, m - self - 1, norm,
                              label, keys + self + 1, pos_b, neg_b);
    }
  } else {
    segment_keys(dots, ctx.items, first, m, keys);
    for (int64_t c = 0; c < m; ++c) {
      const T key = keys[c];
      if (c == self || key != key) continue;
      const int64_t item = first + c;
      const T half = ctx.items.e_self[item] + norm * ctx.items.e_cross[item];
      if (ctx.items.labels[item] == label) {
        if (ctx.n_pos > 0) insert_bound<T, true>(pos_b, ctx.n_pos, key - half);
      } else if (ctx.n_neg > 0) {
        insert_bound<T, false>(neg_b, ctx.n_neg, key + half);
      }
    }
  }
  // The anchor is never its own candidate: a NaN key is never one.
  if (self >= 0) keys[self] = std::numeric_limits<T>::quiet_NaN();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T pos_limit = ctx.n_pos > 0 ? pos_b[ctx.n_pos - 1] : nan;
  const T neg_limit = ctx.n_neg > 0 ? neg_b[ctx.n_neg - 1] : nan;
  int64_t n_pos_hits = 0, n_neg_hits = 0;
  segment_candidates(keys, ctx.items, first, m, norm, label, pos_limit, neg_limit,
                     s.pos_hits.data(), &n_pos_hits, s.neg_hits.data(), &n_neg_hits);
  const int64_t base = anchor * s.capacity;
  for (int64_t h = 0; h < n_pos_hits; ++h) {
    const int64_t item = first + s.pos_hits[h];
    const T half = ctx.items.e_self[item] + norm * ctx.items.e_cross[item];
    append_candidate(s.pos_reach.data() + base, s.pos_ids.data() + base, s.pos_count[anchor],
                     s.capacity, keys[s.pos_hits[h]] + half, static_cast<int32_t>(item), pos_limit,
                     true, s.overflow[anchor]);
  }
  for (int64_t h = 0; h < n_neg_hits; ++h) {
    const int64_t item = first + s.neg_hits[h];
    const T half = ctx.items.e_self[item] + norm * ctx.items.e_cross[item];
    append_candidate(s.neg_reach.data() + base, s.neg_ids.data() + base, s.neg_count[anchor],
                     s.capacity, keys[s.neg_hits[h]] - half, static_cast<int32_t>(item), neg_limit,
                     false, s.overflow[anchor]);
  }
}

// The n-th largest (positives) / smallest (negatives) bound over every thread's sorted bounds.
template <typename T, bool kDescending>
T merged_bound(const std::vector<ThreadState<T>>& states, int64_t anchor, int64_t n,
               std::vector<T>& scratch) {
  scratch.clear();
  for (const ThreadState<T>& s : states) {
    const T* b = (kDescending ? s.pos_bounds.data() + anchor * s.pos_slots
                              : s.neg_bounds.data() + anchor * s.neg_slots);
    scratch.insert(scratch.end(), b, b + n);
  }
  std::nth_element(scratch.begin(), scratch.begin() + (n - 1), scratch.end(),
                   [](T a, T b) { return kDescending ? a > b : a < b; });
  return scratch[n - 1];
}

}  // namespace

template <typename scalar_t>
void mine_symmetric(const at::Tensor& x, const MiningJob<scalar_t>& job, int64_t* positives,
                    int64_t* negatives) {
  using T = scalar_t;
  const MiningRow<T>& row = job.row;
  const int64_t batch = row.batch, dim = row.dim;
  const int64_t n_positive = job.n_positive, n_negative = job.n_negative;
  const int64_t n_pos = std::min(n_positive, batch), n_neg = std::min(n_negative, batch);
  if (n_positive == 0 && n_negative == 0) return;  // [B, 0] outputs: nothing to select

  // Dense label ids (the scans compare 32-bit lanes).
  std::vector<int64_t> distinct(row.labels, row.labels + batch);
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<int32_t> label_ids(batch);
  std::vector<T> e_self(batch), e_cross(batch), norms(batch);
  for (int64_t j = 0; j < batch; ++j) {
    label_ids[j] = static_cast<int32_t>(
        std::lower_bound(distinct.begin(), distinct.end(), row.labels[j]) - distinct.begin());
    e_self[j] = widened<T>(row.e_self[j]);
    e_cross[j] = widened<T>(row.e_cross[j]);
    norms[j] = widened<T>(row.norms[j]);
  }
  const Context<T> ctx{
      {job.sq_norms, e_self.data(), e_cross.data(), label_ids.data()}, norms.data(), n_pos, n_neg};

  const int64_t threads = std::max<int64_t>(at::get_num_threads(), 1);
  const int64_t rows_per_panel = panel_rows(batch, threads);
  const int64_t n_panels = (batch + rows_per_panel - 1) / rows_per_panel;
  const int64_t n_workers = std::min(threads, n_panels);
  std::vector<ThreadState<T>> states;
  states.reserve(n_workers);
  for (int64_t w = 0; w < n_workers; ++w) states.emplace_back(batch, n_pos, n_neg);
  const bool* mask = job.anchor_mask;
  const T* x_ptr = row.x;

  // Phase 1: panels, handed out largest first through a shared counter (a thread that loses its
  // core on a shared machine holds back no fixed share).
  std::atomic<int64_t> next_panel{0};
  at::parallel_for(0, n_workers, 1, [&](int64_t worker_begin, int64_t worker_end) {
    for (int64_t w = worker_begin; w < worker_end; ++w) {
      ThreadState<T>& s = states[w];
      // One GEMM buffer and one transpose buffer per thread; at::mm_out inside a parallel region
      // runs single-threaded.
      at::Tensor products = at::empty({rows_per_panel * batch}, x.options());
      std::vector<T> transposed(rows_per_panel * batch);
      for (int64_t p = next_panel.fetch_add(1); p < n_panels; p = next_panel.fetch_add(1)) {
        const int64_t i0 = p * rows_per_panel;
        const int64_t rows = std::min(rows_per_panel, batch - i0);
        const int64_t width = batch - i0;
        at::Tensor panel = products.narrow(0, 0, rows * width).view({rows, width});
        at::mm_out(panel, x.narrow(0, i0, rows), x.narrow(0, i0, width).t());
        const T* g = panel.const_data_ptr<T>();
        for (int64_t t = 0; t < rows; ++t) {
          const int64_t anchor = i0 + t;
          if (mask != nullptr && !mask[anchor]) continue;
          scan_segment(s, ctx, anchor, g + t * width, i0, width, t);
        }
        if (width == rows) continue;
        transpose_block(g + rows, width, rows, width - rows, transposed.data());
        for (int64_t jj = 0; jj < width - rows; ++jj) {
          const int64_t anchor = i0 + rows + jj;
          if (mask != nullptr && !mask[anchor]) continue;
          scan_segment(s, ctx, anchor, transposed.data() + jj * rows, i0, rows, -1);
        }
      }
    }
  });

  // Phase 2: per anchor, the merged bounds, the surviving candidates ranked by exact keys.
  at::parallel_for(0, batch, 64, [&](int64_t begin, int64_t end) {
    std::vector<T> bound_scratch;
    std::vector<std::pair<double, int64_t>> candidates;
    RowScratch<T> row_scratch;
    at::Tensor fallback_keys;
    for (int64_t anchor = begin; anchor < end; ++anchor) {
      int64_t* out_pos = positives + anchor * n_positive;
      int64_t* out_neg = negatives + anchor * n_negative;
      if (mask != nullptr && !mask[anchor]) {
        std::fill(out_pos, out_pos + n_positive, int64_t{-1});
        std::fill(out_neg, out_neg + n_negative, int64_t{-1});
        continue;
      }
      bool overflowed = false;
      for (const ThreadState<T>& s : states) overflowed = overflowed || s.overflow[anchor];
      if (overflowed) {
        // The per-row path, from this anchor's own row of products.
        if (!fallback_keys.defined()) {
          fallback_keys = at::empty({1, batch}, x.options());
          row_scratch.pos_bounds.resize(std::clamp<int64_t>(n_positive, 1, batch));
          row_scratch.pos_ids.resize(row_scratch.pos_bounds.size());
          row_scratch.neg_bounds.resize(std::clamp<int64_t>(n_negative, 1, batch));
          row_scratch.neg_ids.resize(row_scratch.neg_bounds.size());
        }
        at::mm_out(fallback_keys, x.narrow(0, anchor, 1), x.t());
        T* keys = fallback_keys.mutable_data_ptr<T>();
        products_to_keys(keys, job.sq_norms, batch);
        select_row<T>(keys, row, anchor, n_positive, n_negative, row_scratch, out_pos, out_neg);
        continue;
      }
      const T* a = x_ptr + anchor * dim;
      for (int side = 0; side < 2; ++side) {
        const bool positive = side == 0;
        const int64_t n = positive ? n_pos : n_neg;
        int64_t* out = positive ? out_pos : out_neg;
        if ((positive ? n_positive : n_negative) == 0) continue;
        candidates.clear();
        if (n > 0) {
          const T limit = positive ? merged_bound<T, true>(states, anchor, n, bound_scratch)
                                   : merged_bound<T, false>(states, anchor, n, bound_scratch);
          for (const ThreadState<T>& s : states) {
            const int64_t base = anchor * s.capacity;
            const int32_t count = positive ? s.pos_count[anchor] : s.neg_count[anchor];
            const T* reach = (positive ? s.pos_reach.data() : s.neg_reach.data()) + base;
            const int32_t* ids = (positive ? s.pos_ids.data() : s.neg_ids.data()) + base;
            for (int32_t e = 0; e < count; ++e) {
              if (positive ? !(reach[e] >= limit) : !(reach[e] <= limit)) continue;
              // distance_math.h: float64, bitwise the same key as the per-row and CUDA paths'.
              const double exact = dist::hardness_key(a, x_ptr + ids[e] * dim, dim, row.euclidean);
              if (exact == exact) candidates.emplace_back(exact, ids[e]);
            }
          }
        }
        take_hardest(candidates, positive ? n_positive : n_negative, positive, out);
      }
    }
  });
}

template void mine_symmetric<float>(const at::Tensor&, const MiningJob<float>&, int64_t*, int64_t*);
template void mine_symmetric<double>(const at::Tensor&, const MiningJob<double>&, int64_t*,
                                     int64_t*);

}  // namespace oml_fast::mining
