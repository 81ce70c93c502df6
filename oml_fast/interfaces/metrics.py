"""What a validation metric offers (OML 4.x's ``oml.interfaces.metrics``).

Pure interfaces: no plotting library is imported here (``visualize`` returns whatever figures the
implementation draws, matplotlib ones for :class:`~oml_fast.metrics.EmbeddingMetrics`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from typing import Any

from torch import LongTensor

from ..const import OVERALL_CATEGORIES_KEY

TIndices = LongTensor | list[int]


class IBasicMetric(ABC):
    """Accumulates model outputs batch by batch (``update_data``), then computes metrics once.

    ``compute_metrics`` returns ``{overall_categories_key: {"metric1": ...}, "category1": {...}, ...}``
    (the categories are optional).
    """

    metric_name = "BASE"
    overall_categories_key = OVERALL_CATEGORIES_KEY

    @abstractmethod
    def setup(self, *args: Any, **kwargs: Any) -> Any:
        """Prepares the accumulation (memory, placeholders); called before the first ``update_data``."""

    @abstractmethod
    def update_data(self, data: dict[str, Any], indices: TIndices) -> None:
        """Stores one batch: ``data`` holds the model outputs, ``indices`` the dataset indices of its items."""

    @abstractmethod
    def compute_metrics(self, *args: Any, **kwargs: Any) -> Any:
        """The metrics of everything collected since ``setup``."""


class IMetricVisualisable(IBasicMetric):
    """A metric that can draw itself (e.g. the worst queries), for loggers."""

    @abstractmethod
    def visualize(self) -> tuple[Collection[Any], Collection[str]]:
        """``(figures, titles)``."""

    @abstractmethod
    def ready_to_visualize(self) -> bool:
        """Whether :meth:`visualize` can run (e.g. the dataset can draw its items)."""


__all__ = ["TIndices", "IBasicMetric", "IMetricVisualisable"]
