"""Exact k nearest neighbours with the gallery split across ranks (``torch.distributed``).

Contract: every rank holds **all queries** and **one shard of the gallery**; the global gallery is the
concatenation of the shards in rank order (rank 0's rows first), so a shard's global offset is the
number of gallery rows on lower ranks. Each rank runs the streaming ``knn`` op on its shard (memory:
its outputs and a tile workspace, never ``n_query x n_gallery``), the per-rank top-k lists are
all-gathered (in chunks of queries, so the buffer stays bounded) and merged by
``(distance, global gallery index)``. The result is the one of a single process on the whole gallery,
on every rank: ascending distances, ties by the smaller global gallery index, rows padded with
``inf`` / ``-1``, and exclusions by global ids and groups (``query_ids`` / ``gallery_ids`` are global
ids such as dataset indices, not positions in the shard).

Why queries are not sharded: a query's top-k needs every gallery shard, so sharding queries too would
require moving gallery shards between ranks; queries are usually the smaller set, and the k-lists
are what travels. In a single process both functions are plain ``knn``.

>>> queries, gallery = torch.tensor([[0.0], [2.0]]), torch.tensor([[1.0], [3.0], [2.0]])
>>> dist, idx = sharded_knn(queries, gallery, k=2)  # one process: the shard is the whole gallery
>>> idx.tolist(), dist.tolist()
([[0, 2], [2, 0]], [[1.0, 2.0], [0.0, 1.0]])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import ops
from .comm import all_gather_object, all_gather_rows_per_rank, get_rank, get_world_size, is_distributed

# Upper bound on the number of (distance, index) pairs of one all-gather round (all ranks together):
# 2^22 pairs are 48 MiB, so merging 10^6 queries x k=100 over 8 ranks never needs 10 GB at once.
GATHER_PAIRS_PER_ROUND = 1 << 22


def merge_topk(distances: Tensor, indices: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Merges candidate lists into the ``k`` best per row: ascending distance, ties by smaller index.

    Args:
        distances (Tensor[N, M] float), indices (Tensor[N, M] int64): candidates, ``-1`` for padding
            (padding sorts after every real candidate, whatever its distance).
        k: the list length of the result (``k >= 1``); missing places are padded with ``inf`` / ``-1``.

    Returns:
        ``(distances, indices)``, ``[N, k]`` each.

    >>> d = torch.tensor([[0.5, 0.25, float("inf"), 0.5]])
    >>> i = torch.tensor([[7, 9, -1, 3]])
    >>> [t.tolist() for t in merge_topk(d, i, 5)]
    [[[0.25, 0.5, 0.5, inf, inf]], [[9, 3, 7, -1, -1]]]
    """
    if distances.shape != indices.shape or distances.ndim != 2:
        raise ValueError(
            f"`distances` and `indices` must be 2-D of one shape, got {tuple(distances.shape)} and "
            f"{tuple(indices.shape)}"
        )
    is_padding = indices < 0
    # Two stable sorts give the lexicographic order (distance, index): first by index (padding last),
    # then by distance; padding also gets an infinite distance so that it stays behind real items.
    index_key = indices.masked_fill(is_padding, torch.iinfo(torch.int64).max)
    by_index = torch.sort(index_key, dim=1, stable=True).indices
    distance_key = distances.gather(1, by_index).masked_fill(is_padding.gather(1, by_index), float("inf"))
    by_distance = torch.sort(distance_key, dim=1, stable=True).indices
    order = by_index.gather(1, by_distance)[:, :k]
    out_dist = distances.gather(1, order)
    out_idx = indices.gather(1, order)
    out_dist = out_dist.masked_fill(out_idx < 0, float("inf"))
    if out_idx.shape[1] < k:
        n, missing = out_idx.shape[0], k - out_idx.shape[1]
        out_dist = torch.cat([out_dist, out_dist.new_full((n, missing), float("inf"))], dim=1)
        out_idx = torch.cat([out_idx, out_idx.new_full((n, missing), -1)], dim=1)
    return out_dist, out_idx


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"`k` must be a positive integer, got {k!r}")
    return k


