"""The four pipelines on Lightning: ``train``, ``validate``, ``predict``, ``train_postprocessor``.

Each takes a config (a YAML path, a shipped config name, a mapping or a ``DictConfig``) and Hydra
overrides (:mod:`oml_fast.pipelines.config`). Everything that can be checked without computing is
checked before the run folder exists: keys and types, block names and arguments, the dataset's
CSV, the weights of a model to validate, the logger's package. OML's entry functions
(``extractor_training_pipeline``, ...) are in :mod:`oml_fast.pipelines.entrypoints`.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from oml_fast.distributed import RankShardSampler
from oml_fast.pipelines.config import load_config, to_container
from oml_fast.pipelines.console import MetricsTable, print_metrics, print_summary, quiet_third_party, relative
from oml_fast.pipelines.data import (
    check_modality,
    check_sample_rate,
    list_images,
    prediction_dataset,
    retrieval_datasets,
    transforms_of,
)
from oml_fast.pipelines.loggers import build_loggers, check_logger_ready, close_loggers
from oml_fast.pipelines.module import ExtractorModule, flatten_metrics
from oml_fast.pipelines.registry import RegistryError, build, check_block_args
from oml_fast.pipelines.resume import (
    AtomicModelCheckpoint,
    EpochBatchSampler,
    EpochDataLoader,
    last_checkpoint,
)


@dataclass
class RunResult:
    """What a run produced: where things are, and the metrics of its best (or only) validation."""

    run_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    best_checkpoint: Path | None = None
    last_checkpoint: Path | None = None
    pictures: list[Path] = field(default_factory=list)
    best_score: float | None = None
    best_epoch: int | None = None
    trainer: Any = field(default=None, repr=False)

    @property
    def flat_metrics(self) -> dict[str, float]:
        return flatten_metrics(self.metrics)


# Config blocks each pipeline builds, with their registry: checked before anything is read or written.
_BLOCKS: dict[str, dict[str, str]] = {
    "train": {
        "extractor": "extractors",
        "criterion": "losses",
        "sampler": "samplers",
        "optimizer": "optimizers",
        "transforms_train": "transforms",
        "transforms_val": "transforms",
    },
    "validate": {
        "extractor": "extractors",
        "transforms_val": "transforms",
        "postprocessor": "postprocessors",
    },
    "predict": {
        "extractor": "extractors",
        "transforms_predict": "transforms",
        "transforms_val": "transforms",
    },
    "train-postprocessor": {
        "extractor": "extractors",
        "transforms_extraction": "transforms",
        "transforms_train": "transforms",
        "transforms_val": "transforms",
        "sampler": "samplers",
        "optimizer": "optimizers",
        "postprocessor": "postprocessors",
    },
}
_OPTIONAL = {"sampler", "postprocessor", "transforms_predict", "transforms_extraction"}


def _has_weights(block: Mapping[str, Any]) -> bool:
    args = block.get("args") or {}
    inner = args.get("extractor")
    return bool(args.get("weights")) or (isinstance(inner, Mapping) and _has_weights(inner))


def prepare(config: Any, overrides: list[str] | None, job: str) -> DictConfig:
    """The checked config of ``job``; raises before any folder or file is created."""
    cfg = load_config(config, overrides)
    check_modality(cfg)
    blocks = to_container(cfg)
    for key, registry in _BLOCKS[job].items():
        if blocks.get(key) is None and key in _OPTIONAL:
            continue
        check_block_args(registry, blocks[key], key)
    if job in ("train", "train-postprocessor") and blocks.get("scheduling"):
        scheduling = blocks["scheduling"]
        scheduler = scheduling.get("scheduler") if isinstance(scheduling, Mapping) else None
        check_block_args("schedulers", scheduler, "scheduling.scheduler")
    if job in ("train", "train-postprocessor"):
        check_logger_ready(blocks.get("logger"))
        if blocks.get("sampler") is None and not cfg.bs_train:
            raise ValueError("`sampler` is null: set `bs_train` (the batch size of shuffled batches)")
    if job == "train-postprocessor" and not blocks.get("postprocessor"):
        raise ValueError(
            "train-postprocessor needs a `postprocessor` block (e.g. postprocessor=pairwise_reranker)"
        )
    if job != "predict" and not (Path(cfg.dataset_root) / cfg.dataframe_name).is_file():
        raise FileNotFoundError(
            f"dataset not found: {Path(cfg.dataset_root) / cfg.dataframe_name} does not exist (set `dataset_root` / "
            f"`dataframe_name`; for the built-in digits run `oml-fast make-digits {cfg.dataset_root}`)"
        )
    if job in ("validate", "predict"):
        if cfg.checkpoint and not Path(cfg.checkpoint).is_file():
            raise FileNotFoundError(f"`checkpoint` not found: {cfg.checkpoint}")
        if not cfg.checkpoint and not _has_weights(blocks["extractor"]) and not cfg.allow_untrained:
            raise ValueError(
                f"{job}: the extractor has no weights (`checkpoint` and `extractor.args.weights` are null); "
                "a randomly initialised model gives meaningless results. Set `checkpoint=PATH`, or "
                "`allow_untrained=true` if that is what you want"
            )
    return cfg


# Under DDP, Lightning starts the other ranks by re-running the command; they inherit the environment,
# so the first process publishes its (time-stamped) run folder here and the others write to the same one.
RUN_FOLDER_ENV = "OML_FAST_RUN_FOLDER"


def run_dir_of(cfg: DictConfig, job: str) -> Path:
    """``hydra_dir``, else ``<logs_root>/<logs_folder>`` (default: date, time and ``postfix`` or ``job``)."""
    if os.environ.get(RUN_FOLDER_ENV):
        return Path(os.environ[RUN_FOLDER_ENV])
    if cfg.hydra_dir:
        return Path(cfg.hydra_dir)
    folder = cfg.logs_folder or f"{datetime.now().strftime('%Y-%m-%d_%H-%M-%S')}_{cfg.postfix or job}"
    return Path(cfg.logs_root) / str(folder)


@contextmanager
def _run_folder_shared_with_ranks(run_dir: Path) -> Iterator[None]:
    """Publishes ``run_dir`` to the ranks Lightning starts inside the block (they inherit it)."""
    if RUN_FOLDER_ENV in os.environ:  # we are such a rank
        yield
        return
    os.environ[RUN_FOLDER_ENV] = str(run_dir)
    try:
        yield
    finally:
        os.environ.pop(RUN_FOLDER_ENV, None)


def _extractor(cfg: DictConfig, load_checkpoint: bool) -> torch.nn.Module:
    extractor = build("extractors", to_container(cfg)["extractor"], where="extractor")
    if load_checkpoint and cfg.checkpoint:
        extractor.load_weights(cfg.checkpoint)
    return extractor


def _metric_args(cfg: DictConfig) -> dict[str, Any]:
    import inspect

    from oml_fast.metrics import EmbeddingMetrics

    metric_args = dict(to_container(cfg)["metric_args"] or {})
    params = inspect.signature(EmbeddingMetrics.__init__).parameters
    valid = [n for n in params if n not in ("self", "dataset", "postprocessor")]
    unknown = sorted(set(metric_args) - set(valid))
    if unknown:
        raise RegistryError(
            f"`metric_args` has argument(s) {unknown} that EmbeddingMetrics does not take; valid arguments: {valid}"
        )
    metric_args.setdefault("verbose", False)
    # An empty list (OML's configs write `precision_top_k: []`) means "no such metric", as in OML: it is
    # passed on as it is (EmbeddingMetrics skips a metric whose top_k is empty).
    return metric_args


def _metrics_factory(cfg: DictConfig, postprocessor: Any = None):
    from oml_fast.distributed import EmbeddingMetricsDDP

    metric_args = _metric_args(cfg)

    def factory(dataset: Any) -> Any:
        # EmbeddingMetrics itself in a single process; under DDP it gathers the ranks' embeddings.
        return EmbeddingMetricsDDP(dataset, postprocessor=postprocessor, **metric_args)

    return factory


def _engine(cfg: DictConfig) -> dict[str, Any]:
    """``accelerator``, ``devices``, ``strategy`` for Lightning (OML's rules for nulls and device lists)."""
    accelerator = cfg.accelerator or "auto"
    devices: Any = cfg.devices if cfg.devices is not None else "auto"
    if isinstance(devices, (list, tuple)) or OmegaConf.is_list(devices):
        devices = list(devices)
        if accelerator == "cpu":
            devices = len(devices)
    strategy: Any = cfg.strategy or "auto"
    many = (isinstance(devices, int) and devices > 1) or (isinstance(devices, list) and len(devices) > 1)
    if many and strategy == "auto" and cfg.find_unused_parameters:
        from lightning.pytorch.strategies import DDPStrategy

        strategy = DDPStrategy(find_unused_parameters=True)
    return {"accelerator": accelerator, "devices": devices, "strategy": strategy}


def _trainer(
    cfg: DictConfig, run_dir: Path, callbacks: list | None = None, loggers: list | bool = False, **kwargs: Any
):
    import lightning.pytorch as pl

    with quiet_third_party():  # Lightning's device notes and tips
        return pl.Trainer(
            **_engine(cfg),
            precision=cfg.precision,
            default_root_dir=str(run_dir),
            logger=loggers,
            callbacks=callbacks or [],
            enable_progress_bar=bool(cfg.progress_bar),
            enable_model_summary=False,
            num_sanity_val_steps=0,
            # Our loaders split themselves across ranks (RankShardSampler, EpochBatchSampler).
            use_distributed_sampler=False,
            **kwargs,
        )


def _val_loader(cfg: DictConfig, dataset: Any, batch_size: int | None = None) -> DataLoader:
    # Under DDP each rank embeds its share (padded with duplicates; items carry their index).
    return DataLoader(
        dataset,
        batch_size=int(batch_size or cfg.bs_val),
        sampler=RankShardSampler(dataset),
        num_workers=int(cfg.num_workers),
    )


def _train_loader(cfg: DictConfig, dataset: Any) -> tuple[DataLoader, Any]:
    """``(loader, the config's sampler or None)``: batches of the sampler (``sampler: null``: shuffled
    ``bs_train`` items, the last incomplete batch dropped), an epoch's batches and augmentations drawn
    from ``(seed, epoch)`` (:class:`EpochBatchSampler`, workers included); under DDP each rank takes
    whole batches (the same count on every rank)."""
    blocks = to_container(cfg)
    if blocks["sampler"] is None:
        sampler = None
        batch_sampler: Any = BatchSampler(
            RandomSampler(dataset), batch_size=int(cfg.bs_train), drop_last=True
        )
    else:
        sampler = batch_sampler = build(
            "samplers",
            blocks["sampler"],
            where="sampler",
            labels=dataset.get_labels(),
            label2category=dataset.get_label2category(),
        )
    batches = EpochBatchSampler(batch_sampler, seed=int(cfg.seed))
    loader = EpochDataLoader(
        dataset, batch_sampler=batches, num_workers=int(cfg.num_workers), generator=batches.generator
    )
    return loader, sampler


def _checkpoint_callback(cfg: DictConfig, run_dir: Path) -> AtomicModelCheckpoint:
    return AtomicModelCheckpoint(
        dirpath=str(run_dir / "checkpoints"),
        filename="best",
        monitor=cfg.metric_for_checkpointing,
        mode=cfg.mode_for_checkpointing,
        save_top_k=1,
        save_last=True,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )


def _resume_path(cfg: DictConfig, run_dir: Path) -> str | None:
    if not cfg.checkpoint:
        return None
    if str(cfg.checkpoint) == "last":
        return str(last_checkpoint(run_dir))
    if not Path(cfg.checkpoint).is_file():
        raise FileNotFoundError(f"`checkpoint` to resume from not found: {cfg.checkpoint}")
    return str(cfg.checkpoint)


def _fit(
    cfg: DictConfig,
    run_dir: Path,
    module: Any,
    train_loader: DataLoader,
    val_loader: DataLoader,
    flat_metrics: Any,
    extra_callbacks: list | None = None,
    log_every: int = 50,
) -> tuple[Any, AtomicModelCheckpoint, MetricsTable]:
    """Fits ``module`` with checkpoints, loggers and the console table; returns the trainer and callbacks."""
    from lightning.pytorch.callbacks import LearningRateMonitor

    resume = _resume_path(cfg, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml")
    checkpoint = _checkpoint_callback(cfg, run_dir)
    table = MetricsTable(flat_metrics, monitor=cfg.metric_for_checkpointing, mode=cfg.mode_for_checkpointing)
    # A resumed run logs beside the first part's logs (CSVLogger would overwrite a folder in use).
    version = f"resumed_{datetime.now().strftime('%Y-%m-%d_%H-%M-%S')}" if resume else ""
    loggers = build_loggers(to_container(cfg)["logger"], run_dir, list(cfg.tags or []), version=version)
    for logger in loggers:
        logger.log_hyperparams(_flat_config(cfg))
    trainer = _trainer(
        cfg,
        run_dir,
        callbacks=[checkpoint, LearningRateMonitor(logging_interval="step"), table, *(extra_callbacks or [])],
        loggers=loggers,
        max_epochs=int(cfg.max_epochs),
        check_val_every_n_epoch=int(cfg.valid_period),
        limit_train_batches=cfg.limit_train_batches,
        gradient_clip_val=cfg.gradient_clip_val,
        log_every_n_steps=log_every,
        **dict(to_container(cfg)["lightning_trainer_extra_args"] or {}),
    )
    try:
        with _run_folder_shared_with_ranks(run_dir), quiet_third_party():
            trainer.fit(module, train_loader, val_loader, ckpt_path=resume)
    finally:  # a failed run's loggers end too (a next run in this process gets its own run / task)
        close_loggers(loggers)
    return trainer, checkpoint, table


def _flat_config(cfg: DictConfig) -> dict[str, Any]:
    def walk(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
        if isinstance(value, Mapping):
            for key, item in value.items():
                yield from walk(item, f"{prefix}/{key}" if prefix else str(key))
        else:
            yield prefix, value if isinstance(value, (int, float, str, bool)) or value is None else str(value)

    return dict(walk(to_container(cfg), ""))


def _finish_training(
    cfg: DictConfig,
    run_dir: Path,
    trainer: Any,
    checkpoint: AtomicModelCheckpoint,
    table: MetricsTable,
    history: Mapping[int, Any],
    pictures: list[Path],
) -> RunResult:
    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
    best_epoch = table.best_epoch
    if best is not None and best.is_file():  # the checkpoint knows, also when the run was resumed
        best_epoch = torch.load(best, map_location="cpu", weights_only=False).get("epoch")
    if best_epoch is not None and best_epoch in history:
        metrics = history[best_epoch]
    else:
        metrics = history[max(history)] if history else {}
    score = checkpoint.best_model_score
    result = RunResult(
        run_dir=run_dir,
        metrics=metrics or {},
        best_checkpoint=best,
        last_checkpoint=Path(checkpoint.last_model_path) if checkpoint.last_model_path else None,
        pictures=pictures,
        best_score=float(score) if score is not None else None,
        best_epoch=best_epoch,
        trainer=trainer,
    )
    if trainer.is_global_zero:
        (run_dir / "metrics.json").write_text(json.dumps(result.flat_metrics, indent=2))
        score_text = (
            f"{cfg.metric_for_checkpointing} = {result.best_score:.4f}"
            if result.best_score is not None
            else "-"
        )
        print()
        print_summary(
            {
                "best epoch": f"{best_epoch} ({score_text})" if best_epoch is not None else "-",
                "best checkpoint": relative(result.best_checkpoint),
                "last checkpoint": relative(result.last_checkpoint),
                "run folder": relative(run_dir),
            }
        )
    return result


def fit_loss_sizes(block: dict[str, Any], feat_dim: int, n_classes: int) -> dict[str, Any]:
    """The criterion block with sizes this run can train with.

    Classification losses (arcface, mlp_arcface) take ``in_features`` and ``num_classes``; the pipeline
    supplies them (the extractor's ``feat_dim``, the number of training labels) where the config does not
    set them. OML's config files carry example sizes (384 and 3985, a ViT-S/16 on SOP), so a value other
    than the run's is replaced by it, with a warning that names the key: the loss's input must be the
    extractor's output, and its classes are the training labels (more would be weights that never see a
    sample, and categories the training set does not give).
    """
    args = block.get("args")
    if not isinstance(args, Mapping):
        return block
    fixed = dict(args)
    in_features, num_classes = fixed.get("in_features"), fixed.get("num_classes")
    if isinstance(in_features, int) and in_features != feat_dim:
        warnings.warn(
            f"`criterion.args.in_features` = {in_features} is not the extractor's feat_dim; using {feat_dim}",
            stacklevel=2,
        )
        fixed["in_features"] = feat_dim
    if isinstance(num_classes, int) and num_classes != n_classes:
        warnings.warn(
            f"`criterion.args.num_classes` = {num_classes} is not the number of labels of the training set;"
            f" using {n_classes}",
            stacklevel=2,
        )
        fixed["num_classes"] = n_classes
    return {**block, "args": fixed}


def train(config: Any = None, overrides: list[str] | None = None) -> RunResult:
    """Trains the extractor of ``config`` plus ``overrides`` (OML's ``extractor_training_pipeline``).

    Validates every ``valid_period`` epochs with EmbeddingMetrics (a table row per validation),
    keeps the best checkpoint by ``metric_for_checkpointing`` (``<run>/checkpoints/best.ckpt``) and
    the last (``last.ckpt``), logs to CSV and the configured logger and saves the worst-query
    pictures to ``<run>/images``. ``checkpoint=last`` resumes the run in ``logs_folder``.
    Returns a :class:`RunResult` with the metrics of the best epoch.
    """
    import lightning.pytorch as pl

    cfg = prepare(config, overrides, "train")
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    run_dir = run_dir_of(cfg, "train")
    train_set, valid_set = retrieval_datasets(cfg, with_train=True)
    train_loader, sampler = _train_loader(cfg, train_set)
    extractor = _extractor(cfg, load_checkpoint=False)
    check_sample_rate(extractor, valid_set)
    n_classes = len(set(train_set.get_labels().tolist()))
    feat_dim = cast(int, extractor.feat_dim)  # every extractor has it (IExtractor)
    criterion_block = fit_loss_sizes(to_container(cfg)["criterion"], feat_dim, n_classes)
    # Categories restrict only the label smoothing of the arcface losses: without it they are not passed.
    smoothing = (criterion_block.get("args") or {}).get("smoothing_epsilon")
    criterion = build(
        "losses",
        criterion_block,
        where="criterion",
        in_features=feat_dim,
        num_classes=n_classes,
        label2category=train_set.get_label2category() if smoothing else None,
    )
    module = ExtractorModule(
        extractor,
        criterion,
        optimizer=to_container(cfg)["optimizer"],
        scheduling=to_container(cfg)["scheduling"],
        metrics_factory=_metrics_factory(cfg),
        images_dir=run_dir / "images" if cfg.log_images else None,
        n_worst_queries=int(cfg.n_worst_queries),
        n_retrieved_to_show=int(cfg.n_retrieved_to_show),
        seed=int(cfg.seed),
        freeze_n_epochs=int(cfg.freeze_n_epochs),
    )
    n_batches = len(sampler) if sampler is not None else len(train_loader)
    trainer, checkpoint, table = _fit(
        cfg,
        run_dir,
        module,
        train_loader,
        _val_loader(cfg, valid_set),
        flat_metrics=lambda: flatten_metrics(module.last_metrics),
        log_every=max(1, min(50, n_batches // 2)),
    )
    return _finish_training(
        cfg, run_dir, trainer, checkpoint, table, module.metrics_history, list(module.saved_pictures)
    )


def validate(config: Any = None, overrides: list[str] | None = None) -> RunResult:
    """Validates the extractor of ``config`` (weights from ``checkpoint`` or ``extractor.args.weights``)
    on the validation split, with the ``postprocessor`` when set (OML's ``extractor_validation_pipeline``).
    Pictures go to ``<run>/images``, the metrics to ``<run>/metrics.json``.
    """
    import lightning.pytorch as pl

    cfg = prepare(config, overrides, "validate")
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    run_dir = run_dir_of(cfg, "validate")
    _, valid_set = retrieval_datasets(cfg, with_train=False)
    blocks = to_container(cfg)
    postprocessor = (
        build("postprocessors", blocks["postprocessor"], where="postprocessor")
        if blocks["postprocessor"]
        else None
    )
    extractor = _extractor(cfg, load_checkpoint=True)
    check_sample_rate(extractor, valid_set)
    module = ExtractorModule(
        extractor,
        metrics_factory=_metrics_factory(cfg, postprocessor),
        images_dir=run_dir / "images" if cfg.log_images else None,
        n_worst_queries=int(cfg.n_worst_queries),
        n_retrieved_to_show=int(cfg.n_retrieved_to_show),
    )
    if postprocessor is not None and isinstance(getattr(postprocessor, "model", None), torch.nn.Module):
        module.postprocessor_model = postprocessor.model  # Lightning moves it to the device with the module
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = _trainer(cfg, run_dir)
    with _run_folder_shared_with_ranks(run_dir), quiet_third_party():
        trainer.validate(module, _val_loader(cfg, valid_set), verbose=False)
    result = RunResult(
        run_dir=run_dir, metrics=module.last_metrics, pictures=list(module.saved_pictures), trainer=trainer
    )
    if trainer.is_global_zero:
        (run_dir / "metrics.json").write_text(json.dumps(result.flat_metrics, indent=2))
        print("metrics:")
        print_metrics(result.flat_metrics)
        print_summary({"run folder": relative(run_dir)})
    return result


def predict(config: Any = None, overrides: list[str] | None = None) -> Path:
    """Embeds every file under ``data_dir`` (OML's ``extractor_prediction_pipeline``): images, or with
    ``modality`` texts (``.txt`` files, one text each) or audio files, built with ``dataset_args`` as in
    training. Writes ``<save_dir>/predictions.json`` (OML's format: ``{path: [embedding values]}``), and
    ``save_path`` when set (``.pt``: ``torch.save({"paths", "embeddings"})``; ``.npz``: arrays ``paths``,
    ``embeddings``). Returns the path of ``predictions.json``.
    """
    import lightning.pytorch as pl

    cfg = prepare(config, overrides, "predict")
    save_path = Path(cfg.save_path) if cfg.save_path else None
    if save_path is not None and save_path.suffix not in (".pt", ".npz"):
        raise ValueError(f"`save_path` must end with .pt or .npz, got '{save_path}'")
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    paths, dataset = prediction_dataset(cfg)
    extractor = _extractor(cfg, load_checkpoint=True)
    check_sample_rate(extractor, dataset)
    module = ExtractorModule(extractor)
    save_dir = Path(cfg.save_dir)
    trainer = _trainer(cfg, save_dir)
    with quiet_third_party():
        batches = trainer.predict(
            module,
            DataLoader(dataset, batch_size=int(cfg.bs or cfg.bs_val), num_workers=int(cfg.num_workers)),
        )
    embeddings = torch.cat(batches)  # type: ignore[arg-type]
    json_path = save_dir / "predictions.json"
    if not trainer.is_global_zero:
        # Under DDP the loader is not split (use_distributed_sampler=False): every rank embedded every
        # item, in order, and rank 0 writes them.
        return json_path
    names = [str(p) for p in paths]
    save_dir.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(dict(zip(names, embeddings.tolist()))))
    if save_path is not None:
        save_path.parent.mkdir(parents=True, exist_ok=True)
        if save_path.suffix == ".pt":
            torch.save({"paths": names, "embeddings": embeddings}, save_path)
        else:
            import numpy as np

            np.savez(save_path, paths=np.array(names), embeddings=embeddings.numpy())
    print(f"{len(names)} predictions have been saved to {relative(json_path)}")
    return json_path


def _embed(cfg: DictConfig, model: torch.nn.Module, dataset: Any) -> torch.Tensor:
    """``FloatTensor[len(dataset), D]`` on the CPU: the model's embeddings of the dataset's items, in
    order, computed on a GPU when the config's accelerator is a GPU (``auto``: when there is one;
    the process's ``LOCAL_RANK`` GPU, the first in a single process), in float16 there with
    ``precision: 16`` (as OML's extraction)."""
    from oml_fast.inference import inference

    accelerator = str(cfg.accelerator or "auto")
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    model.to(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if gpu else "cpu")
    embeddings = inference(
        model,
        dataset,
        batch_size=int(cfg.batch_size_inference),
        num_workers=int(cfg.num_workers),
        use_fp16=str(cfg.precision) in ("16", "16-mixed"),
    )
    return embeddings.float()


def _cached_embeddings(cfg: DictConfig, extractor: torch.nn.Module, dataset: Any, split: str) -> torch.Tensor:
    if not cfg.embeddings_cache_dir:
        return _embed(cfg, extractor, dataset)
    # The cache is keyed by what determines the embeddings: the extractor, its transform (images) or
    # dataset arguments (texts, audio), the data.
    blocks = to_container(cfg)
    key = json.dumps(
        [
            blocks["extractor"],
            blocks["transforms_extraction"] or blocks["transforms_val"],
            blocks["modality"],
            blocks["dataset_args"],
            str(Path(cfg.dataset_root).resolve()),
            cfg.dataframe_name,
            str(cfg.precision),
            cfg.checkpoint,
        ],
        sort_keys=True,
    )
    path = Path(cfg.embeddings_cache_dir) / f"emb_{split}_{hashlib.md5(key.encode()).hexdigest()[:8]}.pt"
    if path.is_file():  # a cache of another length (the dataframe has changed since) is made again
        embeddings = torch.load(path, weights_only=True)
        if isinstance(embeddings, torch.Tensor) and len(embeddings) == len(dataset):
            return embeddings
    embeddings = _embed(cfg, extractor, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(embeddings, str(path) + ".partial")
    os.replace(str(path) + ".partial", path)
    return embeddings


def train_postprocessor(config: Any = None, overrides: list[str] | None = None) -> RunResult:
    """Trains the pairwise model of a ``pairwise_reranker`` post-processor (OML's
    ``postprocessor_training_pipeline``): the extractor embeds the train and validation splits
    (cached in ``embeddings_cache_dir``), pairs are mined on those embeddings (``hard_pairs_mining``)
    and the pairwise model learns, with ``BCEWithLogitsLoss``, whether two items share a label;
    validation re-ranks the extractor's top ``postprocessor.args.top_n`` and reports the metrics.
    Items are images (OML), or texts / audio with ``modality`` and ``dataset_args`` as in training;
    ``concat_siamese`` joins a pair as :func:`oml_fast.models.meta.siamese.concat_pair` says.
    """
    import lightning.pytorch as pl

    from oml_fast.const import EMBEDDINGS_KEY
    from oml_fast.lightning.callbacks.metric import MetricValCallback
    from oml_fast.lightning.modules.pairwise_postprocessing import PairwiseModule
    from oml_fast.metrics import EmbeddingMetrics
    from oml_fast.miners import PairsMiner

    cfg = prepare(config, overrides, "train-postprocessor")
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    run_dir = run_dir_of(cfg, "train-postprocessor")
    extraction = ("transforms_extraction", "transforms_val")
    train_set, valid_set = retrieval_datasets(
        cfg, with_train=True, transforms_train=extraction, transforms_val=extraction
    )
    blocks = to_container(cfg)
    postprocessor = build("postprocessors", blocks["postprocessor"], where="postprocessor")
    model = getattr(postprocessor, "model", None)
    if not isinstance(model, torch.nn.Module):
        raise ValueError(
            f"train-postprocessor trains a pairwise model: `postprocessor` must be `pairwise_reranker`, got '{blocks['postprocessor']['name']}'"
        )
    extractor = _extractor(cfg, load_checkpoint=True)
    check_sample_rate(extractor, valid_set)
    check_sample_rate(getattr(model, "extractor", None), valid_set)
    embeddings = {
        "train": _cached_embeddings(cfg, extractor, train_set, "train"),
        "val": _cached_embeddings(cfg, extractor, valid_set, "val"),
    }
    if cfg.modality == "images":  # the pairwise model trains on augmented images (`transforms_train`)
        from oml_fast.datasets.images import ImageLabeledDataset

        train_set = ImageLabeledDataset(
            train_set.df,
            dataset_root=cfg.dataset_root,
            transform=transforms_of(cfg, ("transforms_train",)),
            cache_size=int(cfg.cache_size),
        )
    # The miner looks at the extractor's embeddings; the pairwise model at the items.
    for dataset, split in ((train_set, "train"), (valid_set, "val")):
        dataset.extra_data[EMBEDDINGS_KEY] = embeddings[split]
    train_loader, sampler = _train_loader(cfg, train_set)
    optimizer = build("optimizers", blocks["optimizer"], where="optimizer", params=model.parameters())
    scheduling = blocks["scheduling"] or {}
    scheduler = (
        build("schedulers", scheduling["scheduler"], where="scheduling.scheduler", optimizer=optimizer)
        if scheduling
        else None
    )
    module = PairwiseModule(
        pairwise_model=model,
        pairs_miner=PairsMiner(hard_mining=bool(cfg.hard_pairs_mining)),
        criterion=torch.nn.BCEWithLogitsLoss(),
        optimizer=optimizer,
        scheduler=scheduler,
        scheduler_interval=scheduling.get("scheduler_interval", "epoch"),
        scheduler_frequency=int(scheduling.get("scheduler_frequency", 1)),
        scheduler_monitor_metric=scheduling.get("monitor_metric"),
        embeddings_key=EMBEDDINGS_KEY,
        freeze_n_epochs=int(cfg.freeze_n_epochs),
    )
    metric = EmbeddingMetrics(valid_set, postprocessor=postprocessor, **_metric_args(cfg))
    history: dict[int, Any] = {}

    class _History(pl.Callback):
        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            history[trainer.current_epoch] = metric.metrics or {}

    callbacks = [MetricValCallback(metric, log_images=False), _History()]
    trainer, checkpoint, table = _fit(
        cfg,
        run_dir,
        module,
        train_loader,
        DataLoader(valid_set, batch_size=int(cfg.batch_size_inference)),
        flat_metrics=lambda: flatten_metrics(metric.metrics or {}),
        extra_callbacks=callbacks,
        log_every=max(1, min(50, len(train_loader) // 2)),
    )
    del sampler
    return _finish_training(cfg, run_dir, trainer, checkpoint, table, history, [])


__all__ = [
    "RunResult",
    "list_images",
    "predict",
    "prepare",
    "run_dir_of",
    "train",
    "train_postprocessor",
    "validate",
]
