"""EmbeddingMetrics: validation metrics of embeddings (OML 4.x API)."""

from ..functional.metrics import calc_topological_metrics
from .embeddings import EmbeddingMetrics, calc_fnmr_at_fmr_rr, calc_retrieval_metrics_rr
from .fnmr import calc_fnmr_at_fmr_all_pairs

__all__ = [
    "EmbeddingMetrics",
    "calc_retrieval_metrics_rr",
    "calc_fnmr_at_fmr_rr",
    "calc_topological_metrics",
    "calc_fnmr_at_fmr_all_pairs",
]
