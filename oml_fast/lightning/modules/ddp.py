"""A LightningModule that patches its own loaders to DDP (OML's ``oml.lightning.modules.ddp.ModuleDDP``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
from torch.utils.data import DataLoader

from oml_fast.ddp.patching import patch_dataloader_to_ddp

TValDataloaders = DataLoader | Sequence[DataLoader]
TTrainDataloaders = TValDataloaders | dict[str, DataLoader]


class ModuleDDP(pl.LightningModule):
    """Serves ``loaders_train`` / ``loaders_val`` from ``train_dataloader`` / ``val_dataloader``, each patched
    with :func:`~oml_fast.ddp.patch_dataloader_to_ddp` (the batch samplers' batches are dealt out whole).

    Run it with ``trainer.fit(module)`` / ``trainer.validate(module)`` *without* passing loaders, and with
    ``Trainer(use_distributed_sampler=False)`` so that Lightning does not replace the samplers.
    """

    def __init__(
        self, loaders_train: TTrainDataloaders | None = None, loaders_val: TValDataloaders | None = None
    ):
        if loaders_train is None and loaders_val is None:
            raise ValueError("give at least one of `loaders_train` and `loaders_val`")
        pl.LightningModule.__init__(self)
        self.loaders_train = loaders_train
        self.loaders_val = loaders_val

    def train_dataloader(self) -> Any:
        return self._patch_loaders(self.loaders_train) if self.loaders_train else super().train_dataloader()

    def val_dataloader(self) -> Any:
        return self._patch_loaders(self.loaders_val) if self.loaders_val else super().val_dataloader()

    @staticmethod
    def _patch_loaders(loaders: Any) -> Any:
        if isinstance(loaders, DataLoader):
            return patch_dataloader_to_ddp(loaders)
        if isinstance(loaders, (list, tuple)):
            return [patch_dataloader_to_ddp(loader) for loader in loaders]
        if isinstance(loaders, dict):
            return {key: patch_dataloader_to_ddp(loader) for key, loader in loaders.items()}
        raise TypeError(
            f"loaders must be a DataLoader, a list / tuple or a dict of them, got {type(loaders).__name__}"
        )


__all__ = ["ModuleDDP"]
