"""The compiled ops the validation layer is built on (one import point, so the layer is easy to audit)."""

from __future__ import annotations

from ..ops import knn, pairwise_distance, retrieval_metrics, retrieval_relevance

__all__ = ["pairwise_distance", "knn", "retrieval_relevance", "retrieval_metrics"]
