"""Average query expansion with alpha weights (alpha-QE, Radenovic et al. 2018)."""

from __future__ import annotations

import torch
from torch import Tensor

from ...interfaces import ILabeledDataset, IQueryGalleryDataset, IRetrievalPostprocessor
from ...ops.checks import labels_to_tensor
from ..retrieval_results import RetrievalResults, factorize_sequences


class QueryExpansion(IRetrievalPostprocessor):
    """Replaces each query by a weighted mean of itself and its ``n_neighbors`` first results, then retrieves again.

    ``q' = (q + sum_i w_i g_i) / (1 + sum_i w_i)`` with ``w_i = max(cos(q, g_i), 0) ** alpha``
    (``alpha = 0``: plain average query expansion). The new lists have the same length and the same
    exclusions (the item itself, its sequence) as the input ones.

    Args:
        n_neighbors: how many leading results expand a query (``>= 1``).
        alpha: exponent of the cosine weights (``>= 0``).
        metric: distance of the second retrieval (the one the input results were built with).
    """

    def __init__(self, n_neighbors: int = 2, alpha: float = 3.0, metric: str = "euclidean"):
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, int) or n_neighbors < 1:
            raise ValueError(f"`n_neighbors` must be a positive integer, got {n_neighbors!r}")
        if alpha < 0:
            raise ValueError(f"`alpha` must be non-negative, got {alpha}")
        self.n_neighbors, self.alpha, self.metric = n_neighbors, float(alpha), metric

    @property
    def top_n(self) -> int:
        """How many results each query needs (``EmbeddingMetrics`` retrieves at least this many)."""
        return self.n_neighbors

    def expand(self, queries: Tensor, gallery: Tensor, retrieved: Tensor) -> Tensor:
        """Expanded queries ``[Nq, D]`` from ``retrieved [Nq, K]`` gallery ids (``-1`` = none)."""
        neighbors = retrieved[:, : self.n_neighbors]
        valid = neighbors >= 0
        vectors = gallery[neighbors.clamp_min(0)].float()  # [Nq, n, D]
        cosine = torch.nn.functional.cosine_similarity(queries.float()[:, None, :], vectors, dim=-1)
        weights = cosine.clamp_min(0) ** self.alpha if self.alpha > 0 else torch.ones_like(cosine)
        weights = weights * valid
        expanded = (queries.float() + (weights[..., None] * vectors).sum(1)) / (
            1 + weights.sum(1, keepdim=True)
        )
        return expanded.to(queries.dtype)

    def process(  # type: ignore[override]
        self, rr: RetrievalResults, dataset: IQueryGalleryDataset, embeddings: Tensor
    ) -> RetrievalResults:
        query_ids = torch.as_tensor(dataset.get_query_ids()).long()
        gallery_ids = torch.as_tensor(dataset.get_gallery_ids()).long()
        if len(query_ids) != len(rr):
            raise ValueError(f"the dataset has {len(query_ids)} queries but the results {len(rr)}")
        if len(embeddings) != len(dataset):
            raise ValueError(f"`embeddings` must have {len(dataset)} rows, got {len(embeddings)}")
        device = embeddings.device
        gallery = embeddings[gallery_ids.to(device)]
        queries = self.expand(embeddings[query_ids.to(device)], gallery, rr.retrieved_ids_dense.to(device))
        sequences = factorize_sequences(dataset)
        labels = labels_to_tensor(dataset.get_labels()) if isinstance(dataset, ILabeledDataset) else None
        return RetrievalResults._retrieve(
            queries,
            gallery,
            max(rr.retrieved_ids_dense.shape[1], 1),
            self.metric,
            query_ids,
            gallery_ids,
            None if sequences is None else sequences[0][query_ids],
            None if sequences is None else sequences[0][gallery_ids],
            None if labels is None else labels[query_ids],
            None if labels is None else labels[gallery_ids],
        )


__all__ = ["QueryExpansion"]
