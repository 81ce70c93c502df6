"""Metric functions on retrieval results, with OML 4.x's names (definitions: docs/metrics.md)."""

from .knn import batched_knn, batched_knn_qg
from .metrics import (
    TCategories,
    TMetricsDict,
    calc_cmc,
    calc_fnmr_at_fmr,
    calc_fnmr_at_fmr_by_distances,
    calc_map,
    calc_pcf,
    calc_precision,
    calc_retrieval_metrics,
    calc_topological_metrics,
    flatten_metrics,
    reduce_metrics,
    take_unreduced_metrics_by_mask,
)

__all__ = [
    "TMetricsDict",
    "TCategories",
    "calc_cmc",
    "calc_precision",
    "calc_map",
    "calc_fnmr_at_fmr_by_distances",
    "batched_knn",
    "batched_knn_qg",
    "calc_retrieval_metrics",
    "calc_fnmr_at_fmr",
    "calc_pcf",
    "calc_topological_metrics",
    "reduce_metrics",
    "take_unreduced_metrics_by_mask",
    "flatten_metrics",
]
