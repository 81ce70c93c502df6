"""Pure-PyTorch twins of the retrieval ops (``knn``, ``retrieval_relevance``, ``retrieval_metrics``).

They follow docs/metrics.md to the letter and are written for clarity, not speed: ``knn``
materialises the full ``[Nq, Ng]`` distance matrix and the metrics loop over queries in Python. Tests
compare the compiled ops against them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..ops import checks
from .distance import pairwise_distance


def exclusion_mask(
    n_query: int,
    n_gallery: int,
    query_ids: Tensor | None,
    gallery_ids: Tensor | None,
    query_groups: Tensor | None,
    gallery_groups: Tensor | None,
    device: torch.device | None = None,
) -> Tensor:
    """Bool ``[Nq, Ng]``: True where the pair is excluded (equal ids, or equal groups).

    Each pair of keys is given together or not at all (a lone key would silently exclude nothing).
    """
    checks.check_both_or_neither(query_ids, "query_ids", gallery_ids, "gallery_ids")
    checks.check_both_or_neither(query_groups, "query_groups", gallery_groups, "gallery_groups")
    mask = torch.zeros(n_query, n_gallery, dtype=torch.bool, device=device)
    if query_ids is not None and gallery_ids is not None:
        mask |= query_ids[:, None] == gallery_ids[None, :]
    if query_groups is not None and gallery_groups is not None:
        mask |= query_groups[:, None] == gallery_groups[None, :]
    return mask


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
    """Exact k nearest gallery items per query (reference twin of ``oml_fast.ops.knn``).

    Args:
        queries (Tensor[Nq, D]), gallery (Tensor[Ng, D]): float embeddings.
        k: number of neighbours, ``k >= 1``; may exceed ``Ng`` (the rest is padding).
        metric: ``euclidean``, ``sqeuclidean``, ``cosine`` or ``dot``.
        query_ids (Tensor[Nq] int64), gallery_ids (Tensor[Ng] int64): a pair with equal ids is skipped.
        query_groups (Tensor[Nq] int64), gallery_groups (Tensor[Ng] int64): equal groups are skipped.

    Returns:
        ``(distances, indices)``, both ``[Nq, k]``: distances ascending (float32 for half inputs, else
        the input dtype), ties broken by the smaller gallery index; rows with fewer than ``k``
        candidates are padded with ``inf`` and ``-1``.
    """
    checks.check_knn_inputs(queries, gallery, k, metric, query_ids, gallery_ids, query_groups, gallery_groups)
    checks.check_finite(queries, "queries")
    checks.check_finite(gallery, "gallery")
    out_dtype = torch.float32 if queries.dtype in (torch.float16, torch.bfloat16) else queries.dtype
    dist = pairwise_distance(queries.to(out_dtype), gallery.to(out_dtype), metric)
    excluded = exclusion_mask(
        len(queries), len(gallery), query_ids, gallery_ids, query_groups, gallery_groups, queries.device
    )
    dist = dist.masked_fill(excluded, float("inf"))
    # A stable sort gives the smaller index first among equal distances.
    sorted_dist, order = torch.sort(dist, dim=1, stable=True)
    n_valid = (~excluded).sum(dim=1)
    n_take = min(k, len(gallery))
    out_dist = torch.full((len(queries), k), float("inf"), dtype=out_dtype, device=queries.device)
    out_idx = torch.full((len(queries), k), -1, dtype=torch.int64, device=queries.device)
    out_dist[:, :n_take] = sorted_dist[:, :n_take]
    out_idx[:, :n_take] = order[:, :n_take]
    is_padding = torch.arange(k, device=queries.device)[None, :] >= n_valid[:, None]
    out_dist[is_padding] = float("inf")
    out_idx[is_padding] = -1
    return out_dist, out_idx


def retrieval_relevance(
    retrieved: Tensor,
    query_labels: Tensor,
    gallery_labels: Tensor,
    query_ids: Tensor | None = None,
    gallery_ids: Tensor | None = None,
    query_groups: Tensor | None = None,
    gallery_groups: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Relevance of retrieved items and the number of relevant candidates per query.

    Args:
        retrieved (Tensor[Nq, k] int64): gallery indices, ``-1`` for padding (as returned by ``knn``).
        query_labels (Tensor[Nq] int64), gallery_labels (Tensor[Ng] int64).
        query_ids, gallery_ids, query_groups, gallery_groups: the exclusions given to ``knn``.

    Returns:
        ``(is_relevant, n_gt)``: bool ``[Nq, k]`` (False on padding) and int64 ``[Nq]``, the number of
        non-excluded gallery items with the query's label.
    """
    checks.check_relevance_inputs(
        retrieved, query_labels, gallery_labels, query_ids, gallery_ids, query_groups, gallery_groups
    )
    checks.check_retrieved_indices(retrieved, len(gallery_labels))
    valid = retrieved >= 0
    retrieved_labels = gallery_labels[retrieved.clamp_min(0)]
    is_relevant = valid & (retrieved_labels == query_labels[:, None])
    excluded = exclusion_mask(
        len(query_labels),
        len(gallery_labels),
        query_ids,
        gallery_ids,
        query_groups,
        gallery_groups,
        query_labels.device,
    )
    same_label = query_labels[:, None] == gallery_labels[None, :]
    n_gt = (same_label & ~excluded).sum(dim=1).to(torch.int64)
    return is_relevant, n_gt


