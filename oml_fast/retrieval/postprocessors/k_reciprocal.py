"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017), in bounded memory: only each query's retrieved list is re-ranked.

Steps, on the items that are queries or gallery items:

1. ``k1 + 1`` nearest neighbours of every item (itself included), by the ``knn`` op.
2. ``R(i)``: the neighbours ``j`` of ``i`` that have ``i`` among their own ``k1 + 1`` neighbours;
   expanded by ``R_half(c)`` (same with ``round(k1 / 2)``) of each ``c`` in ``R(i)`` when more than
   2/3 of ``R_half(c)`` lies in ``R(i)``.
3. ``V_i[j] = exp(-d(i, j)) / sum`` over the expanded set (``d`` divided by the largest distance of
   ``i`` to any item, as the original divides each row by its maximum; euclidean distances are
   squared first, as there), then averaged over the ``k2`` nearest neighbours (local query expansion).
4. ``jaccard(q, g) = 1 - m / (2 - m)`` with ``m = sum_j min(V_q[j], V_g[j])``;
   ``final = (1 - lambda) * jaccard + lambda * d(q, g)``; each retrieved list is re-sorted by it.

Exclusions (the item itself, its sequence) are kept: lists are only re-ordered, never extended.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ... import ops
from ...interfaces import IQueryGalleryDataset, IRetrievalPostprocessor
from ..query_gallery import QueryGalleryKeys
from ..retrieval_results import RetrievalResults

_TILE_ELEMENTS = 1 << 22


def _row_max_distance(x: Tensor, metric: str) -> Tensor:
    out = torch.empty(len(x), dtype=torch.float64)
    rows = max(1, _TILE_ELEMENTS // max(1, len(x)))
    for start in range(0, len(x), rows):
        out[start : start + rows] = (
            ops.pairwise_distance(x[start : start + rows], x, metric).amax(1).double().cpu()
        )
    return out


def _paired_distance(a: Tensor, b: Tensor, metric: str) -> Tensor:
    """Distance between rows ``a[i]`` and ``b[i]`` (same definitions as ``pairwise_distance``)."""
    a, b = a.double(), b.double()
    if metric == "dot":
        return -(a * b).sum(-1)
    if metric == "cosine":
        return (1 - torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=1e-12)).clamp(0, 2)
    squared = ((a - b) ** 2).sum(-1)
    return squared if metric == "sqeuclidean" else squared.sqrt()


def _reciprocal(neighbors: Tensor, k: int) -> Tensor:
    """``[n, k + 1]``: neighbours ``j`` of ``i`` (first ``k + 1``) having ``i`` among theirs; ``-1`` elsewhere."""
    forward = neighbors[:, : k + 1]
    backward = neighbors[forward.clamp_min(0), : k + 1]  # [n, k+1, k+1]
    me = torch.arange(len(neighbors))[:, None, None]
    mutual = (backward == me).any(-1) & (forward >= 0)
    return torch.where(mutual, forward, torch.full_like(forward, -1))


