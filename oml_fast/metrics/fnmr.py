"""FNMR@FMR over all query-gallery pairs, exactly, without materialising the distance matrix.

``T = numpy.quantile(negative distances, fmr)`` (linear) and ``fnmr = mean(positive distances >= T)``
(metrics.md). Positive pairs are few (they share a label) and are kept; negative pairs are not:
distances are streamed tile by tile (``pairwise_distance`` on ``[rows, Ng]`` blocks) and

1. the first pass keeps the positives and a histogram of the negatives over a range bounded a priori
   (from the norms), with the exact min / max of every bin;
2. every later pass either collects the negatives of the bins holding the order statistics that the
   quantiles need (when those bins are small) and reads them exactly after a sort, or histograms
   those bins again over their exact [min, max] (a bin of equal values resolves at once).

Memory: one distance tile plus the histograms, the positives and the collected bins.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from .. import ops as _ops
from ..functional.metrics import check_in_unit_range
from ..ops.checks import check_both_or_neither, check_finite
from ..ops.fnmr import pair_distance_histogram

N_BINS = 1 << 16
# Above this many values a bin is histogrammed again instead of being collected.
MAX_COLLECT = 1 << 22
# Distance tile size (elements); bounded memory whatever the gallery size.
TILE_ELEMENTS = 1 << 22


@dataclass
class _Level:
    """Values whose bin (under ``lo``, ``width``, ``n_bins``) equals ``bin``."""

    lo: float
    width: float
    n_bins: int
    bin: int


@dataclass
class _Window:
    """A set of negatives (a chain of bins) holding the order statistics ``ranks``."""

    chain: list[_Level]
    below: int  # number of negatives ranked before this window
    ranks: list[int]
    lo: float = 0.0
    width: float = 1.0
    counts: Tensor | None = None
    mins: Tensor | None = None
    maxs: Tensor | None = None
    collected: list[Tensor] = field(default_factory=list)
    collect: bool = False
    # Exact bounds of the window's values (its parent bin's min and max): a cheap reject per pair.
    lower: float = -math.inf
    upper: float = math.inf


def _a_priori_range(queries: Tensor, gallery: Tensor, metric: str) -> tuple[float, float]:
    max_q = float(queries.double().norm(dim=1).max()) if len(queries) else 0.0
    max_g = float(gallery.double().norm(dim=1).max()) if len(gallery) else 0.0
    if metric == "euclidean":
        return 0.0, max_q + max_g
    if metric == "sqeuclidean":
        return 0.0, (max_q + max_g) ** 2
    if metric == "cosine":
        return 0.0, 2.0
    return -max_q * max_g, max_q * max_g  # dot


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


_Keys = tuple[Tensor, Tensor, "Tensor | None", "Tensor | None", "Tensor | None", "Tensor | None"]


def _factorize_pair(query_keys: Tensor, gallery_keys: Tensor) -> tuple[Tensor, Tensor]:
    """int64 codes of a query/gallery key pair: equal codes exactly where the keys are ``==``."""
    if not (query_keys.is_floating_point() or query_keys.is_complex() or gallery_keys.is_floating_point()):
        return query_keys.long(), gallery_keys.long()
    both = torch.cat([query_keys.reshape(-1).to(torch.float64), gallery_keys.reshape(-1).to(torch.float64)])
    codes = torch.unique(both, return_inverse=True)[1]
    return codes[: len(query_keys)], codes[len(query_keys) :]


def _prepare_keys(
    query_labels: Tensor,
    gallery_labels: Tensor,
    query_ids: Tensor | None,
    gallery_ids: Tensor | None,
    query_groups: Tensor | None,
    gallery_groups: Tensor | None,
) -> _Keys:
    """Labels and exclusion pairs as int64 codes on the CPU (the fused op compares them exactly as
    ``==`` compares the originals); an exclusion counts only when both of its sides are given."""
    if query_ids is None or gallery_ids is None:
        query_ids = gallery_ids = None
    if query_groups is None or gallery_groups is None:
        query_groups = gallery_groups = None
    labels = _factorize_pair(query_labels.cpu(), gallery_labels.cpu())
    ids = (None, None) if query_ids is None else _factorize_pair(query_ids.cpu(), gallery_ids.cpu())  # type: ignore[union-attr]
    groups = (
        (None, None) if query_groups is None else _factorize_pair(query_groups.cpu(), gallery_groups.cpu())  # type: ignore[union-attr]
    )
    return (*labels, *ids, *groups)


def _distance_pass(
    queries: Tensor,
    gallery: Tensor,
    keys: _Keys,
    metric: str,
    windows: list[_Window],
    with_positives: bool,
) -> list[Tensor]:
    """One streaming pass over all pairs, feeding every window; returns the positives if asked.

    Each ``[rows, Ng]`` distance tile is computed where the embeddings live and goes through the fused
    ``_pair_distance_histogram`` op, which runs on the CPU: a CUDA tile is copied to the host (the op
    has no CUDA kernel yet) and a half-precision tile is widened to float32 (exactly).
    """
    query_labels, gallery_labels, query_ids, gallery_ids, query_groups, gallery_groups = keys
    positives: list[Tensor] = []
    rows = max(1, TILE_ELEMENTS // max(1, len(gallery)))
    for start in range(0, len(queries), rows):
        stop = min(start + rows, len(queries))
        dist = _ops.pairwise_distance(queries[start:stop], gallery, metric)
        if dist.dtype not in (torch.float32, torch.float64):
            dist = dist.float()
        dist = dist.cpu()
        for index, window in enumerate(windows):
            counts, mins, maxs, collected, pos = pair_distance_histogram(
                dist,
                query_labels[start:stop],
                gallery_labels,
                None if query_ids is None else query_ids[start:stop],
                gallery_ids,
                None if query_groups is None else query_groups[start:stop],
                gallery_groups,
                [level.lo for level in window.chain],
                [level.width for level in window.chain],
                [level.n_bins for level in window.chain],
                [level.bin for level in window.chain],
                window.lower,
                window.upper,
                window.lo,
                window.width,
                N_BINS,
                window.collect,
                with_positives and index == 0,
            )
            if with_positives and index == 0:
                positives.append(pos.cpu())
            if window.collect:
                window.collected.append(collected.cpu())
            else:
                assert window.counts is not None and window.mins is not None and window.maxs is not None
                window.counts += counts.cpu()
                torch.minimum(window.mins, mins.cpu(), out=window.mins)
                torch.maximum(window.maxs, maxs.cpu(), out=window.maxs)
    return positives


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
        queries (Tensor[Nq, D]), gallery (Tensor[Ng, D]): embeddings.
        query_labels (Tensor[Nq] int64), gallery_labels (Tensor[Ng] int64): equal labels = positive pair.
        fmr_vals: false match rates in ``[0, 1]``.
        query_ids, gallery_ids, query_groups, gallery_groups: exclusions, as for ``knn``.
        metric: distance (as ``pairwise_distance``).

    Returns:
        FloatTensor[len(fmr_vals)], equal to ``calc_fnmr_at_fmr(pos, neg, fmr_vals)`` on the full lists.

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
    keys = _prepare_keys(query_labels, gallery_labels, query_ids, gallery_ids, query_groups, gallery_groups)
    args = (queries, gallery, keys, metric)
    lo, hi = _a_priori_range(queries, gallery, metric)
    root = _Window(chain=[], below=0, ranks=[], lo=lo, width=hi - lo)
    root.counts = torch.zeros(N_BINS, dtype=torch.int64)
    root.mins = torch.full((N_BINS,), math.inf, dtype=torch.float64)
    root.maxs = torch.full((N_BINS,), -math.inf, dtype=torch.float64)
    positives = _distance_pass(*args, windows=[root], with_positives=True)
    n_negative = int(root.counts.sum())
    if n_negative == 0:
        warnings.warn(
            "FNMR@FMR is NaN: there is no negative pair (every pair shares a label or is excluded)",
            stacklevel=2,
        )
        return torch.full((len(fmr_vals),), float("nan"))
    previous, following, gamma = _numpy_quantile_ranks(n_negative, fmr_vals)
    ranks = sorted(set(previous.tolist()) | set(following.tolist()))
    values = _resolve(root, ranks, args)
    pos_all = torch.cat(positives) if positives else torch.zeros(0)
    dtype = pos_all.numpy().dtype
    a = np.array([values[r] for r in previous], dtype=dtype)
    b = np.array([values[r] for r in following], dtype=dtype)
    thresholds = _numpy_lerp(a, b, gamma)
    pos = pos_all.numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        fnmr = (pos[None, :] >= thresholds[:, None]).sum(axis=1) / len(pos)
    return torch.tensor(fnmr, dtype=torch.float32)


def _resolve(root: _Window, ranks: list[int], args: tuple[Tensor, Tensor, _Keys, str]) -> dict[int, float]:
    """Finds the negatives of the given ranks (0-based, ascending order), one streaming pass per level."""
    values: dict[int, float] = {}
    pending = [(root, ranks)]
    while pending:
        next_windows: list[_Window] = []
        for window, window_ranks in pending:
            assert window.counts is not None and window.mins is not None and window.maxs is not None
            cumulative = torch.cumsum(window.counts, 0)
            by_bin: dict[int, list[int]] = {}
            for rank in window_ranks:
                k = int(torch.searchsorted(cumulative, torch.tensor(rank - window.below), right=True))
                by_bin.setdefault(k, []).append(rank)
            for k, bin_ranks in by_bin.items():
                below = window.below + (int(cumulative[k - 1]) if k > 0 else 0)
                low, high = float(window.mins[k]), float(window.maxs[k])
                if low == high:  # all equal: no pass needed
                    values.update({rank: low for rank in bin_ranks})
                    continue
                chain = [*window.chain, _Level(window.lo, window.width, N_BINS, k)]
                child = _Window(
                    chain=chain, below=below, ranks=bin_ranks, lo=low, width=high - low, lower=low, upper=high
                )
                child.collect = int(window.counts[k]) <= MAX_COLLECT
                if not child.collect:
                    child.counts = torch.zeros(N_BINS, dtype=torch.int64)
                    child.mins = torch.full((N_BINS,), math.inf, dtype=torch.float64)
                    child.maxs = torch.full((N_BINS,), -math.inf, dtype=torch.float64)
                next_windows.append(child)
        if not next_windows:
            break
        _distance_pass(*args, windows=next_windows, with_positives=False)
        pending = []
        for child in next_windows:
            if child.collect:
                ordered = torch.sort(torch.cat(child.collected)).values
                values.update({rank: float(ordered[rank - child.below]) for rank in child.ranks})
            else:
                pending.append((child, child.ranks))
    return values


__all__ = ["calc_fnmr_at_fmr_all_pairs"]