def retrieval_metrics(
    is_relevant: Tensor,
    n_gt: Tensor,
    n_retrieved: Tensor,
    cmc_top_k: Sequence[int],
    precision_top_k: Sequence[int],
    map_top_k: Sequence[int],
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-query CMC@k, Precision@k and mAP@k, exactly as in metrics.md (a Python loop per query).

    Args:
        is_relevant (Tensor[Nq, K] bool): ``g_i`` for the retrieved list (padding is False).
        n_gt (Tensor[Nq] int64): number of relevant candidates per query.
        n_retrieved (Tensor[Nq] int64): ``L``, the number of valid retrieved items per query (<= K).
        cmc_top_k, precision_top_k, map_top_k: the ``k`` values of each metric.

    Returns:
        ``(cmc, precision, map)``, float32 ``[Nq, len(top_k)]`` each; precision is NaN where ``L > 0``
        and ``n_gt == 0``.
    """
    checks.check_metrics_inputs(is_relevant, n_gt, n_retrieved, cmc_top_k, precision_top_k, map_top_k)
    checks.check_metrics_values(is_relevant, n_gt, n_retrieved)
    n_query = is_relevant.shape[0]
    cmc = torch.zeros(n_query, len(cmc_top_k), dtype=torch.float64)
    precision = torch.zeros(n_query, len(precision_top_k), dtype=torch.float64)
    average_precision = torch.zeros(n_query, len(map_top_k), dtype=torch.float64)
    for q in range(n_query):
        length = int(n_retrieved[q])
        gt = int(n_gt[q])
        g = [bool(v) for v in is_relevant[q, :length].tolist()]
        for column, k in enumerate(cmc_top_k):
            cmc[q, column] = _cmc(g, gt, k)
        for column, k in enumerate(precision_top_k):
            precision[q, column] = _precision(g, gt, k)
        for column, k in enumerate(map_top_k):
            average_precision[q, column] = _average_precision(g, gt, k)
    return cmc.float(), precision.float(), average_precision.float()


def _cmc(g: list[bool], n_gt: int, k: int) -> float:
    if not g:
        return 1.0 if n_gt == 0 else 0.0
    return 1.0 if any(g[:k]) else 0.0


def _precision(g: list[bool], n_gt: int, k: int) -> float:
    if not g:
        return 1.0 if n_gt == 0 else 0.0
    k_clipped = min(k, len(g))
    hits = sum(g[:k_clipped])
    denominator = min(n_gt, k_clipped)
    return hits / denominator if denominator > 0 else float("nan")


def _average_precision(g: list[bool], n_gt: int, k: int) -> float:
    if not g:
        return 1.0 if n_gt == 0 else 0.0
    k_clipped = min(k, len(g))
    hits = 0
    total = 0.0
    for i, relevant in enumerate(g[:k_clipped], start=1):
        if relevant:
            hits += 1
            total += hits / i
    return total / hits if hits > 0 else 0.0
