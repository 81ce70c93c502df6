"""Pure-PyTorch twins of every compiled op, with the same signatures (slow, obviously correct)."""

from .distance import pairwise_distance
from .mining import hard_mining
from .retrieval import knn, retrieval_metrics, retrieval_relevance

__all__ = ["pairwise_distance", "knn", "retrieval_relevance", "retrieval_metrics", "hard_mining"]
