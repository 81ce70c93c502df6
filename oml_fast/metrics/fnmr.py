"""FNMR@FMR over all query-gallery pairs, exactly, without materialising the distance matrix.

``T = numpy.quantile(negative distances, fmr)`` (linear) and ``fnmr = mean(positive distances >= T)``
(docs/metrics.md). Positive pairs are few (they share a label) and are kept; negative pairs are not:
distances are streamed tile by tile (``pairwise_distance`` on ``[rows, Ng]`` blocks) through the fused
``_pair_distance_histogram`` op (:mod:`oml_fast.ops.fnmr`), which sorts every negative into the slots of
a window ``[lower, upper]``: below it, one of its bins, above it -- each slot with its exact count, min
and max -- and returns the negatives inside the window when asked to collect them.

A pass serves several windows at once. After a pass, the negative of a wanted rank lies in a known slot
of every window: inside a collected window it is read after a sort; in a slot whose min equals its max
it is that value; otherwise the slot's exact ``[min, max]`` becomes the window of the next pass (it
holds exactly that slot's values, since bins are consecutive value ranges), collected when small,
histogrammed again when not.

The first pass usually settles everything: its windows come from a sample of the negatives (every
query and every gallery item once, in random blocks), a few standard errors around each wanted quantile,
so that they hold the wanted ranks and few values; they are collected. A window that misses (its rank
lies below or above it) or overflows only costs more passes, never exactness.

On the CPU (float32 / float64) a pass is one call of the compiled ``_embedding_pair_histogram`` op: it
computes the same distances as ``pairwise_distance``, panel by panel (one reused panel per thread, the
norms once per pass), and sorts each row into the windows' slots while the row is still in cache, so a
pass costs about one GEMM over all pairs. Elsewhere (CUDA, float16 / bfloat16) the tiles are computed
into one reused buffer and go through ``_pair_distance_histogram``.

Memory: the panels (at most 32 MB in all) or one distance tile buffer (``TILE_BYTES``, reused), the
sample, the slots, the positives and at most ``MAX_COLLECT`` values per window. Time: about one
``pairwise_distance`` pass over all pairs, plus the sample (a few percent of one).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from .. import ops as _ops
from ..functional.metrics import check_in_unit_range
from ..ops.checks import check_both_or_neither, check_finite
from ..ops.distance import pairwise_distance_out
from ..ops.fnmr import PairHistogram, Window, embedding_pair_histogram, pair_distance_histogram

N_BINS = 1 << 16
# A window holding at most this many negatives is collected (and sorted) instead of histogrammed.
MAX_COLLECT = 1 << 22
# Bytes of the one distance tile buffer: bounded memory whatever the gallery size, and tiles tall
# enough that the per-call work on the gallery (norms) stays small next to the GEMM.
TILE_BYTES = 16 << 20
# Negatives sampled to place the first windows, and their half-width in standard errors of a quantile.
SAMPLE_PAIRS = 1 << 22
MAX_SAMPLE_BLOCKS = 1024
BRACKET_SIGMAS = 5.0


def _glibc_malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc
        return None


_MALLOC_TRIM = _glibc_malloc_trim()


def _release_free_heap() -> None:
    """Gives the C heap's free pages back to the system (glibc; elsewhere nothing).

    Each tile allocates large transient buffers inside ``pairwise_distance`` (the gallery's norms) while
    the op's small outputs stay alive between them; glibc then serves later buffers from fresh memory
    above the holes, and the resident set grew by hundreds of MB over a pass. ``malloc_trim`` releases
    every free page, holes included (a few ms per call).
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


@dataclass
class _Window:
    """The negatives in ``[lower, upper]`` as one pass sees them (slots: :mod:`oml_fast.ops.fnmr`)."""

    lower: float
    upper: float
    n_bins: int
    collect: bool
    counts: Tensor | None = None  # int64 [n_bins + 2], summed over tiles
    mins: Tensor | None = None
    maxs: Tensor | None = None
    pieces: list[Tensor] = field(default_factory=list)  # collected values, tile by tile
    n_collected: int = 0
    _sorted: np.ndarray | None = None

    @classmethod
    def around(cls, lower: float, upper: float, count: int) -> _Window:
        """A window for ``count`` known negatives in ``[lower, upper]``: collected when small enough."""
        small = count <= MAX_COLLECT
        return cls(lower, upper, n_bins=1 if small else N_BINS, collect=small)

    def add(self, part: PairHistogram) -> None:
        if self.counts is None:
            self.counts, self.mins, self.maxs = part.counts.clone(), part.mins.clone(), part.maxs.clone()
        else:
            assert self.mins is not None and self.maxs is not None
            self.counts += part.counts
            torch.minimum(self.mins, part.mins, out=self.mins)
            torch.maximum(self.maxs, part.maxs, out=self.maxs)
        if self.collect:
            self.pieces.append(part.collected)
            self.n_collected += len(part.collected)
            if self.n_collected > MAX_COLLECT:
                self._stop_collecting()

    def _stop_collecting(self) -> None:
        """Too many values inside: histogram them instead (a finite window) or keep only the slot."""
        pieces, self.pieces, self.collect = self.pieces, [], False
        if not (math.isfinite(self.lower) and math.isfinite(self.upper)):
            return  # n_bins == 1: the single inside slot already has the count, min and max
        assert self.counts is not None and self.mins is not None and self.maxs is not None
        below_above = [0, -1]
        counts, mins, maxs = self.counts[below_above], self.mins[below_above], self.maxs[below_above]
        self.n_bins = N_BINS
        self.counts = torch.zeros(N_BINS + 2, dtype=torch.int64, device=counts.device)
        self.mins = torch.full((N_BINS + 2,), math.inf, dtype=torch.float64, device=counts.device)
        self.maxs = torch.full((N_BINS + 2,), -math.inf, dtype=torch.float64, device=counts.device)
        self.counts[below_above], self.mins[below_above], self.maxs[below_above] = counts, mins, maxs
        for piece in pieces:  # every value is inside the window: a one-row tile of negatives
            for chunk in piece.split(1 << 20):
                gallery_labels = torch.zeros(len(chunk), dtype=torch.int64, device=chunk.device)
                self.add(
                    pair_distance_histogram(
                        chunk[None, :],
                        torch.ones(1, dtype=torch.int64, device=chunk.device),
                        gallery_labels,
                        lower=self.lower,
                        upper=self.upper,
                        n_bins=N_BINS,
                    )
                )

    def sorted_inside(self) -> np.ndarray:
        """The collected values, ascending (in the distances' dtype; bfloat16 as float32)."""
        if self._sorted is None:
            values = torch.cat(self.pieces) if self.pieces else torch.zeros(0)
            self.pieces = []
            self._sorted = (values.float() if values.dtype == torch.bfloat16 else values).cpu().numpy()
            self._sorted.sort()  # in place: no second copy
        return self._sorted

    def locate(self, rank: int) -> tuple[float | None, tuple[int, float, float]]:
        """The negative of ``rank`` (0-based, ascending over all negatives) if this window knows it, and
        the slot holding it: ``(count, min, max)``."""
        assert self.counts is not None and self.mins is not None and self.maxs is not None
        counts = self.counts.cpu()
        cumulative = torch.cumsum(counts, 0)
        slot = int(torch.searchsorted(cumulative, torch.tensor(rank), right=True))
        low, high = float(self.mins[slot]), float(self.maxs[slot])
        if self.collect and 1 <= slot <= self.n_bins:
            return float(self.sorted_inside()[rank - int(counts[0])]), (0, low, high)
        if low == high:
            return low, (0, low, high)
        return None, (int(counts[slot]), low, high)


_Keys = tuple[Tensor, Tensor, "Tensor | None", "Tensor | None", "Tensor | None", "Tensor | None"]


def _numpy_quantile_ranks(n: int, fmr_vals: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices and weights exactly as ``numpy.quantile(..., method="linear")`` computes them."""
    virtual = (n - 1) * np.asarray(fmr_vals, dtype=np.float64)
    previous = np.floor(virtual).astype(np.int64)
    following = previous + 1
    above = virtual >= n - 1
    previous[above], following[above] = n - 1, n - 1
    below = virtual < 0
    previous[below], following[below] = 0, 0
    gamma = virtual - previous
    return previous, following, gamma


def _numpy_lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's ``_lerp`` (same operations, same rounding)."""
    diff_b_a = b - a
    result = np.add(a, diff_b_a * t)
    np.subtract(b, diff_b_a * (1 - t), out=result, where=t >= 0.5, casting="unsafe")
    return result


def _factorize_pair(query_keys: Tensor, gallery_keys: Tensor) -> tuple[Tensor, Tensor]:
    """int64 codes of a query/gallery key pair: equal codes exactly where the keys are ``==``."""
    if not (query_keys.is_floating_point() or query_keys.is_complex() or gallery_keys.is_floating_point()):
        return query_keys.long(), gallery_keys.long()
    both = torch.cat([query_keys.reshape(-1).to(torch.float64), gallery_keys.reshape(-1).to(torch.float64)])
    codes = torch.unique(both, return_inverse=True)[1]
    return codes[: len(query_keys)], codes[len(query_keys) :]


def _prepare_keys(
    device: torch.device,
    query_labels: Tensor,
    gallery_labels: Tensor,
    query_ids: Tensor | None,
    gallery_ids: Tensor | None,
    query_groups: Tensor | None,
    gallery_groups: Tensor | None,
) -> _Keys:
    """Labels and exclusion pairs as int64 codes on ``device`` (the op compares them exactly as ``==``
    compares the originals); an exclusion counts only when both of its sides are given."""
    if query_ids is None or gallery_ids is None:
        query_ids = gallery_ids = None
    if query_groups is None or gallery_groups is None:
        query_groups = gallery_groups = None

    def pair(q: Tensor | None, g: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        if q is None or g is None:
            return None, None
        codes = _factorize_pair(torch.as_tensor(q).to(device), torch.as_tensor(g).to(device))
        return codes[0].contiguous(), codes[1].contiguous()

    labels = pair(query_labels, gallery_labels)
    assert labels[0] is not None and labels[1] is not None
    return (labels[0], labels[1], *pair(query_ids, gallery_ids), *pair(query_groups, gallery_groups))


def _distance_pass(
    queries: Tensor,
    gallery: Tensor,
    keys: _Keys,
    metric: str,
    windows: list[_Window],
    with_positives: bool,
) -> list[Tensor]:
    """One streaming pass over all pairs, feeding every window; returns the positives if asked.

    Each ``[rows, Ng]`` distance tile is computed where the embeddings live, into one reused buffer, and
    goes through the op on that device, once per window.
    """
    if _fused_pass_applies(queries):
        return _fused_distance_pass(queries, gallery, keys, metric, windows, with_positives)
    query_labels, gallery_labels, query_ids, gallery_ids, query_groups, gallery_groups = keys
    positives: list[Tensor] = []
    rows = max(1, min(len(queries), TILE_BYTES // max(1, len(gallery) * queries.element_size())))
    buffer = torch.empty((rows, len(gallery)), dtype=queries.dtype, device=queries.device)
    for start in range(0, len(queries), rows):
        stop = min(start + rows, len(queries))
        dist = pairwise_distance_out(queries[start:stop], gallery, metric, out=buffer[: stop - start])
        for index, window in enumerate(windows):
            part = pair_distance_histogram(
                dist,
                query_labels[start:stop],
                gallery_labels,
                None if query_ids is None else query_ids[start:stop],
                gallery_ids,
                None if query_groups is None else query_groups[start:stop],
                gallery_groups,
                lower=window.lower,
                upper=window.upper,
                n_bins=window.n_bins,
                collect=window.collect,
                with_positives=with_positives and index == 0,
            )
            if with_positives and index == 0:
                positives.append(part.positives)
            window.add(part)
        del dist, part
        _release_free_heap()
    return positives


def _fused_pass_applies(queries: Tensor) -> bool:
    """Whether the compiled whole-pass op takes these embeddings (CPU, float32 / float64, D > 0)."""
    return (
        queries.device.type == "cpu"
        and queries.dtype in (torch.float32, torch.float64)
        and queries.dim() == 2
        and queries.shape[1] > 0
    )


def _fused_distance_pass(
    queries: Tensor,
    gallery: Tensor,
    keys: _Keys,
    metric: str,
    windows: list[_Window],
    with_positives: bool,
) -> list[Tensor]:
    """:func:`_distance_pass` in one call of the compiled op: the distances are sorted into the windows'
    slots as they are computed, panel by panel, and never written to a tile that is read again."""
    result = embedding_pair_histogram(
        queries,
        gallery,
        metric,
        *keys,
        windows=[Window(w.lower, w.upper, w.n_bins, w.collect) for w in windows],
        max_collect=MAX_COLLECT,
        with_positives=with_positives,
    )
    for window, part, overflowed in zip(windows, result.windows, result.overflowed, strict=True):
        if overflowed:  # too many inside to collect: the inside slot's count, min and max stay
            window.collect, window.pieces = False, []
        window.add(part)
    return [result.positives] if with_positives else []


def _threshold_dtype(dist_dtype: torch.dtype) -> np.dtype:
    """The numpy dtype ``numpy.quantile`` computes in for distances of ``dist_dtype`` (bfloat16, which
    numpy lacks, as float32)."""
    return (
        np.dtype(np.float32)
        if dist_dtype == torch.bfloat16
        else torch.empty(0, dtype=dist_dtype).numpy().dtype
    )


def calc_fnmr_at_fmr_all_pairs(
    queries: Tensor,
    gallery: Tensor,
    query_labels: Tensor,
    gallery_labels: Tensor,
    fmr_vals: Sequence[float],
    query_ids: Tensor | None = None,
    gallery_ids: Tensor | None = None,
    query_groups: Tensor | None = None,
    gallery_groups: Tensor | None = None,
    metric: str = "euclidean",
) -> Tensor:
    """FNMR@FMR over every non-excluded query-gallery pair (exact, bounded memory).

    Args:
        queries (Tensor[Nq, D]), gallery (Tensor[Ng, D]): embeddings (any device and float dtype that
            ``pairwise_distance`` takes).
        query_labels (Tensor[Nq]), gallery_labels (Tensor[Ng]): equal labels = positive pair.
        fmr_vals: false match rates in ``[0, 1]``.
        query_ids, gallery_ids, query_groups, gallery_groups: exclusions, as for ``knn``.
        metric: distance (as ``pairwise_distance``).

    Returns:
        FloatTensor[len(fmr_vals)] (CPU), equal to ``calc_fnmr_at_fmr(pos, neg, fmr_vals)`` on the full
        lists of the distances ``pairwise_distance`` gives.

    >>> q = torch.tensor([[0.0], [1.0], [5.0]])
    >>> labels = torch.tensor([0, 0, 1])
    >>> ids = torch.arange(3)
    >>> calc_fnmr_at_fmr_all_pairs(q, q, labels, labels, (0.5,), ids, ids)
    tensor([0.])
    """
    fmr_vals = check_in_unit_range("fmr_vals", fmr_vals)
    # As knn: a lone key would otherwise be ignored silently; NaN / inf embeddings cannot be ranked.
    check_both_or_neither(query_ids, "query_ids", gallery_ids, "gallery_ids")
    check_both_or_neither(query_groups, "query_groups", gallery_groups, "gallery_groups")
    check_finite(queries, "queries", "FNMR@FMR")
    check_finite(gallery, "gallery", "FNMR@FMR")
    keys = _prepare_keys(
        queries.device, query_labels, gallery_labels, query_ids, gallery_ids, query_groups, gallery_groups
    )
    with torch.no_grad():
        return _fnmr_at_fmr(queries, gallery, keys, metric, fmr_vals)


def _fnmr_at_fmr(
    queries: Tensor, gallery: Tensor, keys: _Keys, metric: str, fmr_vals: Sequence[float]
) -> Tensor:
    args = (queries, gallery, keys, metric)
    with _one_cpu_thread(queries.device):
        windows = _first_windows(_sample_negatives(*args), fmr_vals)
    positives = _distance_pass(*args, windows=windows, with_positives=True)
    assert windows[0].counts is not None
    n_negative = int(windows[0].counts.sum())
    if n_negative == 0:
        warnings.warn(
            "FNMR@FMR is NaN: there is no negative pair (every pair shares a label or is excluded)",
            stacklevel=3,
        )
        return torch.full((len(fmr_vals),), float("nan"))
    previous, following, gamma = _numpy_quantile_ranks(n_negative, fmr_vals)
    values = _resolve(windows, sorted(set(previous.tolist()) | set(following.tolist())), args)
    dtype = _threshold_dtype(queries.dtype if queries.is_floating_point() else torch.float32)
    pos = torch.cat(positives).cpu() if positives else torch.zeros(0)
    pos_np = (pos.float() if pos.dtype == torch.bfloat16 else pos).numpy()
    a = np.array([values[r] for r in previous], dtype=dtype)
    b = np.array([values[r] for r in following], dtype=dtype)
    thresholds = _numpy_lerp(a, b, gamma)
    with np.errstate(invalid="ignore", divide="ignore"):
        fnmr = (pos_np[None, :] >= thresholds[:, None]).sum(axis=1) / len(pos_np)
    return torch.tensor(fnmr, dtype=torch.float32)


@contextlib.contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Runs the block on one intra-op thread when ``device`` is the CPU: the sample is hundreds of small
    ops, and a parallel region per op cost ~10x their work in thread wake-ups (measured: 1.17 s vs 0.10 s
    of CPU time at N = 20k, 2 threads on a busy 2-core machine)."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _sample_negatives(queries: Tensor, gallery: Tensor, keys: _Keys, metric: str) -> np.ndarray:
    """Distances of about ``SAMPLE_PAIRS`` negative pairs, ascending.

    Queries and gallery items are shuffled and cut into ``n_blocks`` blocks each; block ``b`` of the
    queries meets block ``b`` of the gallery (one ``pairwise_distance`` call, every ``stride``-th pair
    kept if negative; ``stride`` is 1 unless a side is too short for enough blocks). Every query and every
    gallery item appears, each as often, so what is typical of one item (a
    query far from everything) weighs in the sample as it does among all pairs, and the sample quantiles
    err like those of independent pairs. Costs about ``SAMPLE_PAIRS`` distances (a few percent of a pass
    at N = 40k), in ``n_blocks`` small calls (at most ``MAX_SAMPLE_BLOCKS``).
    """
    query_labels, gallery_labels, query_ids, gallery_ids, query_groups, gallery_groups = keys
    n_query, n_gallery = len(queries), len(gallery)
    if n_query == 0 or n_gallery == 0:
        return np.zeros(0)
    # Enough blocks that they hold about the sample itself, and at least 8: every computed pair is kept
    # (stride 1), so the sample costs ~SAMPLE_PAIRS distances, not a fixed share of all pairs (each
    # query still meets ~Ng / n_blocks gallery items, as many as a thinned larger block gave it). At
    # most MAX_SAMPLE_BLOCKS calls: beyond that (N > ~130k) blocks are thinned again, costing at most
    # 1 / MAX_SAMPLE_BLOCKS of a pass.
    n_blocks = -(-n_query * n_gallery // SAMPLE_PAIRS)
    n_blocks = max(1, min(n_query, n_gallery, max(8, min(MAX_SAMPLE_BLOCKS, n_blocks))))
    stride = max(1, -(-(n_query * n_gallery // n_blocks) // SAMPLE_PAIRS))
    generator = torch.Generator().manual_seed(0)
    order_q = torch.randperm(n_query, generator=generator).to(queries.device)
    order_g = torch.randperm(n_gallery, generator=generator).to(queries.device)
    # One array for the whole sample (no list of parts plus their concatenation).
    block_pairs = -(-n_query // n_blocks) * -(-n_gallery // n_blocks)
    sample = torch.empty(n_blocks * -(-block_pairs // stride), dtype=queries.dtype, device=queries.device)
    size = 0
    for block in range(n_blocks):
        rows = order_q[block * n_query // n_blocks : (block + 1) * n_query // n_blocks]
        cols = order_g[block * n_gallery // n_blocks : (block + 1) * n_gallery // n_blocks]
        negative = query_labels[rows, None] != gallery_labels[None, cols]
        if query_ids is not None and gallery_ids is not None:
            negative &= query_ids[rows, None] != gallery_ids[None, cols]
        if query_groups is not None and gallery_groups is not None:
            negative &= query_groups[rows, None] != gallery_groups[None, cols]
        dist = _ops.pairwise_distance(queries[rows], gallery[cols], metric)
        part = dist.view(-1)[::stride][negative.view(-1)[::stride]]
        sample[size : size + len(part)] = part
        size += len(part)
    sample = sample[:size]
    values = (sample.float() if sample.dtype == torch.bfloat16 else sample).cpu().numpy()
    values.sort()
    return values


def _first_windows(sample: np.ndarray, fmr_vals: Sequence[float]) -> list[_Window]:
    """Collected windows around the sample's quantiles (merged where they overlap); the whole line when
    the sample is empty."""
    m = len(sample)
    if m == 0:
        return [_Window(-math.inf, math.inf, n_bins=1, collect=True)]
    bounds = []
    for p in fmr_vals:
        spread = BRACKET_SIGMAS * math.sqrt(p * (1 - p) / m) + 4 / m
        first, last = math.floor((p - spread) * (m - 1)), math.ceil((p + spread) * (m - 1))
        bounds.append(
            (float(sample[first]) if first >= 0 else -math.inf, float(sample[last]) if last < m else math.inf)
        )
    merged: list[list[float]] = []
    for lower, upper in sorted(bounds):
        if merged and lower <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], upper)
        else:
            merged.append([lower, upper])
    return [_Window(lower, upper, n_bins=1, collect=True) for lower, upper in merged]


def _resolve(
    windows: list[_Window], ranks: list[int], args: tuple[Tensor, Tensor, _Keys, str]
) -> dict[int, float]:
    """The negatives of the given ranks (0-based, ascending order), one streaming pass per level."""
    values: dict[int, float] = {}
    pending = ranks
    while pending:
        children: dict[tuple[float, float], tuple[_Window, list[int]]] = {}
        for rank in pending:
            best: tuple[int, float, float] | None = None
            for window in windows:
                value, slot = window.locate(rank)
                if value is not None:
                    values[rank] = value
                    break
                if best is None or slot[0] < best[0]:
                    best = slot
            else:
                assert best is not None
                count, low, high = best
                child = children.setdefault((low, high), (_Window.around(low, high, count), []))
                child[1].append(rank)
        if not children:
            break
        windows = [window for window, _ in children.values()]
        _distance_pass(*args, windows=windows, with_positives=False)
        pending = [rank for _, window_ranks in children.values() for rank in window_ranks]
    return values


__all__ = ["calc_fnmr_at_fmr_all_pairs"]
