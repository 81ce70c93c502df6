"""``train``, ``validate`` and ``predict`` from a config (see :mod:`oml_fast.pipelines.config`) on Lightning."""

from __future__ import annotations

import inspect
import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from oml_fast.distributed import DDPBatchSamplerWrapper, RankShardSampler
from oml_fast.pipelines.config import load_config, to_container
from oml_fast.pipelines.module import ExtractorModule, flatten_metrics
from oml_fast.pipelines.registry import RegistryError, build, check_block_args

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class RunResult:
    """What a run produced: where things are, and the metrics of its (last or best) validation."""

    run_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    best_checkpoint: Path | None = None
    last_checkpoint: Path | None = None
    pictures: list[Path] = field(default_factory=list)
    best_score: float | None = None

    @property
    def flat_metrics(self) -> dict[str, float]:
        return flatten_metrics(self.metrics)


# Config blocks each job uses, with their registry: checked before any data is read.
_BLOCKS = {
    "train": {
        "extractor": "extractors",
        "criterion": "losses",
        "sampler": "samplers",
        "optimizer": "optimizers",
        "transforms_train": "transforms",
        "transforms_val": "transforms",
    },
    "validate": {"extractor": "extractors", "transforms_val": "transforms"},
    "predict": {"extractor": "extractors", "transforms_val": "transforms"},
}


def _as_cfg(config: Any, overrides: list[str] | None, job: str) -> DictConfig:
    cfg = config if isinstance(config, DictConfig) and not overrides else load_config(config, overrides)
    blocks = to_container(cfg)
    for key, registry in _BLOCKS[job].items():
        check_block_args(registry, blocks[key], key)
    if job == "train" and blocks.get("scheduling"):
        scheduler = blocks["scheduling"].get("scheduler") if isinstance(blocks["scheduling"], dict) else None
        check_block_args("schedulers", scheduler, "scheduling.scheduler")
    if job != "predict" and not (Path(cfg.dataset_root) / cfg.dataframe_name).is_file():
        raise FileNotFoundError(
            f"dataset not found: {Path(cfg.dataset_root) / cfg.dataframe_name} does not exist (set `dataset_root` / "
            f"`dataframe_name`; for the built-in digits run `oml-fast make-digits {cfg.dataset_root}`)"
        )
    return cfg


# Under DDP, Lightning starts the other ranks by re-running the command; they inherit the environment,
# so the first process publishes its (time-stamped) run folder here and the others write to the same one.
RUN_FOLDER_ENV = "OML_FAST_RUN_FOLDER"


def _run_dir(cfg: DictConfig, kind: str) -> Path:
    folder = cfg.logs_folder or os.environ.get(RUN_FOLDER_ENV)
    if not folder:
        folder = f"{datetime.now().strftime('%Y-%m-%d_%H-%M-%S')}_{kind}"
    run_dir = Path(cfg.logs_root) / str(folder)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _transforms(cfg: DictConfig, key: str) -> Any:
    return build("transforms", to_container(cfg)[key], where=key)


def _extractor(cfg: DictConfig) -> torch.nn.Module:
    extractor = build("extractors", to_container(cfg)["extractor"], where="extractor")
    if cfg.checkpoint:
        extractor.load_weights(cfg.checkpoint)
    return extractor


@contextmanager
def _run_folder_shared_with_ranks(run_dir: Path) -> Iterator[None]:
    """Publishes ``run_dir``'s name to the ranks Lightning starts inside the block (they inherit it)."""
    if RUN_FOLDER_ENV in os.environ:  # we are such a rank
        yield
        return
    os.environ[RUN_FOLDER_ENV] = run_dir.name
    try:
        yield
    finally:
        os.environ.pop(RUN_FOLDER_ENV, None)


def _metrics_factory(cfg: DictConfig):
    from oml_fast.distributed import EmbeddingMetricsDDP
    from oml_fast.metrics import EmbeddingMetrics

    metric_args = dict(to_container(cfg)["metric_args"] or {})
    params = inspect.signature(EmbeddingMetrics.__init__).parameters
    valid = [n for n in params if n not in ("self", "dataset")]
    unknown = sorted(set(metric_args) - set(valid))
    if unknown:
        raise RegistryError(
            f"`metric_args` has argument(s) {unknown} that EmbeddingMetrics does not take; valid arguments: {valid}"
        )
    if "verbose" in valid:
        metric_args.setdefault("verbose", False)

    def factory(dataset: Any) -> Any:
        # EmbeddingMetrics itself in a single process; under DDP it gathers the ranks' embeddings.
        return EmbeddingMetricsDDP(dataset, **metric_args)

    return factory


