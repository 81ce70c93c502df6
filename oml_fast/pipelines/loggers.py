"""Experiment loggers of the pipelines: Lightning's (TensorBoard, CSV, MLflow, W&B) and ours (Neptune, ClearML).

:func:`build_loggers` makes the CSV logger every run has plus the one the config names (relative
paths inside the run folder); :func:`check_logger_ready` fails at start, naming the extra to
install, when the logger's package is missing (and when an online Neptune run has no token); :func:`log_picture` sends a PNG to any of them.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from oml_fast.lightning.pipelines.logging import ClearMLLogger
from oml_fast.pipelines.registry import LOGGER_EXTRAS, build


def check_logger_installed(block: Mapping[str, Any] | None) -> None:
    """Raises ``ImportError`` with ``pip install 'oml-fast[<extra>]'`` when the logger's package is missing."""
    name = (block or {}).get("name", "tensorboard")
    if name in LOGGER_EXTRAS:
        package, extra = LOGGER_EXTRAS[name]
        if importlib.util.find_spec(package) is None:
            raise ImportError(
                f"logger '{name}' needs the package `{package}`, which is not installed: "
                f"pip install 'oml-fast[{extra}]' (or `pip install {package}`)"
            )


def check_logger_ready(block: Mapping[str, Any] | None) -> None:
    """:func:`check_logger_installed`, and Neptune's token: an online Neptune run (``mode`` ``async``, the
    default, or ``sync``; ``$NEPTUNE_MODE`` also sets it) needs ``api_key`` or ``$NEPTUNE_API_TOKEN``,
    else ``ValueError`` at start (Neptune would fail once the run folder exists)."""
    check_logger_installed(block)
    block = block or {}
    args = dict(block.get("args") or {})
    if block.get("name") == "neptune":
        mode = args.get("mode") or os.environ.get("NEPTUNE_MODE") or "async"
        if mode in ("async", "sync") and not args.get("api_key") and not os.environ.get("NEPTUNE_API_TOKEN"):
            raise ValueError(
                f"logger 'neptune' (mode {mode!r}) needs a Neptune API token: export NEPTUNE_API_TOKEN=... "
                "(or set logger.args.api_key), or keep the run on this machine with +logger.args.mode=offline"
            )


def _in_run_dir(value: Any, run_dir: Path) -> str:
    path = Path(str(value))
    return str(path if path.is_absolute() else run_dir / path)


def _logger_args(name: str, args: dict[str, Any], run_dir: Path, version: str = "") -> dict[str, Any]:
    """The config's args with relative folders placed inside the run folder (OML ran inside it)."""
    args = dict(args)
    if name in ("tensorboard", "csv"):
        args["save_dir"] = _in_run_dir(args.get("save_dir", "."), run_dir)
        args.setdefault("name", name)
        args.setdefault("version", version)
    elif name == "mlflow":
        uri = str(args.get("tracking_uri") or "file:./ml-runs")
        if uri.startswith("file:") and not uri.startswith("file:/"):
            args["tracking_uri"] = "file:" + _in_run_dir(uri[len("file:") :], run_dir)
        if uri.startswith("file:"):
            # OML's configs use MLflow's file store, which MLflow 3 keeps only on request.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        args["save_dir"] = _in_run_dir(args.get("save_dir", "ml-runs"), run_dir)
    elif name == "wandb":
        args["save_dir"] = _in_run_dir(args.get("save_dir", "."), run_dir)
    return args


@contextmanager
def _neptune_data_dir(run_dir: Path) -> Iterator[None]:
    """Neptune keeps offline runs in ``$NEPTUNE_DATA_DIRECTORY`` or ``./.neptune``; OML ran inside the
    run folder, so the default here is ``<run_dir>/.neptune`` (read once, when the run is made)."""
    if "NEPTUNE_DATA_DIRECTORY" in os.environ:
        yield
        return
    os.environ["NEPTUNE_DATA_DIRECTORY"] = str(run_dir / ".neptune")
    try:
        yield
    finally:
        del os.environ["NEPTUNE_DATA_DIRECTORY"]


def build_loggers(
    block: Mapping[str, Any] | None, run_dir: Path, tags: list[str], version: str = ""
) -> list[Logger]:
    """``[CSVLogger(<run_dir>/csv/<version>), <the config's logger>]`` (TensorBoard when ``block`` is ``None``)."""
    check_logger_ready(block)
    block = dict(block or {"name": "tensorboard", "args": {}})
    name = str(block["name"])
    csv_args = _logger_args("csv", {}, run_dir, version)
    loggers: list[Logger] = [build("loggers", {"name": "csv", "args": csv_args})]
    if name != "csv":
        args = _logger_args(name, dict(block.get("args") or {}), run_dir, version)
        if name in ("wandb", "neptune", "clearml") and tags:
            args.setdefault("tags", list(tags))
        logger = build("loggers", {"name": name, "args": args}, where="logger")
        if name == "neptune":
            with _neptune_data_dir(run_dir):
                logger.experiment  # noqa: B018 (makes the run now, while the folder is set)
        loggers.append(logger)
    return loggers


@rank_zero_only
def log_picture(logger: Any, path: Path, step: int, title: str = "worst_queries") -> None:
    """Sends the PNG at ``path`` to ``logger`` in the way its library takes images (CSV: nothing)."""
    kinds = {cls.__name__ for cls in type(logger).__mro__}  # our subclasses (OML's names) included
    if "TensorBoardLogger" in kinds:
        import numpy as np
        from PIL import Image

        image = np.asarray(Image.open(path).convert("RGB"))
        logger.experiment.add_image(title, image, global_step=step, dataformats="HWC")
    elif "MLFlowLogger" in kinds:
        logger.experiment.log_artifact(logger.run_id, str(path), artifact_path="images")
    elif "WandbLogger" in kinds:
        logger.log_image(key=title, images=[str(path)], step=step)
    elif "NeptuneLogger" in kinds:
        from neptune.types import File

        logger.experiment[f"images/{title}"].append(File(str(path)), step=step)
    elif "ClearMLLogger" in kinds:
        logger.task.get_logger().report_image(title=title, series=title, iteration=step, local_path=str(path))


@rank_zero_only
def close_loggers(loggers: list[Logger]) -> None:
    """Ends the runs of loggers whose library keeps them open after Lightning is done: W&B syncs its
    files (offline too) only when its run finishes, Neptune writes its queue out when its run stops,
    ClearML zips an offline session when its task closes; a next run in the process gets a new one."""
    for logger in loggers:
        kinds = {cls.__name__ for cls in type(logger).__mro__}
        if "WandbLogger" in kinds:
            logger.experiment.finish()  # type: ignore[attr-defined]
        elif kinds & {"NeptuneLogger", "ClearMLLogger"}:
            logger.close()  # type: ignore[attr-defined]


__all__ = [
    "ClearMLLogger",
    "build_loggers",
    "check_logger_installed",
    "check_logger_ready",
    "close_loggers",
    "log_picture",
]
