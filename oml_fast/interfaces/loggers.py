"""What a logger of the pipelines offers (OML 4.x's ``oml.interfaces.loggers``).

``IPipelineLogger`` is a Lightning logger: importing this module needs the ``pipeline`` extra
(``lightning``); without it the import raises :class:`~oml_fast.errors.MissingExtraError` naming the extra.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from ..errors import require_extra

_lightning_loggers = require_extra("lightning.pytorch.loggers", "oml_fast.interfaces.loggers")


class IFigureLogger:
    """A logger that can store figures (matplotlib figures: the worst queries of a validation)."""

    @abstractmethod
    def log_figure(self, fig: Any, title: str, idx: int) -> None:
        """Stores ``fig`` under ``title`` for step / epoch ``idx``."""
        raise NotImplementedError


class IPipelineLogger(_lightning_loggers.Logger, IFigureLogger):  # type: ignore[misc,name-defined]
    """A Lightning logger that also logs figures and the pipeline's config."""

    @abstractmethod
    def log_pipeline_info(self, cfg: Any) -> None:
        """Stores the config of the run (and whatever else identifies it)."""
        raise NotImplementedError


__all__ = ["IFigureLogger", "IPipelineLogger"]
