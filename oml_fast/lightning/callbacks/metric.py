"""Computing a metric at the end of validation with Lightning (OML's ``oml.lightning.callbacks.metric``)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch import Callback
from torch.utils.data import DataLoader

from oml_fast.const import INDEX_KEY
from oml_fast.ddp.patching import check_loaders_is_patched
from oml_fast.distributed.metrics import EmbeddingMetricsDDP
from oml_fast.functional.metrics import flatten_metrics
from oml_fast.metrics import EmbeddingMetrics


class MetricValCallback(Callback):
    """Feeds the outputs of ``validation_step`` to ``metric`` and logs its results when the loader ends.

    For loader ``loader_idx``: ``metric.setup(num_samples)`` at its first batch, ``metric.update_data(outputs,
    indices=outputs["idx"])`` after each batch, and after the last expected sample
    ``metric.compute_metrics()``, flattened to ``"OVERALL/cmc/1"``-style keys, goes to ``pl_module.log_dict``.
    The number of samples must match the dataset (no ``overfit_batches``, no ``drop_last``): otherwise a
    ``ValueError`` says so.

    Under DDP (world size > 1) each rank expects ``ceil(len(dataset) / world_size)`` samples (the
    patched loaders pad), the validation loaders must be patched (:class:`~oml_fast.lightning.ExtractorModuleDDP`
    does it), and a plain :class:`~oml_fast.metrics.EmbeddingMetrics` is turned into
    :class:`~oml_fast.distributed.EmbeddingMetricsDDP` so that every rank computes on all ranks' embeddings.

    Args:
        metric: ``setup``, ``update_data``, ``compute_metrics`` (e.g. ``EmbeddingMetrics``).
        log_images: also log the metric's pictures (``metric.visualize()``) through loggers that can.
        loader_idx: the validation loader the metric is computed on.
    """

    def __init__(self, metric: Any, log_images: bool = False, loader_idx: int = 0):
        self.metric = metric
        self.log_images = log_images
        if log_images and not (hasattr(metric, "visualize") and metric.ready_to_visualize()):
            raise ValueError(
                "`log_images=True` needs a metric that can visualise (`ready_to_visualize()` True)"
            )
        self.loader_idx = loader_idx
        self._expected_samples = 0
        self._collected_samples = 0
        self._ready_to_accumulate = False

    def _calc_expected_samples(self, trainer: pl.Trainer, dataloader_idx: int = 0) -> int:
        loaders = trainer.val_dataloaders
        loaders = [loaders] if isinstance(loaders, DataLoader) else loaders
        n = len(loaders[dataloader_idx].dataset)  # type: ignore[index,arg-type]
        return math.ceil(n / trainer.world_size) if trainer.world_size > 1 else n

    def on_validation_batch_start(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if dataloader_idx != self.loader_idx or self._ready_to_accumulate:
            return
        if trainer.world_size > 1 and type(self.metric) is EmbeddingMetrics:
            self.metric.__class__ = EmbeddingMetricsDDP  # same state, plus the gathering of all ranks
        self._expected_samples = self._calc_expected_samples(trainer, dataloader_idx)
        self._collected_samples = 0
        self.metric.setup(num_samples=self._expected_samples_total(trainer, dataloader_idx))
        self._ready_to_accumulate = True

    def _expected_samples_total(self, trainer: pl.Trainer, dataloader_idx: int) -> int:
        # The metric places rows by dataset index: it is set up for the whole dataset on every rank.
        loaders = trainer.val_dataloaders
        loaders = [loaders] if isinstance(loaders, DataLoader) else loaders
        return len(loaders[dataloader_idx].dataset)  # type: ignore[index,arg-type]

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if dataloader_idx != self.loader_idx:
            return
        if not self._ready_to_accumulate:
            raise RuntimeError("MetricValCallback got a batch before it was set up")
        self.metric.update_data(data=outputs, indices=outputs[INDEX_KEY])
        self._collected_samples += len(outputs[INDEX_KEY])
        if self._collected_samples > self._expected_samples:
            self._raise_computation_error()
        # Computed at the last batch (not at epoch end) so that Lightning knows the loader index when logging.
        if self._collected_samples == self._expected_samples:
            self.calc_and_log_metrics(pl_module)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._ready_to_accumulate = False
        if self._collected_samples != self._expected_samples:
            self._raise_computation_error()

    def calc_and_log_metrics(self, pl_module: pl.LightningModule) -> None:
        metrics = flatten_metrics(self.metric.compute_metrics())
        scalars = {k: v for k, v in metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
        pl_module.log_dict(
            {k: float(v) for k, v in scalars.items()}, rank_zero_only=True, add_dataloader_idx=True
        )
        if self.log_images:
            self._log_images(pl_module)

    def _log_images(self, pl_module: pl.LightningModule) -> None:
        logger = pl_module.logger
        log_figure = getattr(logger, "log_figure", None)
        if log_figure is None:
            warnings.warn(
                f"logger {logger} cannot log figures (no `log_figure`): pictures not logged", stacklevel=2
            )
            return
        import matplotlib.pyplot as plt

        for figure, name in zip(*self.metric.visualize()):
            log_figure(fig=figure, title=f"images/{name}", idx=pl_module.current_epoch)
            plt.close(fig=figure)

    def _raise_computation_error(self) -> None:
        raise ValueError(
            f"Incorrect calculation for {type(self.metric).__name__}: {self._collected_samples} samples obtained, "
            f"{self._expected_samples} expected. Do not use `overfit_batches` in the Trainer, and build the "
            "validation loader with `drop_last=False`: the loader must give every item of the dataset once."
        )

    @staticmethod
    def _check_loaders(trainer: pl.Trainer) -> None:
        if trainer.world_size > 1 and trainer.val_dataloaders is not None:
            if not check_loaders_is_patched(trainer.val_dataloaders):
                raise RuntimeError(
                    "DDP run with validation loaders that are not patched: the metric would be wrong. Use "
                    "ExtractorModuleDDP / PairwiseModuleDDP (they patch their loaders), or patch_dataloader_to_ddp "
                    "in your own val_dataloader(); do not pass loaders to trainer.fit / trainer.validate; build "
                    "the Trainer with use_distributed_sampler=False; do not use overfit_batches."
                )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check_loaders(trainer)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check_loaders(trainer)


__all__ = ["MetricValCallback"]
