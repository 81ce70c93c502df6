"""Typed wrappers over ``torch.ops.oml_fast.*``, with their fake kernels and autograd formulas.

Importing this package registers the Python side of every op; ``import oml_fast`` does it.
"""

from . import fnmr as _fnmr  # noqa: F401  (registers the private op's fake kernel)
from .distance import pairwise_distance
from .mining import hard_mining
from .retrieval import knn, retrieval_metrics, retrieval_relevance

__all__ = ["pairwise_distance", "knn", "retrieval_relevance", "retrieval_metrics", "hard_mining"]
