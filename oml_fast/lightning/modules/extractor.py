"""Training an extractor with Lightning (OML's ``oml.lightning.modules.extractor``)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from oml_fast.const import EMBEDDINGS_KEY, INPUT_TENSORS_KEY, LABELS_KEY
from oml_fast.lightning.modules._optim import apply_freezing, configure_optimizers, progress_bar_dict
from oml_fast.lightning.modules.ddp import ModuleDDP, TTrainDataloaders, TValDataloaders


class ExtractorModule(pl.LightningModule):
    """Trains ``extractor`` with ``criterion(embeddings, labels)``; validation returns the batch plus embeddings.

    Logged while training (per step and per epoch): the loss as ``<criterion_name>_loss`` (``loss``
    when the criterion has no ``criterion_name``), the criterion's ``last_logs`` (per step) and, with a
    scheduler, ``lr``. ``validation_step`` / ``predict_step`` return ``{**batch, embeddings_key:
    embeddings}``, which :class:`~oml_fast.lightning.MetricValCallback` feeds to the metric.

    Args:
        extractor: the model (``feat_dim``, ``forward(x) -> Tensor[B, feat_dim]``; ``extract`` if it has one).
        criterion: the loss; ``None`` for validation / prediction only.
        optimizer: an optimizer instance over the extractor's (and criterion's) parameters.
        scheduler: an LR scheduler instance or ``None``.
        scheduler_interval: ``"step"`` or ``"epoch"``.
        scheduler_frequency: call the scheduler every that many intervals.
        input_tensors_key, labels_key, embeddings_key: batch keys.
        scheduler_monitor_metric: the logged value ``ReduceLROnPlateau`` follows.
        freeze_n_epochs: freeze the model (``freeze()``) for that many first epochs, then ``unfreeze()``.
    """

    def __init__(
        self,
        extractor: nn.Module,
        criterion: nn.Module | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any | None = None,
        scheduler_interval: str = "step",
        scheduler_frequency: int = 1,
        input_tensors_key: str = INPUT_TENSORS_KEY,
        labels_key: str = LABELS_KEY,
        embeddings_key: str = EMBEDDINGS_KEY,
        scheduler_monitor_metric: str | None = None,
        freeze_n_epochs: int = 0,
    ):
        pl.LightningModule.__init__(self)
        self.model = extractor
        self.criterion = criterion
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.scheduler_frequency = scheduler_frequency
        self.input_tensors_key = input_tensors_key
        self.labels_key = labels_key
        self.embeddings_key = embeddings_key
        self.monitor_metric = scheduler_monitor_metric
        self.freeze_n_epochs = freeze_n_epochs
        if freeze_n_epochs and not (hasattr(extractor, "freeze") and hasattr(extractor, "unfreeze")):
            raise ValueError(
                f"`freeze_n_epochs` needs a model with freeze() / unfreeze(), got {type(extractor).__name__}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        if self.criterion is None:
            raise RuntimeError("ExtractorModule was built without a criterion; it cannot train")
        embeddings = self.model(batch[self.input_tensors_key])
        batch_size = len(embeddings)
        labels = torch.as_tensor(batch[self.labels_key], device=embeddings.device)
        loss = self.criterion(embeddings, labels)
        loss_name = (getattr(self.criterion, "criterion_name", "") + "_loss").strip("_")
        self.log(loss_name, loss.item(), prog_bar=True, batch_size=batch_size, on_step=True, on_epoch=True)
        last_logs = getattr(self.criterion, "last_logs", None)
        if last_logs:
            logs = {str(k): float(v) for k, v in last_logs.items()}
            self.log_dict(logs, prog_bar=False, batch_size=batch_size, on_step=True, on_epoch=False)
        if self.scheduler is not None:
            lr = self.scheduler.get_last_lr()[0]
            self.log("lr", float(lr), prog_bar=True, batch_size=batch_size, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int, *_: Any) -> dict[str, Any]:
        extract = getattr(self.model, "extract", self.model)
        return {**batch, self.embeddings_key: extract(batch[self.input_tensors_key])}

    def predict_step(self, batch: dict[str, Any], batch_idx: int, *_: Any) -> dict[str, Any]:
        return self.validation_step(batch, batch_idx)

    def configure_optimizers(self) -> Any:
        return configure_optimizers(self)

    def on_train_epoch_start(self) -> None:
        apply_freezing(self)

    def on_epoch_start(self) -> None:
        """OML's Lightning 1.x hook (Lightning 2 never calls it): the freezing of ``on_train_epoch_start``."""
        self.on_train_epoch_start()

    def get_progress_bar_dict(self) -> dict[str, Any]:
        """OML's Lightning 1.x hook (Lightning 2 never calls it): the progress bar's metrics without ``v_num``."""
        return progress_bar_dict(self)


class ExtractorModuleDDP(ExtractorModule, ModuleDDP):
    """:class:`ExtractorModule` that serves its own loaders, patched to DDP (see :class:`ModuleDDP`).

    ``ExtractorModuleDDP(loaders_train=..., loaders_val=..., extractor=..., criterion=..., optimizer=...)``.
    """

    def __init__(
        self,
        loaders_train: TTrainDataloaders | None = None,
        loaders_val: TValDataloaders | None = None,
        *args: Any,
        **kwargs: Any,
    ):
        ModuleDDP.__init__(self, loaders_train=loaders_train, loaders_val=loaders_val)
        ExtractorModule.__init__(self, *args, **kwargs)


__all__ = ["ExtractorModule", "ExtractorModuleDDP"]