def sharded_knn(
    queries: Tensor,
    gallery_shard: Tensor,
    k: int,
    metric: str = "euclidean",
    query_ids: Tensor | None = None,
    gallery_ids: Tensor | None = None,
    query_groups: Tensor | None = None,
    gallery_groups: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Exact ``k`` nearest neighbours of all queries in a gallery split across ranks (see the module doc).

    Args:
        queries (Tensor[Nq, D] float): all queries, the same on every rank.
        gallery_shard (Tensor[n_rank, D] float): this rank's gallery rows (``n_rank`` may be 0).
        k: neighbours per query (``k >= 1``); may exceed the shard and the whole gallery (padding).
        metric: ``euclidean``, ``sqeuclidean``, ``cosine`` or ``dot``.
        query_ids (Tensor[Nq] int64), gallery_ids (Tensor[n_rank] int64): global ids; equal ids are
            never retrieved (an item never retrieves itself).
        query_groups (Tensor[Nq] int64), gallery_groups (Tensor[n_rank] int64): equal groups are skipped.

    Returns:
        ``(distances, indices)``, ``[Nq, k]`` each and equal on every rank: indices are **global** gallery
        positions (offset of the shard + position in it), ascending distances, ties by the smaller global
        index, ``inf`` / ``-1`` padding. Identical to ``knn`` on the concatenated gallery.

    Raises ``ValueError`` (on every rank) when ranks disagree on ``Nq``, ``D``, ``k`` or ``metric``.
    """
    k = _check_k(k)
    if queries.ndim != 2 or gallery_shard.ndim != 2 or queries.shape[1] != gallery_shard.shape[1]:
        raise ValueError(
            f"`queries` and `gallery_shard` must be 2-D with equal widths, got {tuple(queries.shape)} and "
            f"{tuple(gallery_shard.shape)}"
        )
    meta = all_gather_object((len(queries), queries.shape[1], k, metric, len(gallery_shard)))
    if len({m[:4] for m in meta}) != 1:
        raise ValueError(
            "every rank must pass the same queries, k and metric; got (n_query, dim, k, metric) per rank: "
            f"{[m[:4] for m in meta]}"
        )
    shard_sizes = [m[4] for m in meta]
    offset = sum(shard_sizes[: get_rank()])
    # No rank can contribute more than its shard: lists longer than the largest shard are padding only.
    k_local = min(k, max(shard_sizes))
    n_query = len(queries)
    out_dtype = torch.float32 if queries.dtype in (torch.float16, torch.bfloat16) else queries.dtype

    if len(gallery_shard) > 0 and k_local > 0:
        local_dist, local_idx = ops.knn(
            queries.contiguous(),
            gallery_shard.contiguous(),
            k_local,
            metric,
            query_ids,
            gallery_ids,
            query_groups,
            gallery_groups,
        )
        local_idx = torch.where(local_idx >= 0, local_idx + offset, local_idx)
    else:
        local_dist = torch.full((n_query, k_local), float("inf"), dtype=out_dtype, device=queries.device)
        local_idx = torch.full((n_query, k_local), -1, dtype=torch.int64, device=queries.device)
    if not is_distributed():
        return merge_topk(local_dist, local_idx, k)

    world_size = get_world_size()
    chunk = max(1, GATHER_PAIRS_PER_ROUND // max(1, world_size * k_local))
    out_dist, out_idx = [], []
    # Every rank runs the same number of rounds (equal n_query), so the collectives pair up.
    for start in range(0, max(n_query, 1), chunk):
        stop = min(start + chunk, n_query)
        dists = all_gather_rows_per_rank(local_dist[start:stop].contiguous())
        idxs = all_gather_rows_per_rank(local_idx[start:stop].contiguous())
        merged = merge_topk(torch.cat(dists, dim=1), torch.cat(idxs, dim=1), k)
        out_dist.append(merged[0])
        out_idx.append(merged[1])
    return torch.cat(out_dist), torch.cat(out_idx)


def shard_bounds(n_items: int, rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(start, stop)`` of ``rank``'s contiguous shard of ``n_items`` (sizes differ by at most one).

    >>> [shard_bounds(10, r, 3) for r in range(3)]
    [(0, 4), (4, 7), (7, 10)]
    """
    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    base, extra = divmod(n_items, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def distributed_knn(
    queries: Tensor,
    gallery: Tensor,
    k: int,
    metric: str = "euclidean",
    query_ids: Tensor | None = None,
    gallery_ids: Tensor | None = None,
    query_groups: Tensor | None = None,
    gallery_groups: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """``knn`` with the signature of the op, for ranks that all hold the whole gallery: each rank searches
    its contiguous slice (:func:`shard_bounds`) and the lists are merged (:func:`sharded_knn`), so the
    search work is split ``world_size`` ways and the result equals ``knn``'s on every rank.

    >>> dist, idx = distributed_knn(torch.tensor([[0.0]]), torch.tensor([[1.0], [-1.0], [5.0]]), k=2)
    >>> idx.tolist()
    [[0, 1]]
    """
    start, stop = shard_bounds(len(gallery))

    def shard(x: Tensor | None) -> Tensor | None:
        return None if x is None else x[start:stop]

    return sharded_knn(
        queries,
        gallery[start:stop],
        k,
        metric,
        query_ids,
        shard(gallery_ids),
        query_groups,
        shard(gallery_groups),
    )


__all__ = ["sharded_knn", "distributed_knn", "merge_topk", "shard_bounds", "GATHER_PAIRS_PER_ROUND"]