class KReciprocalReranker(IRetrievalPostprocessor):
    """Re-ranks retrieved lists by k-reciprocal encoding (Zhong et al. 2017); lists keep their lengths.

    Args:
        k1: neighbourhood size of the reciprocal sets (paper: 20).
        k2: neighbours averaged in the local query expansion (paper: 6; 1 disables it).
        lambda_value: weight of the original distance (paper: 0.3).
        metric: distance of the retrieval the results came from.
    """

    # Re-ranks the lists it is given (of the largest k in EmbeddingMetrics), never whole galleries.
    needs_whole_gallery = False

    def __init__(self, k1: int = 20, k2: int = 6, lambda_value: float = 0.3, metric: str = "euclidean"):
        if k1 < 1 or k2 < 1:
            raise ValueError(f"`k1` and `k2` must be positive, got {k1} and {k2}")
        if not 0 <= lambda_value <= 1:
            raise ValueError(f"`lambda_value` must be in [0, 1], got {lambda_value}")
        self.k1, self.k2, self.lambda_value, self.metric = k1, k2, float(lambda_value), metric

    def _transform(self, d: Tensor) -> Tensor:
        return d.double() ** 2 if self.metric == "euclidean" else d.double()

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Sparse ``V`` of every row of ``x``: (sorted keys ``row * n + col``, values, row maxima)."""
        n = len(x)
        k1 = min(self.k1, n - 1)
        k_half = min(int(round(self.k1 / 2)), n - 1)
        _, neighbors = ops.knn(x, x, k1 + 1, self.metric)
        neighbors = neighbors.cpu()
        row_max = self._transform(_row_max_distance(x, self.metric)).clamp_min(1e-12)
        reciprocal = _reciprocal(neighbors, k1)  # [n, k1+1]
        half = _reciprocal(neighbors, k_half)  # [n, kh+1]
        candidates_half = half[reciprocal.clamp_min(0)]  # [n, k1+1, kh+1]
        in_r = (candidates_half[..., None] == reciprocal[:, None, None, :]).any(-1) & (candidates_half >= 0)
        size_half = (candidates_half >= 0).sum(-1)
        expand = (in_r.sum(-1) > 2 / 3 * size_half) & (reciprocal >= 0)
        extra = torch.where(expand[..., None], candidates_half, torch.full_like(candidates_half, -1))
        members = torch.cat([reciprocal, extra.reshape(n, -1)], dim=1)
        members = torch.sort(members, dim=1).values
        duplicate = torch.zeros_like(members, dtype=torch.bool)
        duplicate[:, 1:] = members[:, 1:] == members[:, :-1]
        valid = (members >= 0) & ~duplicate
        rows = torch.arange(n)[:, None].expand_as(members)
        dist = torch.zeros(members.shape, dtype=torch.float64)
        dist[valid] = self._transform(_paired_distance(x[rows[valid]], x[members[valid]], self.metric).cpu())
        weights = torch.where(valid, torch.exp(-dist / row_max[:, None]), torch.zeros_like(dist))
        weights = weights / weights.sum(1, keepdim=True).clamp_min(1e-300)
        keys, values = rows[valid] * n + members[valid], weights[valid]
        if self.k2 > 1:
            # V_i <- mean of V_j over the k2 nearest neighbours j of i (i included).
            expansion = neighbors[:, : min(self.k2, n)]
            row_of_key, col_of_key = keys // n, keys % n
            order = torch.argsort(row_of_key, stable=True)
            counts = torch.bincount(row_of_key, minlength=n)
            starts = torch.cumsum(counts, 0) - counts
            owners = torch.arange(n)[:, None].expand_as(expansion)[expansion >= 0]
            sources = expansion[expansion >= 0]
            sizes = counts[sources]
            owner_rep = torch.repeat_interleave(owners, sizes)
            offsets = torch.arange(int(sizes.sum())) - torch.repeat_interleave(
                torch.cumsum(sizes, 0) - sizes, sizes
            )
            picked = order[torch.repeat_interleave(starts[sources], sizes) + offsets]
            n_sources = torch.bincount(owners, minlength=n).double()
            new_keys = owner_rep * n + col_of_key[picked]
            keys, inverse = torch.unique(new_keys, sorted=True, return_inverse=True)
            values = torch.zeros(len(keys), dtype=torch.float64).index_add_(
                0, inverse, values[picked] / n_sources[owner_rep]
            )
        return keys, values, row_max

    def process(  # type: ignore[override]
        self, rr: RetrievalResults, dataset: IQueryGalleryDataset, embeddings: Tensor
    ) -> RetrievalResults:
        search_keys = QueryGalleryKeys.from_dataset(dataset)
        query_ids, gallery_ids = search_keys.query_ids, search_keys.gallery_ids
        if len(query_ids) != len(rr):
            raise ValueError(f"the dataset has {len(query_ids)} queries but the results {len(rr)}")
        items, position = torch.unique(torch.cat([query_ids, gallery_ids]), return_inverse=True)
        q_pos, g_pos = position[: len(query_ids)], position[len(query_ids) :]
        keys, values, row_max = self.encode(embeddings[items.to(embeddings.device)].contiguous())
        n = len(items)
        retrieved = rr.retrieved_ids_dense
        valid = retrieved >= 0
        pair_q = q_pos[:, None].expand_as(retrieved)[valid]
        pair_g = g_pos[retrieved[valid]]
        # sum_j min(V_q[j], V_g[j]): for every support entry of V_q, look V_g up by key.
        row_of_key = keys // n
        counts = torch.bincount(row_of_key, minlength=n)
        starts = torch.cumsum(counts, 0) - counts
        sizes = counts[pair_q]
        pair_rep = torch.repeat_interleave(torch.arange(len(pair_q)), sizes)
        offsets = torch.arange(int(sizes.sum())) - torch.repeat_interleave(
            torch.cumsum(sizes, 0) - sizes, sizes
        )
        q_entries = torch.repeat_interleave(starts[pair_q], sizes) + offsets
        lookup = pair_g[pair_rep] * n + keys[q_entries] % n
        found = torch.searchsorted(keys, lookup).clamp_max(max(len(keys) - 1, 0))
        g_values = torch.where(
            keys[found] == lookup, values[found], torch.zeros_like(lookup, dtype=torch.float64)
        )
        overlap = torch.zeros(len(pair_q), dtype=torch.float64).index_add_(
            0, pair_rep, torch.minimum(values[q_entries], g_values)
        )
        jaccard = 1 - overlap / (2 - overlap)
        original = self._transform(rr.distances_dense[valid]) / row_max[pair_q]
        final = torch.full(retrieved.shape, float("inf"), dtype=torch.float64)
        final[valid] = (1 - self.lambda_value) * jaccard + self.lambda_value * original
        final, order = torch.sort(final, dim=1, stable=True)
        return rr.with_lists(final.to(rr.distances_dense.dtype), torch.gather(retrieved, 1, order))


__all__ = ["KReciprocalReranker"]
