"""OML's config parsers of the pipelines (``oml.lightning.pipelines.parser``), for scripts that build their
own Lightning run from an OML config. Our pipelines parse configs in :mod:`oml_fast.pipelines.runs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.strategies import DDPStrategy

from oml_fast.const import CATEGORIES_COLUMN
from oml_fast.registry.base import to_plain_dict
from oml_fast.registry.samplers import SAMPLERS_CATEGORIES_BASED, get_sampler_by_cfg
from oml_fast.registry.schedulers import get_scheduler_by_cfg


def _is_many(devices: Any) -> bool:
    return (isinstance(devices, int) and devices > 1) or (
        isinstance(devices, (list, tuple)) and len(devices) > 1
    )


def parse_engine_params_from_config(cfg: Any) -> dict[str, Any]:
    """``{devices, strategy, accelerator, use_distributed_sampler=False}`` for ``lightning.Trainer``.

    A missing ``accelerator`` is ``gpu`` when CUDA is available, else ``cpu``; missing ``devices`` are all
    GPUs (gpu) or 1. On ``cpu`` a list of devices counts processes. More than one device gives
    ``DDPStrategy(find_unused_parameters=cfg.find_unused_parameters or False)``, else ``"auto"``.
    """
    cfg = to_plain_dict(cfg)
    accelerator = cfg.get("accelerator") or ("gpu" if torch.cuda.is_available() else "cpu")
    devices = cfg.get("devices")
    if devices is None:
        devices = torch.cuda.device_count() if accelerator == "gpu" and torch.cuda.is_available() else 1
    if isinstance(devices, (list, tuple)) and accelerator == "cpu":
        devices = len(devices)
    strategy: Any = "auto"
    if _is_many(devices):
        strategy = DDPStrategy(find_unused_parameters=bool(cfg.get("find_unused_parameters", False)))
    return {
        "devices": devices,
        "strategy": strategy,
        "accelerator": accelerator,
        "use_distributed_sampler": False,
    }


def check_is_config_for_ddp(cfg: Any) -> bool:
    """Whether ``cfg["strategy"]`` (e.g. of :func:`parse_engine_params_from_config`) is set."""
    return bool(cfg["strategy"])


def parse_scheduler_from_config(cfg: Any, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The scheduler arguments of ``ExtractorModule`` from ``cfg.scheduling`` (``{"scheduler": None}`` without)."""
    scheduling = to_plain_dict(cfg).get("scheduling")
    if not scheduling:
        return {"scheduler": None}
    return {
        "scheduler": get_scheduler_by_cfg(scheduling["scheduler"], optimizer=optimizer),
        "scheduler_interval": scheduling["scheduler_interval"],
        "scheduler_frequency": scheduling["scheduler_frequency"],
        "scheduler_monitor_metric": scheduling.get("monitor_metric"),
    }


def parse_sampler_from_config(cfg: Any, dataset: Any) -> Any:
    """The batch sampler of ``cfg.sampler`` over ``dataset``'s labels (and categories), or ``None``.

    Raises ``ValueError`` for a category sampler when ``dataset.extra_data`` has no ``category``.
    """
    block = to_plain_dict(cfg)["sampler"]
    if block is None:
        return None
    if block["name"] in SAMPLERS_CATEGORIES_BASED and CATEGORIES_COLUMN not in dataset.extra_data:
        raise ValueError(
            f"sampler '{block['name']}' needs the categories of the items, but the dataset has no "
            f"'{CATEGORIES_COLUMN}' in its extra_data (add the column to the dataframe)"
        )
    return get_sampler_by_cfg(block, labels=dataset.get_labels(), label2category=dataset.get_label2category())


def parse_ckpt_callback_from_config(cfg: Any) -> ModelCheckpoint:
    """Keeps the best checkpoint by ``cfg.metric_for_checkpointing`` as ``./checkpoints/best.ckpt``."""
    return ModelCheckpoint(
        dirpath=Path.cwd() / "checkpoints",
        monitor=cfg["metric_for_checkpointing"],
        mode=cfg.get("mode_for_checkpointing", "max"),
        save_top_k=1,
        verbose=True,
        filename="best",
    )


__all__ = [
    "check_is_config_for_ddp",
    "parse_ckpt_callback_from_config",
    "parse_engine_params_from_config",
    "parse_sampler_from_config",
    "parse_scheduler_from_config",
]
