"""Typed wrappers over ``torch.ops.oml_fast.*``, with their fake kernels and autograd formulas.

Importing this package registers the Python side of every op; ``import oml_fast`` does it.
"""

from .distance import pairwise_distance

__all__ = ["pairwise_distance"]
from .retrieval import knn, retrieval_metrics, retrieval_relevance  # noqa: E402

__all__ += ["knn", "retrieval_relevance", "retrieval_metrics"]
