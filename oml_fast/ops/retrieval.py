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

from . import checks

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
            of one dtype, on one device (half precision is searched in float32, on the CPU by upcasting).
            NaN or inf values raise a ``ValueError``.
        k: number of neighbours, ``k >= 1``; ``k > Ng`` is allowed (the rest of the row is padding).
        metric: ``"euclidean"`` (default), ``"sqeuclidean"``, ``"cosine"`` (``1 - cos``, ``cos = 0`` with a
            zero vector) or ``"dot"`` (``-<q, g>``); smaller is closer for all of them.
        query_ids (Tensor[Nq] int64), gallery_ids (Tensor[Ng] int64): a pair with equal ids is skipped (an
            item that is both query and gallery is kept out of its own results). Give both or neither.
        query_groups (Tensor[Nq] int64), gallery_groups (Tensor[Ng] int64): sequence ids; a gallery item of
            the query's own group is skipped. Give both or neither.

    Returns:
        ``(distances, indices)``, both ``[Nq, k]``: distances ascending (float32 for float16/bfloat16
        inputs on every device, so that near ties stay ordered; else the input dtype), indices int64 into ``gallery``. Ties are broken by the smaller gallery
        index (deterministic, unlike ``torch.topk``). Rows with fewer than ``k`` candidates are padded with
        distance ``inf`` and index ``-1``. The returned distances are recomputed exactly (not through the
        ``|q|^2 + |g|^2 - 2<q, g>`` expansion), so duplicates get distance exactly 0.

    Exact for every input: the GEMM's rounding error is bounded per gallery item (also under
    ``torch.set_float32_matmul_precision("high" / "medium")``), and every item that can be in the top k is
    kept and recomputed. Magnitudes: right from 1e-20 to 1e18 in float32 and to 1e150 in float64 (data far
    from 1 is searched as a copy scaled by a power of two; the cosine counts only an all-zero row as zero).
    ``k`` beyond the gallery size is padding, up to a padded output of 2**28 entries (else ``ValueError``).

    Memory: the outputs plus a workspace budgeted in bytes, whatever ``k`` (CPU: one 256 x 1024 GEMM tile
    and 32 MiB of candidate buffers per thread; CUDA: per tile of queries). CPU threads:
    ``torch.get_num_threads()``.

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
    if not checks.checks_deferred():
        checks.check_knn_inputs(
            queries, gallery, k, metric, query_ids, gallery_ids, query_groups, gallery_groups
        )
    out_dtype = torch.float32 if queries.dtype in _HALF_TYPES else queries.dtype
    # k < 1 (an error at run time) gets one column, not an empty output: Inductor drops ops whose outputs
    # are empty, and with them the error.
    n_query, k = (queries.shape[0] if queries.dim() > 0 else 0), (k if k >= 1 else 1)
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
        retrieved (Tensor[Nq, k] int64): gallery indices, ``-1`` for padding (as returned by :func:`knn`);
            others raise ``IndexError``.
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
    if not checks.checks_deferred():
        checks.check_relevance_inputs(
            retrieved, query_labels, gallery_labels, query_ids, gallery_ids, query_groups, gallery_groups
        )
    shape = retrieved.shape if retrieved.dim() == 2 else (0, 0)
    is_relevant = retrieved.new_empty(shape, dtype=torch.bool)
    n_gt = retrieved.new_empty((shape[0],), dtype=torch.int64)
    return is_relevant, n_gt


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
    # The `int[]` schema cannot carry every bad top_k (floats, bools, ...), so they are checked here;
    # under torch.compile the error is raised when the graph runs, as the op's own checks are.
    lists = {"cmc_top_k": cmc_top_k, "precision_top_k": precision_top_k, "map_top_k": map_top_k}
    for name, top_k in lists.items():
        message = checks.top_k_error(name, top_k)
        if message is not None:
            is_relevant = checks.raise_or_defer(ValueError, message, is_relevant)
            lists[name] = [1]
    cmc_k, precision_k, map_k = (list(checks.check_top_k(name, top_k)) for name, top_k in lists.items())
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
    if not checks.checks_deferred():
        checks.check_metrics_inputs(is_relevant, n_gt, n_retrieved, cmc_top_k, precision_top_k, map_top_k)
    n_query = is_relevant.shape[0] if is_relevant.dim() > 0 else 0
    return tuple(  # type: ignore[return-value]
        is_relevant.new_empty((n_query, len(top_k)), dtype=torch.float32)
        for top_k in (cmc_top_k, precision_top_k, map_top_k)
    )