def _trainer(
    cfg: DictConfig, run_dir: Path, callbacks: list | None = None, loggers: list | bool = False, **kwargs: Any
):
    import lightning.pytorch as pl

    return pl.Trainer(
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        strategy=cfg.strategy,
        precision=cfg.precision,
        default_root_dir=str(run_dir),
        logger=loggers,
        callbacks=callbacks or [],
        enable_progress_bar=bool(cfg.progress_bar),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        # Our loaders split themselves across ranks (RankShardSampler, DDPBatchSamplerWrapper).
        use_distributed_sampler=False,
        **kwargs,
    )


def _loggers(cfg: DictConfig, run_dir: Path) -> list:
    from lightning.pytorch.loggers import CSVLogger

    loggers: list = [CSVLogger(save_dir=str(run_dir), name="csv", version="")]
    if cfg.logger:
        block = to_container(cfg)["logger"]
        if block.get("name") != "csv":
            args = {
                "save_dir": str(run_dir),
                "name": block.get("name", "logs"),
                "version": "",
                **(block.get("args") or {}),
            }
            try:
                loggers.append(build("loggers", {"name": block.get("name"), "args": args}, where="logger"))
            except (ImportError, ModuleNotFoundError) as error:  # tensorboard not installed: CSV logs only
                warnings.warn(
                    f"logger '{block.get('name')}' unavailable ({error}); logging to CSV only", stacklevel=2
                )
    return loggers


def _val_loader(cfg: DictConfig, dataset: Any) -> DataLoader:
    # Under DDP each rank embeds its share (padded with duplicates; items carry their index).
    return DataLoader(
        dataset,
        batch_size=int(cfg.bs_val),
        sampler=RankShardSampler(dataset),
        num_workers=int(cfg.num_workers),
    )


def train(config: Any = None, overrides: list[str] | None = None) -> RunResult:
    """Trains the extractor of ``config`` (a path, shipped config name, mapping or DictConfig) plus ``overrides``.

    Validates every ``valid_period`` epochs with EmbeddingMetrics, keeps the best checkpoint by
    ``metric_for_checkpointing`` (``<run_dir>/checkpoints/best.ckpt``) and the last one, logs to CSV
    and TensorBoard (``<run_dir>/csv``, ``<run_dir>/tensorboard``) and saves the worst-query pictures
    to ``<run_dir>/images``. Returns a :class:`RunResult` with the metrics of the best epoch.
    """
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

    from oml_fast.datasets import get_retrieval_images_datasets

    cfg = _as_cfg(config, overrides, "train")
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    run_dir = _run_dir(cfg, "train")
    OmegaConf.save(cfg, run_dir / "config.yaml")

    train_set, valid_set = get_retrieval_images_datasets(
        cfg.dataset_root,
        transforms_train=_transforms(cfg, "transforms_train"),
        transforms_val=_transforms(cfg, "transforms_val"),
        dataframe_name=cfg.dataframe_name,
        cache_size=int(cfg.cache_size),
        check_files=bool(cfg.check_dataframe_files),
    )
    blocks = to_container(cfg)
    sampler = build(
        "samplers",
        blocks["sampler"],
        where="sampler",
        labels=train_set.get_labels(),
        label2category=train_set.get_label2category(),
    )
    # Under DDP each rank takes whole batches of the sampler (the same count on every rank).
    train_loader = DataLoader(
        train_set,
        batch_sampler=DDPBatchSamplerWrapper(sampler, seed=int(cfg.seed)),
        num_workers=int(cfg.num_workers),
    )
    extractor = _extractor(cfg)
    n_classes = len(set(train_set.get_labels().tolist()))
    criterion = build(
        "losses",
        blocks["criterion"],
        where="criterion",
        in_features=extractor.feat_dim,
        num_classes=n_classes,
    )
    module = ExtractorModule(
        extractor,
        criterion,
        optimizer=blocks["optimizer"],
        scheduling=blocks["scheduling"],
        metrics_factory=_metrics_factory(cfg),
        images_dir=run_dir / "images" if cfg.log_images else None,
        n_worst_queries=int(cfg.n_worst_queries),
        n_retrieved_to_show=int(cfg.n_retrieved_to_show),
    )
    checkpoint = ModelCheckpoint(
        dirpath=str(run_dir / "checkpoints"),
        filename="best",
        monitor=cfg.metric_for_checkpointing,
        mode=cfg.mode_for_checkpointing,
        save_last=True,
        auto_insert_metric_name=False,
    )
    loggers = _loggers(cfg, run_dir)
    trainer = _trainer(
        cfg,
        run_dir,
        callbacks=[checkpoint, LearningRateMonitor(logging_interval="step")],
        loggers=loggers,
        max_epochs=int(cfg.max_epochs),
        check_val_every_n_epoch=int(cfg.valid_period),
        limit_train_batches=cfg.limit_train_batches,
        gradient_clip_val=cfg.gradient_clip_val,
        log_every_n_steps=max(1, min(50, len(sampler) // 2)),
    )
    with _run_folder_shared_with_ranks(run_dir):
        trainer.fit(module, train_loader, _val_loader(cfg, valid_set))

    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
    history = module.metrics_history
    best_epoch = (
        torch.load(best, map_location="cpu", weights_only=False).get("epoch") if best is not None else None
    )
    metrics = history.get(best_epoch) if best_epoch in history else (history[max(history)] if history else {})
    score = checkpoint.best_model_score
    result = RunResult(
        run_dir=run_dir,
        metrics=metrics or {},
        best_checkpoint=best,
        last_checkpoint=Path(checkpoint.last_model_path) if checkpoint.last_model_path else None,
        pictures=list(module.saved_pictures),
        best_score=float(score) if score is not None else None,
    )
    if trainer.is_global_zero:
        (run_dir / "metrics.json").write_text(json.dumps(result.flat_metrics, indent=2))
    return result


def validate(config: Any = None, overrides: list[str] | None = None) -> RunResult:
    """Validates the extractor of ``config`` (weights from ``checkpoint`` or ``extractor.args.weights``;
    without either, the untrained model) on the validation split. Pictures go to ``<run_dir>/images``.
    """
    import lightning.pytorch as pl

    from oml_fast.datasets import get_validation_images_dataset

    cfg = _as_cfg(config, overrides, "validate")
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    run_dir = _run_dir(cfg, "validate")
    valid_set = get_validation_images_dataset(
        cfg.dataset_root,
        transforms_val=_transforms(cfg, "transforms_val"),
        dataframe_name=cfg.dataframe_name,
        cache_size=int(cfg.cache_size),
        check_files=bool(cfg.check_dataframe_files),
    )
    module = ExtractorModule(
        _extractor(cfg),
        metrics_factory=_metrics_factory(cfg),
        images_dir=run_dir / "images" if cfg.log_images else None,
        n_worst_queries=int(cfg.n_worst_queries),
        n_retrieved_to_show=int(cfg.n_retrieved_to_show),
    )
    trainer = _trainer(cfg, run_dir)
    with _run_folder_shared_with_ranks(run_dir):
        trainer.validate(module, _val_loader(cfg, valid_set), verbose=False)
    result = RunResult(run_dir=run_dir, metrics=module.last_metrics, pictures=list(module.saved_pictures))
    if trainer.is_global_zero:
        (run_dir / "metrics.json").write_text(json.dumps(result.flat_metrics, indent=2))
    return result


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted); raises ``FileNotFoundError`` / ``ValueError`` if none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"`data_dir` is not a folder: '{folder}'")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under '{folder}'")
    return paths


