"""Training a pairwise model (a re-ranker) with Lightning (OML's ``oml.lightning.modules.pairwise_postprocessing``)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

from oml_fast.const import EMBEDDINGS_KEY, INPUT_TENSORS_KEY, LABELS_KEY
from oml_fast.lightning.modules._optim import apply_freezing, configure_optimizers, progress_bar_dict
from oml_fast.lightning.modules.ddp import ModuleDDP, TTrainDataloaders, TValDataloaders
from oml_fast.utils.batches import take_items


class PairwiseModule(pl.LightningModule):
    """Trains ``pairwise_model`` on pairs mined in each batch.

    Each training batch holds ``embeddings_key`` (the features the miner looks at, e.g. embeddings of a
    frozen extractor) and ``input_tensors_key`` (what the pairwise model takes: the same embeddings, or
    images, audio or tokenised texts; rows are picked with :func:`~oml_fast.utils.batches.take_items`).
    ``pairs_miner.sample(features, labels)`` gives ``(ids1, ids2, is_negative)``; the loss is
    ``criterion(model(x1, x2), is_negative.float())`` (e.g. ``BCEWithLogitsLoss``). Logged: ``loss``
    (per step and epoch) and, with a scheduler, ``lr``. ``validation_step`` returns the batch unchanged
    (the metric applies the model through its post-processor).
    """

    def __init__(
        self,
        pairwise_model: nn.Module,
        pairs_miner: Any,
        criterion: nn.Module,
        optimizer: torch.optim.Optimizer,
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
        self.model = pairwise_model
        self.miner = pairs_miner
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

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        labels = torch.as_tensor(batch[self.labels_key])
        ids1, ids2, is_negative = self.miner.sample(features=batch[self.embeddings_key], labels=labels)
        inputs = batch[self.input_tensors_key]
        predictions = self.model(x1=take_items(inputs, ids1), x2=take_items(inputs, ids2))
        loss = self.criterion(predictions, torch.as_tensor(is_negative).float().to(predictions.device))
        batch_size = len(labels)
        self.log("loss", loss.item(), prog_bar=True, batch_size=batch_size, on_step=True, on_epoch=True)
        if self.scheduler is not None:
            lr = float(self.scheduler.get_last_lr()[0])
            self.log("lr", lr, prog_bar=True, batch_size=batch_size, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int, *_: Any) -> dict[str, Any]:
        return batch

    def configure_optimizers(self) -> Any:
        return configure_optimizers(self)

    def on_train_epoch_start(self) -> None:
        if self.freeze_n_epochs and hasattr(self.model, "freeze"):
            apply_freezing(self)

    def on_epoch_start(self) -> None:
        """OML's Lightning 1.x hook (Lightning 2 never calls it): the freezing of ``on_train_epoch_start``."""
        self.on_train_epoch_start()

    def get_progress_bar_dict(self) -> dict[str, Any]:
        """OML's Lightning 1.x hook (Lightning 2 never calls it): the progress bar's metrics without ``v_num``."""
        return progress_bar_dict(self)


class PairwiseModuleDDP(PairwiseModule, ModuleDDP):
    """:class:`PairwiseModule` that serves its own loaders, patched to DDP (see :class:`ModuleDDP`)."""

    def __init__(
        self,
        loaders_train: TTrainDataloaders | None = None,
        loaders_val: TValDataloaders | None = None,
        *args: Any,
        **kwargs: Any,
    ):
        ModuleDDP.__init__(self, loaders_train=loaders_train, loaders_val=loaders_val)
        PairwiseModule.__init__(self, *args, **kwargs)


__all__ = ["PairwiseModule", "PairwiseModuleDDP"]
