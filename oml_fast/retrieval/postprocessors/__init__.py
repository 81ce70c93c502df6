"""Post-processors of retrieval results: thresholding and re-ranking."""

from .k_reciprocal import KReciprocalReranker
from .pairwise import PairwiseReranker
from .query_expansion import QueryExpansion
from .thresholding import AdaptiveThresholding, ConstantThresholding

__all__ = [
    "ConstantThresholding",
    "AdaptiveThresholding",
    "PairwiseReranker",
    "QueryExpansion",
    "KReciprocalReranker",
]