def predict(config: Any = None, overrides: list[str] | None = None) -> Path:
    """Embeds every image under ``data_dir`` and writes ``{"paths": [...], "embeddings": FloatTensor[N, D]}``
    to ``save_path`` (``.pt`` via ``torch.save``; ``.npz`` with arrays ``paths`` and ``embeddings``).
    Returns ``save_path``.
    """
    import lightning.pytorch as pl

    from oml_fast.datasets import ImageBaseDataset

    cfg = _as_cfg(config, overrides, "predict")
    if not cfg.data_dir or not cfg.save_path:
        raise ValueError("predict needs `data_dir` (a folder of images) and `save_path` (a .pt or .npz file)")
    save_path = Path(cfg.save_path)
    if save_path.suffix not in (".pt", ".npz"):
        raise ValueError(f"`save_path` must end with .pt or .npz, got '{save_path}'")
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    paths = list_images(cfg.data_dir)
    key = "transforms_predict" if cfg.transforms_predict else "transforms_val"
    dataset = ImageBaseDataset(paths, transform=_transforms(cfg, key), cache_size=0)
    module = ExtractorModule(_extractor(cfg))
    trainer = _trainer(cfg, save_path.parent)
    batches = trainer.predict(
        module, DataLoader(dataset, batch_size=int(cfg.bs or cfg.bs_val), num_workers=int(cfg.num_workers))
    )
    embeddings = torch.cat(batches)  # type: ignore[arg-type]
    if not trainer.is_global_zero:
        # Under DDP the loader is not split (use_distributed_sampler=False): every rank embedded every
        # image, in order, and rank 0 writes them.
        return save_path
    save_path.parent.mkdir(parents=True, exist_ok=True)
    names = [str(p) for p in paths]
    if save_path.suffix == ".pt":
        torch.save({"paths": names, "embeddings": embeddings}, save_path)
    else:
        import numpy as np

        np.savez(save_path, paths=np.array(names), embeddings=embeddings.numpy())
    return save_path
