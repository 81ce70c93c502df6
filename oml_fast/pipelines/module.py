"""The LightningModule of the pipelines: trains an extractor with a criterion, validates with EmbeddingMetrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from oml_fast.const import INDEX_KEY, INPUT_TENSORS_KEY, LABELS_KEY
from oml_fast.pipelines.pictures import save_worst_queries_picture
from oml_fast.pipelines.registry import build


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """``{"OVERALL": {"cmc": {1: tensor(0.5)}}}`` -> ``{"OVERALL/cmc/1": 0.5}`` (the keys loggers get).

    >>> flatten_metrics({"OVERALL": {"cmc": {1: torch.tensor(0.5)}, "map": {5: 0.25}}})
    {'OVERALL/cmc/1': 0.5, 'OVERALL/map/5': 0.25}
    """
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, name))
        elif isinstance(value, torch.Tensor) and value.numel() != 1:
            continue  # per-query values, not a scalar to log
        else:
            flat[name] = float(value)
    return flat


class ExtractorModule(pl.LightningModule):
    """Training and validation of an extractor.

    Args:
        model: the extractor (``forward(FloatTensor[B, 3, H, W]) -> FloatTensor[B, D]``); saved
            under the ``model.`` prefix in checkpoints.
        criterion: ``criterion(embeddings, labels) -> loss``; ``None`` for validation / prediction only.
        optimizer: ``{name, args}`` block of the optimizers registry.
        scheduling: ``None`` or ``{scheduler: {name, args}, scheduler_interval, scheduler_frequency}``.
        metrics_factory: ``dataset -> EmbeddingMetrics`` (called at the start of each validation).
        images_dir: where the worst-query pictures are saved (``None``: no pictures).
        n_worst_queries, n_retrieved_to_show: size of those pictures.
        seed: when set, every training epoch sets the epoch of the batch sampler (``set_epoch``): with
            :class:`~oml_fast.pipelines.resume.EpochBatchSampler` the batches and augmentations of an
            epoch then do not depend on earlier epochs, and a resumed run continues as it would have.
        freeze_n_epochs: the extractor's parameters are frozen for the first epochs (only the
            criterion's train).
    """

    def __init__(
        self,
        model: nn.Module,
        criterion: nn.Module | None = None,
        optimizer: Mapping[str, Any] | None = None,
        scheduling: Mapping[str, Any] | None = None,
        metrics_factory: Callable[[Any], Any] | None = None,
        images_dir: str | Path | None = None,
        n_worst_queries: int = 4,
        n_retrieved_to_show: int = 5,
        seed: int | None = None,
        freeze_n_epochs: int = 0,
    ):
        super().__init__()
        self.seed, self.freeze_n_epochs = seed, int(freeze_n_epochs)
        self.model = model
        self.criterion = criterion
        self.optimizer_block = (
            dict(optimizer) if optimizer is not None else {"name": "adam", "args": {"lr": 1e-3}}
        )
        self.scheduling = dict(scheduling) if scheduling else None
        self.metrics_factory = metrics_factory
        self.images_dir = Path(images_dir) if images_dir is not None else None
        self.n_worst_queries, self.n_retrieved_to_show = n_worst_queries, n_retrieved_to_show
        self.last_metrics: dict[str, Any] = {}
        self.metrics_history: dict[
            int, dict[str, Any]
        ] = {}  # epoch -> metrics, of the validations during fit
        self.saved_pictures: list[Path] = []
        self._metrics: Any = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    # training -----------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        if self.criterion is None:
            raise RuntimeError("ExtractorModule was built without a criterion; it cannot train")
        embeddings = self.model(batch[INPUT_TENSORS_KEY])
        labels = torch.as_tensor(batch[LABELS_KEY], device=embeddings.device)
        loss = self.criterion(embeddings, labels)
        batch_size = embeddings.shape[0]
        self.log("loss", loss.detach(), prog_bar=True, batch_size=batch_size, on_step=True, on_epoch=True)
        for name, value in (getattr(self.criterion, "last_logs", None) or {}).items():
            self.log(str(name), float(value), batch_size=batch_size, on_step=True, on_epoch=True)
        return loss

    def on_train_epoch_start(self) -> None:
        epoch = self.current_epoch
        if self.seed is not None:
            loader = self.trainer.train_dataloader
            set_epoch = getattr(getattr(loader, "batch_sampler", None), "set_epoch", None)
            if callable(set_epoch):
                set_epoch(epoch)
        if self.freeze_n_epochs > 0:
            for param in self.model.parameters():
                param.requires_grad_(epoch >= self.freeze_n_epochs)

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = build("optimizers", self.optimizer_block, where="optimizer", params=params)
        if not self.scheduling:
            return optimizer
        scheduling = dict(self.scheduling)
        valid = {"scheduler", "scheduler_interval", "scheduler_frequency", "monitor_metric"}
        unknown = sorted(set(scheduling) - valid)
        if unknown or "scheduler" not in scheduling:
            raise ValueError(
                f"`scheduling` has unknown keys {unknown} or no `scheduler`; valid keys: {sorted(valid)}"
            )
        scheduler = build(
            "schedulers", scheduling["scheduler"], where="scheduling.scheduler", optimizer=optimizer
        )
        lr_scheduler = {
            "scheduler": scheduler,
            "interval": scheduling.get("scheduler_interval", "epoch"),
            "frequency": int(scheduling.get("scheduler_frequency", 1)),
        }
        if scheduling.get("monitor_metric"):
            lr_scheduler["monitor"] = scheduling["monitor_metric"]
        return {"optimizer": optimizer, "lr_scheduler": lr_scheduler}

    # validation ---------------------------------------------------------------------------------
    def _val_dataset(self) -> Any:
        loaders = self.trainer.val_dataloaders
        loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
        assert loader is not None  # validation runs only with a validation loader
        return loader.dataset

    def on_validation_epoch_start(self) -> None:
        if self.metrics_factory is None:
            raise RuntimeError("ExtractorModule was built without a metrics_factory; it cannot validate")
        dataset = self._val_dataset()
        self._metrics = self.metrics_factory(dataset)
        self._metrics.setup(num_samples=len(dataset))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        embeddings = self.model(batch[INPUT_TENSORS_KEY]).float()
        indices = torch.as_tensor(batch[INDEX_KEY]).long()
        self._metrics.update(embeddings.detach().cpu(), indices.cpu())

    def on_validation_epoch_end(self) -> None:
        # Under DDP the metrics object gathers every rank's embeddings (EmbeddingMetricsDDP): a
        # collective, so every rank computes, and every rank gets the same numbers.
        metrics = self._metrics.compute_metrics()
        self.last_metrics = metrics
        if self.trainer.state.fn == "fit":
            self.metrics_history[self.current_epoch] = metrics
        flat = flatten_metrics(metrics)
        # The values are equal on every rank; "max" keeps them exact where "mean" could round.
        self.log_dict(flat, on_epoch=True, prog_bar=False, batch_size=1, sync_dist=True, reduce_fx="max")
        if self.images_dir is not None and self.trainer.is_global_zero:
            epoch = self.current_epoch if self.trainer.state.fn == "fit" else None
            name = (
                f"epoch_{epoch:03d}_worst_queries.png"
                if epoch is not None
                else "validation_worst_queries.png"
            )
            path = save_worst_queries_picture(
                self._metrics, self.images_dir / name, self.n_worst_queries, self.n_retrieved_to_show
            )
            if path is not None:
                self.saved_pictures.append(path)
                self._log_picture(path)
        self._metrics = None

    def _log_picture(self, path: Path) -> None:
        from oml_fast.pipelines.loggers import log_picture

        for logger in self.loggers:
            log_picture(logger, path, step=self.global_step)

    # prediction ---------------------------------------------------------------------------------
    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        return self.model(batch[INPUT_TENSORS_KEY]).float().cpu()
