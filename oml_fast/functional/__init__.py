"""Metric functions on retrieval results, with OML 4.x's names (definitions: docs/metrics.md)."""

from .metrics import (
    TMetricsDict,
    calc_fnmr_at_fmr,
    calc_pcf,
    calc_retrieval_metrics,
    calc_topological_metrics,
    flatten_metrics,
    reduce_metrics,
    take_unreduced_metrics_by_mask,
)

__all__ = [
    "TMetricsDict",
    "calc_retrieval_metrics",
    "calc_fnmr_at_fmr",
    "calc_pcf",
    "calc_topological_metrics",
    "reduce_metrics",
    "take_unreduced_metrics_by_mask",
    "flatten_metrics",
]
