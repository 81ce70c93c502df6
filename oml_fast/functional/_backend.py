"""The retrieval ops used by the validation layer: compiled when available, else the reference twins.

This is the single place where the validation layer reaches the ops, so that the fallback can be
removed in one edit once every op is compiled.
"""

from __future__ import annotations

from .. import ops as _ops
from ..reference import distance as _ref_distance
from ..reference import retrieval as _ref_retrieval

pairwise_distance = getattr(_ops, "pairwise_distance", _ref_distance.pairwise_distance)
knn = getattr(_ops, "knn", _ref_retrieval.knn)
retrieval_relevance = getattr(_ops, "retrieval_relevance", _ref_retrieval.retrieval_relevance)
retrieval_metrics = getattr(_ops, "retrieval_metrics", _ref_retrieval.retrieval_metrics)

__all__ = ["pairwise_distance", "knn", "retrieval_relevance", "retrieval_metrics"]
