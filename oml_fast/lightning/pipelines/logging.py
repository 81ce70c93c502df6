"""The pipelines' loggers with OML's names (``oml.lightning.pipelines.logging``).

Each is the Lightning logger of its library plus :class:`~oml_fast.interfaces.loggers.IPipelineLogger`'s
two methods: ``log_pipeline_info(cfg)`` stores the run's config as hyperparameters and
``log_figure(fig, title, idx)`` stores a matplotlib figure (the worst queries of a validation).
The packages behind W&B, MLflow, Neptune and ClearML are needed only when such a logger is made.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

import numpy as np
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from oml_fast.interfaces.loggers import IPipelineLogger
from oml_fast.registry.base import to_plain_dict


def figure_to_array(fig: Any) -> np.ndarray:
    """The pixels of a matplotlib figure, ``(H, W, 3)`` uint8."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


class TensorBoardPipelineLogger(TensorBoardLogger, IPipelineLogger):
    """Lightning's ``TensorBoardLogger``; figures go to TensorBoard's images."""

    def log_pipeline_info(self, cfg: Any) -> None:
        self.log_hyperparams(to_plain_dict(cfg))

    @rank_zero_only
    def log_figure(self, fig: Any, title: str, idx: int) -> None:
        self.experiment.add_figure(title, fig, global_step=idx)


class MLFlowPipelineLogger(MLFlowLogger, IPipelineLogger):
    """Lightning's ``MLFlowLogger``; figures go to the run's artifacts as ``<title>_<idx>.png``."""

    def log_pipeline_info(self, cfg: Any) -> None:
        self.log_hyperparams(to_plain_dict(cfg))

    @rank_zero_only
    def log_figure(self, fig: Any, title: str, idx: int) -> None:
        self.experiment.log_figure(run_id=self.run_id, figure=fig, artifact_file=f"{title}_{idx}.png")


class WandBPipelineLogger(WandbLogger, IPipelineLogger):
    """Lightning's ``WandbLogger`` (``WANDB_MODE=offline`` works); figures go to the run's images."""

    def log_pipeline_info(self, cfg: Any) -> None:
        self.log_hyperparams(to_plain_dict(cfg))

    @rank_zero_only
    def log_figure(self, fig: Any, title: str, idx: int) -> None:
        self.log_image(key=title, images=[figure_to_array(fig)])


class _NeptuneMissing(Logger):
    """Stands in for Neptune's Lightning logger when ``neptune`` is not installed: making one fails."""

    def __init__(self, *args: Any, **kwargs: Any):
        raise ImportError(
            "NeptunePipelineLogger needs the package `neptune`, which is not installed: "
            "pip install 'oml-fast[neptune]' (or `pip install neptune`)"
        )


def _neptune_logger_class() -> type:
    """Neptune's Lightning logger (Lightning 2.5+ dropped its own; Neptune ships it), if installed."""
    if importlib.util.find_spec("neptune") is None:
        return _NeptuneMissing
    from neptune.integrations.pytorch_lightning import NeptuneLogger

    return NeptuneLogger


class NeptunePipelineLogger(_neptune_logger_class(), IPipelineLogger):  # type: ignore[misc]
    """Neptune's ``NeptuneLogger`` for Lightning; figures are appended to the run's field ``<title>``."""

    def log_pipeline_info(self, cfg: Any) -> None:
        self.log_hyperparams(to_plain_dict(cfg))

    @rank_zero_only
    def log_figure(self, fig: Any, title: str, idx: int) -> None:
        from neptune.types import File

        self.experiment[title].append(File.as_image(fig), step=idx)


class ClearMLLogger(Logger):
    """A Lightning logger over ClearML (Lightning has none): scalars, hyperparameters, images.

    Args:
        project_name, task_name: the ClearML task; ``offline_mode=True`` (OML's default) keeps it local.
        **kwargs: more arguments of ``clearml.Task.init``.
    """

    def __init__(
        self,
        project_name: str = "oml_fast",
        task_name: str = "train",
        offline_mode: bool = True,
        **kwargs: Any,
    ):
        super().__init__()
        from clearml import Task

        if offline_mode:
            Task.set_offline(offline_mode=True)
        self.task = Task.current_task() or Task.init(project_name=project_name, task_name=task_name, **kwargs)

    @property
    def name(self) -> str:
        return "clearml"

    @property
    def version(self) -> str:
        return str(self.task.id)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        self.task.connect(dict(params) if isinstance(params, Mapping) else vars(params))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.task.get_logger().report_scalar(title=key, series=key, value=value, iteration=step or 0)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.task.get_logger().flush()


class ClearMLPipelineLogger(ClearMLLogger, IPipelineLogger):
    """:class:`ClearMLLogger` with OML's signature (``**kwargs``: ``project_name``, ``task_name``,
    ``offline_mode`` and more of ``clearml.Task.init``); figures go to ClearML's plots."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)

    def log_pipeline_info(self, cfg: Any) -> None:
        self.log_hyperparams(to_plain_dict(cfg))

    @rank_zero_only
    def log_figure(self, fig: Any, title: str, idx: int) -> None:
        self.task.get_logger().report_matplotlib_figure(title=title, series=title, figure=fig, iteration=idx)


__all__ = [
    "ClearMLLogger",
    "ClearMLPipelineLogger",
    "IPipelineLogger",
    "MLFlowPipelineLogger",
    "NeptunePipelineLogger",
    "TensorBoardPipelineLogger",
    "WandBPipelineLogger",
    "figure_to_array",
]
