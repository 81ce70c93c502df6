"""RetrievalResults and the post-processors that cut or re-rank them (OML 4.x names)."""

from .postprocessors import (
    AdaptiveThresholding,
    ConstantThresholding,
    KReciprocalReranker,
    PairwiseReranker,
    QueryExpansion,
)
from .retrieval_results import RetrievalResults

__all__ = [
    "RetrievalResults",
    "ConstantThresholding",
    "AdaptiveThresholding",
    "PairwiseReranker",
    "QueryExpansion",
    "KReciprocalReranker",
]
