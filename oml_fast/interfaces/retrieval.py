"""What ``EmbeddingMetrics`` needs from a retrieval post-processor (OML 4.x's ``IRetrievalPostprocessor``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class IRetrievalPostprocessor(ABC):
    """Something that changes retrieval results (cuts, re-orders) before the metrics are computed.

    ``process`` may accept ``dataset`` and ``embeddings`` keyword arguments besides ``rr``;
    :class:`~oml_fast.metrics.EmbeddingMetrics` passes the ones that the signature names.

    The length of the lists it is given is declared by two attributes that ``EmbeddingMetrics``
    reads: ``top_n`` (it works on the first ``top_n`` items: lists are at least that long; None: it
    has no such limit) and ``needs_whole_gallery`` (with no ``top_n``: whether its result depends on
    the list length, so that it must see every gallery item, as OML gives it).
    """

    needs_whole_gallery: bool = True

    @property
    def top_n(self) -> int | None:
        """How many leading items of each list the post-processor works on (None: no such limit)."""
        return None

    @abstractmethod
    def process(self, *args: Any, **kwargs: Any) -> Any:
        """The changed retrieval results; ours take ``rr`` (:class:`RetrievalResults`) first (OML's signature
        is open: any arguments)."""


__all__ = ["IRetrievalPostprocessor"]
