"""``_pair_distance_histogram`` (private): typed wrapper and fake kernel of the compiled op.

One pass of FNMR@FMR (:mod:`oml_fast.metrics.fnmr`) over a distance tile. The window is the closed
interval ``[lower, upper]``; every negative pair (labels differ, not excluded) lands in one of
``n_bins + 2`` slots:

- slot ``0``: value ``< lower``;
- slot ``1 + bin``: ``lower <= value <= upper``, ``bin = floor((value - lower) / (upper - lower) * n_bins)``
  clamped to ``[0, n_bins - 1]`` (``0`` when ``n_bins == 1`` or the width is not positive);
- slot ``n_bins + 1``: value ``> upper``.

Values are compared in float64 (the per-element formulas: ``csrc/retrieval/fnmr_common.h``, shared by
the CPU and the CUDA kernels; pure-PyTorch twin: :mod:`oml_fast.reference.fnmr`).

``_embedding_pair_histogram`` (private, CPU, float32 / float64) is a whole pass from the embeddings:
the distances ``pairwise_distance`` gives, panel by panel, through the slots of several windows at once,
never written to a tile that is read again.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["EmbeddingPass", "PairHistogram", "Window", "embedding_pair_histogram", "pair_distance_histogram"]


class PairHistogram(NamedTuple):
    """What one pass returns (every device; order of ``collected`` and ``positives`` unspecified).

    counts (Tensor[n_bins + 2] int64), mins / maxs (Tensor[n_bins + 2] float64): per slot, the number of
        negatives and their exact min and max (``inf`` / ``-inf`` for an empty slot).
    collected (Tensor[K], dist's dtype): the negatives inside the window when ``collect`` (else empty).
    positives (Tensor[P], dist's dtype): the positive pairs' distances when ``with_positives``.
    """

    counts: Tensor
    mins: Tensor
    maxs: Tensor
    collected: Tensor
    positives: Tensor


def pair_distance_histogram(
    dist: Tensor,
    query_labels: Tensor,
    gallery_labels: Tensor,
    query_ids: Tensor | None = None,
    gallery_ids: Tensor | None = None,
    query_groups: Tensor | None = None,
    gallery_groups: Tensor | None = None,
    lower: float = -float("inf"),
    upper: float = float("inf"),
    n_bins: int = 1,
    collect: bool = False,
    with_positives: bool = False,
) -> PairHistogram:
    """Slots (see the module docstring) of the negatives of one distance tile.

    Args:
        dist (Tensor[rows, Ng] float16/bfloat16/float32/float64): distances of a block of queries to the
            gallery (no NaN between negative pairs).
        query_labels (Tensor[rows] int64), gallery_labels (Tensor[Ng] int64): equal labels = positive.
        query_ids, gallery_ids, query_groups, gallery_groups: int64 exclusion keys (a pair with equal id
            or equal group is skipped), each pair given together or not at all.
        lower, upper: the window (``lower <= upper``; infinite bounds only with ``n_bins == 1``).
        n_bins: bins inside the window.
        collect: also return the negatives inside the window.
        with_positives: also return the positives.

    Every tensor is on ``dist``'s device; the op runs there (CPU, CUDA). Raises ``ValueError`` /
    ``TypeError`` naming the argument.

    >>> dist = torch.tensor([[0.0, 1.0, 3.0], [2.0, 4.0, 9.0]])
    >>> labels_q, labels_g = torch.tensor([0, 1]), torch.tensor([0, 0, 1])
    >>> # positives: 0, 1 (row 0), 9 (row 1); negatives: 3 (row 0), 2, 4 (row 1)
    >>> out = pair_distance_histogram(
    ...     dist, labels_q, labels_g, lower=2.5, upper=4.0, n_bins=2, collect=True, with_positives=True)
    >>> out.counts.tolist(), out.mins.tolist(), out.maxs.tolist()
    ([1, 1, 1, 0], [2.0, 3.0, 4.0, inf], [2.0, 3.0, 4.0, -inf])
    >>> sorted(out.collected.tolist()), sorted(out.positives.tolist())
    ([3.0, 4.0], [0.0, 1.0, 9.0])
    """
    return PairHistogram(
        *torch.ops.oml_fast._pair_distance_histogram.default(
            dist,
            query_labels,
            gallery_labels,
            query_ids,
            gallery_ids,
            query_groups,
            gallery_groups,
            float(lower),
            float(upper),
            int(n_bins),
            bool(collect),
            bool(with_positives),
        )
    )


@torch.library.register_fake("oml_fast::_pair_distance_histogram")
def _pair_distance_histogram_fake(
    dist: Tensor,
    query_labels: Tensor,
    gallery_labels: Tensor,
    query_ids: Tensor | None,
    gallery_ids: Tensor | None,
    query_groups: Tensor | None,
    gallery_groups: Tensor | None,
    lower: float,
    upper: float,
    n_bins: int,
    collect: bool,
    with_positives: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    torch._check(dist.dim() == 2, lambda: f"`dist` must be 2-D [rows, Ng], got {tuple(dist.shape)}")
    ctx = torch.library.get_ctx()
    counts = dist.new_empty((n_bins + 2,), dtype=torch.int64)
    mins = dist.new_empty((n_bins + 2,), dtype=torch.float64)
    maxs = dist.new_empty((n_bins + 2,), dtype=torch.float64)
    collected = dist.new_empty((ctx.new_dynamic_size(),))
    positives = dist.new_empty((ctx.new_dynamic_size(),))
    return counts, mins, maxs, collected, positives


class Window(NamedTuple):
    """A window of a pass: ``[lower, upper]`` in ``n_bins`` bins, its inside negatives collected or not."""

    lower: float
    upper: float
    n_bins: int
    collect: bool


class EmbeddingPass(NamedTuple):
    """What one pass from the embeddings returns: per window, the slots as :class:`PairHistogram` gives
    them (``positives`` empty), whether its collection stopped (more than ``max_collect`` inside: then its
    ``collected`` is empty), and the positives' distances when asked."""

    windows: list[PairHistogram]
    overflowed: list[bool]
    positives: Tensor


def embedding_pair_histogram(
    queries: Tensor,
    gallery: Tensor,
    metric: str,
    query_labels: Tensor,
    gallery_labels: Tensor,
    query_ids: Tensor | None,
    gallery_ids: Tensor | None,
    query_groups: Tensor | None,
    gallery_groups: Tensor | None,
    windows: list[Window],
    max_collect: int,
    with_positives: bool = False,
) -> EmbeddingPass:
    """Slots of every window over all pairs of ``pairwise_distance(queries, gallery, metric)``.

    Args:
        queries (Tensor[Nq, D] float32/float64, CPU), gallery (Tensor[Ng, D], the same dtype): embeddings.
        metric: as ``pairwise_distance``.
        query_labels (Tensor[Nq] int64), gallery_labels (Tensor[Ng] int64), query_ids, gallery_ids,
            query_groups, gallery_groups: as :func:`pair_distance_histogram`.
        windows: at least one :class:`Window` (each checked as :func:`pair_distance_histogram` checks its
            window).
        max_collect: a collecting window that finds more negatives than this inside stops collecting.
        with_positives: also return the positive pairs' distances.

    Raises ``ValueError`` / ``TypeError`` naming the argument.

    >>> x = torch.tensor([[0.0], [1.0], [3.0]])
    >>> labels = torch.tensor([0, 0, 1])
    >>> ids = torch.arange(3)
    >>> out = embedding_pair_histogram(
    ...     x, x, "euclidean", labels, labels, ids, ids, None, None, [Window(2.0, 2.5, 1, True)], 10, True)
    >>> # negatives: 3, 2 (row 0 / 1 against item 2) and 3, 2 (item 2 against 0 / 1); positives: 1, 1
    >>> out.windows[0].counts.tolist(), sorted(out.windows[0].collected.tolist()), out.overflowed
    ([0, 2, 2], [2.0, 2.0], [False])
    >>> sorted(out.positives.tolist())
    [1.0, 1.0]
    """
    counts, mins, maxs, collected, overflowed, positives = (
        torch.ops.oml_fast._embedding_pair_histogram.default(
            queries,
            gallery,
            metric,
            query_labels,
            gallery_labels,
            query_ids,
            gallery_ids,
            query_groups,
            gallery_groups,
            [float(w.lower) for w in windows],
            [float(w.upper) for w in windows],
            [int(w.n_bins) for w in windows],
            [bool(w.collect) for w in windows],
            int(max_collect),
            bool(with_positives),
        )
    )
    empty = positives.new_empty(0)
    parts = [
        PairHistogram(c, lo, hi, v, empty) for c, lo, hi, v in zip(counts, mins, maxs, collected, strict=True)
    ]
    return EmbeddingPass(parts, [bool(o) for o in overflowed.tolist()], positives)


@torch.library.register_fake("oml_fast::_embedding_pair_histogram")
def _embedding_pair_histogram_fake(
    queries: Tensor,
    gallery: Tensor,
    metric: str,
    query_labels: Tensor,
    gallery_labels: Tensor,
    query_ids: Tensor | None,
    gallery_ids: Tensor | None,
    query_groups: Tensor | None,
    gallery_groups: Tensor | None,
    lowers: list[float],
    uppers: list[float],
    n_bins: list[int],
    collect: list[bool],
    max_collect: int,
    with_positives: bool,
) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor], Tensor, Tensor]:
    torch._check(queries.dim() == 2, lambda: f"`queries` must be 2-D [Nq, D], got {tuple(queries.shape)}")
    ctx = torch.library.get_ctx()
    counts = [queries.new_empty((b + 2,), dtype=torch.int64) for b in n_bins]
    mins = [queries.new_empty((b + 2,), dtype=torch.float64) for b in n_bins]
    maxs = [queries.new_empty((b + 2,), dtype=torch.float64) for b in n_bins]
    collected = [queries.new_empty((ctx.new_dynamic_size(),)) for _ in n_bins]
    overflowed = queries.new_empty((len(n_bins),), dtype=torch.bool)
    positives = queries.new_empty((ctx.new_dynamic_size(),))
    return counts, mins, maxs, collected, overflowed, positives
