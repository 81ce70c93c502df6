"""The pipelines' loggers with OML's names (``oml.lightning.pipelines.logging``).

Each is a Lightning logger (Lightning's own for TensorBoard, MLflow and W&B; ours for Neptune 1.x and
ClearML, which Lightning 2.6 has none for) plus :class:`~oml_fast.interfaces.loggers.IPipelineLogger`'s
two methods: ``log_pipeline_info(cfg)`` stores the run's config as hyperparameters and
``log_figure(fig, title, idx)`` stores a matplotlib figure (the worst queries of a validation).
The packages behind W&B, MLflow, Neptune and ClearML are needed only when such a logger is made.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from lightning.fabric.utilities.logger import _flatten_dict
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
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


class NeptuneLogger(Logger):
    """A Lightning logger over ``neptune`` 1.x, with the arguments of Lightning's ``NeptuneLogger``
    (Lightning 2.6 replaced its own by a stub that only raises; Neptune 1.x's integration imports that stub).

    Metrics go to ``<prefix>/<key>`` (appended at ``step``), hyperparameters to ``<prefix>/hyperparams``,
    the final status to ``<prefix>/status`` and, with ``log_model_checkpoints``, the best and last
    checkpoints to ``<prefix>/model/checkpoints/<name>``. ``mode="offline"`` (a ``neptune.init_run``
    argument) keeps the run on disk under ``$NEPTUNE_DATA_DIRECTORY`` (default ``./.neptune``).

    Args:
        api_key: Neptune's API token (default: ``$NEPTUNE_API_TOKEN``; offline runs need none).
        project: ``"workspace/project"`` (default: ``$NEPTUNE_PROJECT``).
        name: the run's name.
        run: an existing ``neptune.Run`` (or a handler inside one) to log to instead of a new run.
        log_model_checkpoints: upload the checkpoints of ``ModelCheckpoint``.
        prefix: the namespace of everything the logger writes (``""``: the run's root).
        **neptune_run_kwargs: more arguments of ``neptune.init_run`` (``mode``, ``tags``, ...).
    """

    LOGGER_JOIN_CHAR = "/"
    PARAMETERS_KEY = "hyperparams"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        project: str | None = None,
        name: str | None = None,
        run: Any = None,
        log_model_checkpoints: bool | None = True,
        prefix: str = "training",
        **neptune_run_kwargs: Any,
    ):
        if importlib.util.find_spec("neptune") is None:
            raise ImportError(
                "NeptuneLogger needs the package `neptune`, which is not installed: "
                "pip install 'oml-fast[neptune]' (or `pip install neptune`)"
            )
        if run is not None and (any(a is not None for a in (api_key, project, name)) or neptune_run_kwargs):
            raise ValueError(
                "`run`: an existing Neptune run takes no `api_key`, `project`, `name` or init_run arguments"
            )
        super().__init__()
        self._log_model_checkpoints = bool(log_model_checkpoints)
        self._prefix = prefix
        self._run_name = name
        self._init_args: dict[str, Any] = {
            k: v for k, v in {"api_token": api_key, "project": project, "name": name}.items() if v is not None
        }
        self._init_args.update(neptune_run_kwargs)
        self._run_instance = run
        self._owns_run = run is None  # a run the user made stays theirs to stop
        self._run_short_id: str | None = None
        self._uploaded: dict[str, int] = {}
        if run is not None:
            self._read_run_ids()

    def _read_run_ids(self) -> None:
        root = self._run_instance
        root = root.get_root_object() if hasattr(root, "get_root_object") else root
        root.wait()
        if root.exists("sys/id"):  # offline runs have no id until they are synced
            self._run_short_id = root["sys/id"].fetch()
            self._run_name = root["sys/name"].fetch()
        else:
            self._run_short_id, self._run_name = "OFFLINE", self._run_name or "offline-name"

    def _key(self, *keys: str) -> str:
        return self.LOGGER_JOIN_CHAR.join([self._prefix, *keys] if self._prefix else keys)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The ``neptune.Run`` (made on first use)."""
        return self.run

    @property
    @rank_zero_experiment
    def run(self) -> Any:
        """The ``neptune.Run`` (made on first use)."""
        if self._run_instance is None:
            import neptune

            self._run_instance = neptune.init_run(**self._init_args)
            self._read_run_ids()
        return self._run_instance

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        from neptune.utils import stringify_unsupported

        params = dict(params) if isinstance(params, Mapping) else vars(params)
        self.run[self._key(self.PARAMETERS_KEY)] = stringify_unsupported(params)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.run[self._key(key)].append(float(value), step=step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if not self._log_model_checkpoints:
            return
        from neptune.types import File

        for path in {getattr(checkpoint_callback, a, "") for a in ("last_model_path", "best_model_path")} - {
            ""
        }:
            written = os.stat(path).st_mtime_ns  # a file is uploaded once per version (Lightning calls twice)
            if self._uploaded.get(path) != written:
                self._uploaded[path] = written
                with open(path, "rb") as stream:  # the bytes now: the file is rewritten later
                    self.run[self._key("model", "checkpoints", Path(path).stem)] = File.from_stream(stream)
        if getattr(checkpoint_callback, "best_model_path", ""):
            self.run[self._key("model", "best_model_path")] = checkpoint_callback.best_model_path
        score = getattr(checkpoint_callback, "best_model_score", None)
        if score is not None:
            self.run[self._key("model", "best_model_score")] = float(score)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._run_instance is not None and status:
            self.run[self._key("status")] = status

    @rank_zero_only
    def close(self) -> None:
        """Stops the run this logger made (writes out what is queued); a later use makes a new run."""
        if self._owns_run and self._run_instance is not None:
            self._run_instance.stop()
            self._run_instance = None

    @property
    def save_dir(self) -> str:
        """Where offline runs are kept: ``$NEPTUNE_DATA_DIRECTORY`` or ``./.neptune``."""
        return os.path.abspath(os.environ.get("NEPTUNE_DATA_DIRECTORY", ".neptune"))

    @property
    def name(self) -> str | None:
        return self._run_name

    @property
    def version(self) -> str | None:
        """The run's short id (``"OFFLINE"`` for an offline run)."""
        return self._run_short_id


class NeptunePipelineLogger(NeptuneLogger, IPipelineLogger):
    """:class:`NeptuneLogger`; figures are appended to the run's image series ``<title>`` at step ``idx``."""

    def log_pipeline_info(self, cfg: Any) -> None:
        self.log_hyperparams(to_plain_dict(cfg))

    @rank_zero_only
    def log_figure(self, fig: Any, title: str, idx: int) -> None:
        from neptune.types import File

        self.experiment[title].append(File.as_image(fig), step=idx)


class ClearMLLogger(Logger):
    """A Lightning logger over ClearML (Lightning has none; OML's ``ClearMLLogger``): scalars,
    hyperparameters (flattened, ``/``-joined) and, in :class:`ClearMLPipelineLogger`, figures.

    Uses the current ClearML task when there is one, else makes one. With ``offline_mode=True`` (OML's
    default) nothing leaves the machine: ClearML keeps the session in
    ``<$CLEARML_CACHE_DIR or ~/.clearml/cache>/offline/<task id>`` and zips it when the task closes.

    Args (keywords, OML's ``**kwargs``):
        project_name, task_name: the task's project and name (default ``None``: ClearML's defaults).
        task_type: a ``clearml.Task.TaskTypes`` name or member (default ``training``).
        offline_mode: switch ClearML to offline mode, for the whole process as ClearML does (default ``True``).
        anything else: arguments of ``clearml.Task.init`` (``tags``, ``auto_connect_frameworks``, ...).
    """

    def __init__(self, **kwargs: Any):
        super().__init__()
        if importlib.util.find_spec("clearml") is None:
            raise ImportError(
                "ClearMLLogger needs the package `clearml`, which is not installed: "
                "pip install 'oml-fast[clearml]' (or `pip install clearml`)"
            )
        from clearml import Task

        if kwargs.pop("offline_mode", True):
            Task.set_offline(offline_mode=True)
        self.task: Any = Task.current_task()
        self._owns_task = self.task is None  # a task the user made stays theirs to close
        if self.task is None:
            task_type = kwargs.pop("task_type", "training")
            kind = Task.TaskTypes[task_type] if isinstance(task_type, str) else task_type
            self.task = Task.init(
                project_name=kwargs.pop("project_name", None),
                task_name=kwargs.pop("task_name", None),
                task_type=kind,
                **kwargs,
            )
        self.logger = self.task.get_logger()

    @property
    def name(self) -> str:
        return "ClearMLLogger"

    @property
    def version(self) -> str:
        return str(self.task.id)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        params = {} if params is None else dict(params) if isinstance(params, Mapping) else vars(params)
        self.task.connect(_flatten_dict(params))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.logger.report_scalar(title=key, series=key, value=float(value), iteration=step or 0)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.logger.flush()

    @rank_zero_only
    def close(self) -> None:
        """Closes the task this logger made (offline: writes the session's zip); a later run makes a new one."""
        if self._owns_task:
            self.task.close()


class ClearMLPipelineLogger(ClearMLLogger, IPipelineLogger):
    """:class:`ClearMLLogger` of the pipelines; figures go to ClearML's debug images as PNGs."""

    def log_pipeline_info(self, cfg: Any) -> None:
        self.log_hyperparams(to_plain_dict(cfg))

    @rank_zero_only
    def log_figure(self, fig: Any, title: str, idx: int) -> None:
        self.logger.report_matplotlib_figure(
            title=title, series="", figure=fig, iteration=idx, report_image=True
        )


__all__ = [
    "ClearMLLogger",
    "ClearMLPipelineLogger",
    "IPipelineLogger",
    "NeptuneLogger",
    "MLFlowPipelineLogger",
    "NeptunePipelineLogger",
    "TensorBoardPipelineLogger",
    "WandBPipelineLogger",
    "figure_to_array",
]
