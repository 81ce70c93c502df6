"""Retrieval ops: streaming exact kNN, relevance of retrieved items, per-query retrieval metrics.

Typed wrappers over ``torch.ops.oml_fast.{knn, retrieval_relevance, retrieval_metrics}`` with their fake
kernels (shape/dtype propagation for ``torch.compile``). Their pure-PyTorch twins, with the same
signatures, are in :mod:`oml_fast.reference.retrieval`; definitions of the metrics: ``docs/metrics.md``.
None of these ops is differentiable.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["knn", "retrieval_relevance", "retrieval_metrics"]

_HALF_TYPES = (torch.float16, torch.bfloat16)


def knn(
    queries: Tensor,
    gallery: Tensor,
    k: int,
    metric: str = "euclidean",
    query_ids: Tensor | None = None,
    gallery_ids: Tensor | None = None,
    query_groups: Tensor | None = None,
    gallery_groups: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Exact ``k`` nearest gallery items of every query, streamed (the ``[Nq, Ng]`` matrix never exists).

    Args:
        queries (Tensor[Nq, D]), gallery (Tensor[Ng, D]): float64, float32, float16 or bfloat16 embeddings
            of one dtype, on one device. NaN or inf values raise a ``RuntimeError``.
        k: number of neighbours, ``k >= 1``; ``k > Ng`` is allowed (the rest of the row is padding).
        metric: ``"euclidean"`` (default), ``"sqeuclidean"``, ``"cosine"`` (``1 - cos``, ``cos = 0`` with a
            zero vector) or ``"dot"`` (``-<q, g>``); smaller is closer for all of them.
        query_ids (Tensor[Nq] int64), gallery_ids (Tensor[Ng] int64): a pair with equal ids is skipped (an
            item that is both query and gallery is kept out of its own results). Give both or neither.
        query_groups (Tensor[Nq] int64), gallery_groups (Tensor[Ng] int64): sequence ids; a gallery item of
            the query's own group is skipped. Give both or neither.

    Returns:
        ``(distances, indices)``, both ``[Nq, k]``: distances ascending (float32 for float16/bfloat16
        inputs, else the input dtype), indices int64 into ``gallery``. Ties are broken by the smaller gallery
        index (deterministic, unlike ``torch.topk``). Rows with fewer than ``k`` candidates are padded with
        distance ``inf`` and index ``-1``. The returned distances are recomputed exactly (not through the
        ``|q|^2 + |g|^2 - 2<q, g>`` expansion), so duplicates get distance exactly 0.

    Memory: the outputs plus a fixed workspace per thread (CPU: one 128 x 1024 GEMM tile) or per tile of
    queries (CUDA). CPU threads: ``torch.get_num_threads()``.

    >>> gallery = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    >>> dist, idx = knn(gallery[:2], gallery, k=3, query_ids=torch.arange(2), gallery_ids=torch.arange(4))
    >>> idx  # the query itself is excluded; items 1 and 3 tie, the smaller index comes first
    tensor([[1, 3, 2],
            [3, 0, 2]])
    >>> dist
    tensor([[1.0000, 1.0000, 2.0000],
            [0.0000, 1.0000, 2.2361]])
    """
    return torch.ops.oml_fast.knn.default(
        queries, gallery, k, metric, query_ids, gallery_ids, query_groups, gallery_groups
    )


