"""The pipelines' loggers by name (OML's ``oml.registry.loggers``).

The classes are Lightning loggers from :mod:`oml_fast.lightning.pipelines.logging`, so this module
needs the ``pipeline`` extra (the rest of ``oml_fast.registry`` does not).
"""

from __future__ import annotations

from typing import Any

from oml_fast.lightning.pipelines.logging import (
    ClearMLPipelineLogger,
    IPipelineLogger,
    MLFlowPipelineLogger,
    NeptunePipelineLogger,
    TensorBoardPipelineLogger,
    WandBPipelineLogger,
)
from oml_fast.registry.base import Registry, block_name_args

LOGGERS_REGISTRY = Registry(
    "loggers",
    {
        "wandb": WandBPipelineLogger,
        "neptune": NeptunePipelineLogger,
        "tensorboard": TensorBoardPipelineLogger,
        "mlflow": MLFlowPipelineLogger,
        "clearml": ClearMLPipelineLogger,
    },
)


def get_logger(name: str, **kwargs: Any) -> IPipelineLogger:
    """``LOGGERS_REGISTRY[name](**kwargs)`` (as OML: ``name`` is the registry's; pass a logger's own
    ``name`` through :func:`get_logger_by_cfg`)."""
    return LOGGERS_REGISTRY[name](**kwargs)


def get_logger_by_cfg(cfg: Any) -> IPipelineLogger:
    """The logger of a ``{name, args}`` block (its ``args`` may hold the logger's own ``name``)."""
    name, args = block_name_args(cfg)
    return LOGGERS_REGISTRY[name](**args)


__all__ = ["LOGGERS_REGISTRY", "get_logger", "get_logger_by_cfg"]
