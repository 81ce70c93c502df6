"""Pictures of the worst queries of a validation run (PNG), for the logs of the pipelines.

The pictures come from the validation itself: the queries are ranked by the per-query values of a
metric that :class:`~oml_fast.metrics.EmbeddingMetrics` computed, and drawn from its
:class:`~oml_fast.retrieval.RetrievalResults` (the lists the metrics were computed on, after any
post-processor), so a picture never disagrees with the numbers next to it.
"""

from __future__ import annotations

from pathlib import Path

from oml_fast.const import OVERALL_CATEGORIES_KEY
from oml_fast.metrics import EmbeddingMetrics


def default_worst_queries_metric(metrics: EmbeddingMetrics) -> str | None:
    """The metric that ranks the worst queries: precision at the largest ``k`` (else CMC, else mAP)."""
    for name, top_k in (
        ("precision", metrics.precision_top_k),
        ("cmc", metrics.cmc_top_k),
        ("map", metrics.map_top_k),
    ):
        if top_k:
            return f"{OVERALL_CATEGORIES_KEY}/{name}/{max(top_k)}"
    return None


def save_worst_queries_picture(
    metrics: EmbeddingMetrics,
    save_path: str | Path,
    n_queries: int = 4,
    n_retrieved: int = 5,
    metric_name: str | None = None,
) -> Path | None:
    """Saves a PNG with the ``n_queries`` worst queries by ``metric_name`` and their retrieved items.

    Args:
        metrics: after ``compute_metrics()``; its dataset must draw its items (``visualize``).
        save_path: the PNG to write (folders are created).
        n_queries, n_retrieved: rows, and retrieved items per row.
        metric_name: a flattened per-query metric (``"OVERALL/precision/5"``); default:
            :func:`default_worst_queries_metric`.

    Frames: blue for the query, green for a relevant retrieved item, red otherwise, gray for ground
    truths. Returns the path, or ``None`` when there is nothing to draw (the dataset cannot draw its
    items, no queries, or no per-query metric).
    """
    if n_queries <= 0 or n_retrieved <= 0 or not metrics.ready_to_visualize():
        return None
    rr = metrics.retrieval_results
    if rr is None or len(rr) == 0:
        return None
    metric_name = metric_name or default_worst_queries_metric(metrics)
    if metric_name is None:
        return None
    query_ids = metrics.get_worst_queries_ids(metric_name, n_queries)
    assert metrics.dataset is not None  # ready_to_visualize() says so
    Path(save_path).parent.mkdir(parents=True, exist_ok=True)
    rr.visualize(query_ids, metrics.dataset, n_galleries_to_show=n_retrieved, save_path=str(save_path))
    return Path(save_path)


__all__ = ["save_worst_queries_picture", "default_worst_queries_metric"]