@torch.library.register_fake("oml_fast::knn")
def _knn_fake(
    queries: Tensor,
    gallery: Tensor,
    k: int,
    metric: str = "euclidean",
    query_ids: Tensor | None = None,
    gallery_ids: Tensor | None = None,
    query_groups: Tensor | None = None,
    gallery_groups: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    torch._check(queries.dim() == 2 and gallery.dim() == 2, lambda: "`queries` and `gallery` must be 2-D")
    torch._check(queries.shape[1] == gallery.shape[1], lambda: "`queries` and `gallery` must have the same D")
    torch._check(k >= 1, lambda: f"`k` must be a positive integer, got {k}")
    out_dtype = torch.float32 if queries.dtype in _HALF_TYPES else queries.dtype
    n_query = queries.shape[0]
    dist = queries.new_empty((n_query, k), dtype=out_dtype)
    idx = queries.new_empty((n_query, k), dtype=torch.int64)
    return dist, idx


def retrieval_relevance(
    retrieved: Tensor,
    query_labels: Tensor,
    gallery_labels: Tensor,
    query_ids: Tensor | None = None,
    gallery_ids: Tensor | None = None,
    query_groups: Tensor | None = None,
    gallery_groups: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Which retrieved items share the query's label, and how many candidates do (``n_gt``).

    ``n_gt`` is computed by counting labels and ``(label, id)`` / ``(label, group)`` pairs over the
    gallery, in O(Nq * k + Ng) time and memory; no ``[Nq, Ng]`` label matrix is built.

    Args:
        retrieved (Tensor[Nq, k] int64): gallery indices, ``-1`` for padding (as returned by :func:`knn`).
        query_labels (Tensor[Nq] int64), gallery_labels (Tensor[Ng] int64).
        query_ids, gallery_ids, query_groups, gallery_groups: the exclusions given to :func:`knn` (int64,
            ``[Nq]`` / ``[Ng]``, each pair given together or not at all).

    Returns:
        ``(is_relevant, n_gt)``: bool ``[Nq, k]`` (False on padding) and int64 ``[Nq]``, the number of
        non-excluded gallery items with the query's label.

    >>> retrieved = torch.tensor([[1, 2, -1], [0, 2, -1]])
    >>> labels = torch.tensor([7, 7, 8])
    >>> retrieval_relevance(retrieved, labels[:2], labels, torch.arange(2), torch.arange(3))
    (tensor([[ True, False, False],
            [ True, False, False]]), tensor([1, 1]))
    """
    return torch.ops.oml_fast.retrieval_relevance.default(
        retrieved, query_labels, gallery_labels, query_ids, gallery_ids, query_groups, gallery_groups
    )


@torch.library.register_fake("oml_fast::retrieval_relevance")
def _retrieval_relevance_fake(
    retrieved: Tensor,
    query_labels: Tensor,
    gallery_labels: Tensor,
    query_ids: Tensor | None = None,
    gallery_ids: Tensor | None = None,
    query_groups: Tensor | None = None,
    gallery_groups: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    torch._check(retrieved.dim() == 2, lambda: "`retrieved` must be 2-D [Nq, k]")
    torch._check(
        query_labels.shape[0] == retrieved.shape[0], lambda: "`query_labels` must have one label per query"
    )
    is_relevant = retrieved.new_empty(retrieved.shape, dtype=torch.bool)
    n_gt = retrieved.new_empty((retrieved.shape[0],), dtype=torch.int64)
    return is_relevant, n_gt


def _check_top_k(name: str, top_k: Sequence[int]) -> list[int]:
    values = list(top_k) if isinstance(top_k, Sequence) and not isinstance(top_k, str) else None
    if not values or any(isinstance(k, bool) or not isinstance(k, int) or k <= 0 for k in values):
        shown = tuple(top_k) if isinstance(top_k, Sequence) else top_k
        raise ValueError(f"`{name}` must be a non-empty sequence of positive integers, got {shown}")
    return values


def retrieval_metrics(
    is_relevant: Tensor,
    n_gt: Tensor,
    n_retrieved: Tensor,
    cmc_top_k: Sequence[int],
    precision_top_k: Sequence[int],
    map_top_k: Sequence[int],
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-query CMC@k, Precision@k and mAP@k for many ``k`` in one pass (definitions: docs/metrics.md).

    With ``L = n_retrieved``, ``k' = min(k, L)`` and ``hits(k')`` the relevant items among the first
    ``k'``: ``cmc = hits(k') > 0``; ``precision = hits(k') / min(n_gt, k')``; ``map = sum over relevant
    i <= k' of hits(i) / i, divided by hits(k')`` (0 without hits). A query with ``L = 0`` scores 1
    everywhere if ``n_gt = 0``, else 0. A query with ``L > 0`` and ``n_gt = 0`` (every positive excluded)
    has precision NaN (0/0); this op does not warn, the caller should (``EmbeddingMetrics`` does).

    Args:
        is_relevant (Tensor[Nq, K] bool): ``g_i`` of the retrieved list (padding is False).
        n_gt (Tensor[Nq] int64): number of relevant candidates per query, ``>= 0``.
        n_retrieved (Tensor[Nq] int64): ``L``, the number of valid retrieved items per query, in ``[0, K]``.
        cmc_top_k, precision_top_k, map_top_k: non-empty sequences of positive ints (``ValueError``
            otherwise); ``k > L`` is clipped to ``L``.

    Returns:
        ``(cmc, precision, map)``: float32 ``[Nq, len(cmc_top_k)]``, ``[Nq, len(precision_top_k)]``,
        ``[Nq, len(map_top_k)]``.

    >>> g = torch.tensor([[True, False, True, False, False]])
    >>> cmc, precision, ap = retrieval_metrics(g, torch.tensor([10]), torch.tensor([5]), [1], [5], [5])
    >>> cmc, precision, ap
    (tensor([[1.]]), tensor([[0.4000]]), tensor([[0.8333]]))
    """
    cmc_k = _check_top_k("cmc_top_k", cmc_top_k)
    precision_k = _check_top_k("precision_top_k", precision_top_k)
    map_k = _check_top_k("map_top_k", map_top_k)
    return torch.ops.oml_fast.retrieval_metrics.default(
        is_relevant, n_gt, n_retrieved, cmc_k, precision_k, map_k
    )


@torch.library.register_fake("oml_fast::retrieval_metrics")
def _retrieval_metrics_fake(
    is_relevant: Tensor,
    n_gt: Tensor,
    n_retrieved: Tensor,
    cmc_top_k: Sequence[int],
    precision_top_k: Sequence[int],
    map_top_k: Sequence[int],
) -> tuple[Tensor, Tensor, Tensor]:
    torch._check(is_relevant.dim() == 2, lambda: "`is_relevant` must be 2-D [Nq, K]")
    n_query = is_relevant.shape[0]
    return tuple(  # type: ignore[return-value]
        is_relevant.new_empty((n_query, len(top_k)), dtype=torch.float32)
        for top_k in (cmc_top_k, precision_top_k, map_top_k)
    )
