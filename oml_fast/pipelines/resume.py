"""What makes a training run safe to stop and to resume.

- :class:`AtomicModelCheckpoint`: a checkpoint is written to a temporary file beside its final
  name and renamed (an atomic ``os.replace``), so a run stopped mid-write (Ctrl-C, a crash, a full
  disk) never leaves a truncated ``best.ckpt`` / ``last.ckpt``; the previous one stays intact.
- :class:`EpochBatchSampler`: the batches of epoch ``e`` are drawn from the global generators seeded
  with ``seed + e``, in one process as under DDP, and the global generators are then seeded from
  ``(seed, e)`` for the epoch's augmentations; with ``num_workers > 0`` the loader's workers are seeded
  from ``(seed, e)`` through the sampler's ``generator``, and :class:`EpochDataLoader` starts them
  only once the epoch is set. So a run resumed at epoch ``e``
  (``checkpoint=last``) draws the batches and augmentations the uninterrupted run would have drawn.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from weakref import proxy

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from oml_fast.distributed import DDPBatchSamplerWrapper, get_rank, get_world_size, is_distributed
from oml_fast.distributed.samplers import ForkedGlobalRNG

TEMP_SUFFIX = ".partial"


class AtomicModelCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` that writes ``<name>.ckpt.partial`` and renames it to ``<name>.ckpt``;
    the loggers hear of a checkpoint (``after_save_checkpoint``: MLflow, Neptune upload it) once renamed."""

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        temporary = filepath + TEMP_SUFFIX
        trainer.save_checkpoint(temporary, self.save_weights_only)  # every rank takes part; rank 0 writes
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            os.replace(temporary, filepath)
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))
        trainer.strategy.barrier("AtomicModelCheckpoint")


class EpochBatchSampler(DDPBatchSamplerWrapper):
    """A batch sampler whose epoch ``e`` depends only on ``seed + e`` (set by :meth:`set_epoch`).

    Under DDP each rank takes its whole batches of the epoch, as :class:`DDPBatchSamplerWrapper`
    does. The wrapped sampler must draw from the global generators (``seed=None``, the pipelines' way).

    With ``num_workers > 0`` the augmentations are drawn in the workers. Torch seeds their generators
    from a base seed that a loader iterator draws, when it is made, from ``DataLoader(generator=...)``:
    by default the global generator, in the state the previous epoch left, which a resumed run does
    not have. Give the loader :attr:`generator` (and make it an :class:`EpochDataLoader`): it is
    seeded from ``(seed, e)`` for the coming epoch ``e``, by :meth:`set_epoch` or, when the epoch
    advances by itself, once the previous epoch has begun. Workers must not persist across epochs
    (``persistent_workers=False``, the default).
    """

    def __init__(self, batch_sampler: Any, seed: int = 0, drop_last: bool = False):
        super().__init__(batch_sampler, seed=seed, drop_last=drop_last)
        self.generator = torch.Generator()
        self._seed_workers_generator()

    def _seed_workers_generator(self) -> None:
        self.generator.manual_seed(self.seed + 2_000_029 * (self.epoch + 1))

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self._seed_workers_generator()

    def __iter__(self) -> Iterator[list[int]]:
        with ForkedGlobalRNG(self.seed + self.epoch):
            batches = [list(batch) for batch in self.batch_sampler]
        # The epoch's augmentations too (drawn from the global generators as the batches are loaded):
        # seeded here, at the first batch, after Lightning has made (or not) a new loader iterator.
        seed = self.seed + 1_000_003 * (self.epoch + 1)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        if not self._epoch_was_set:
            self.epoch += 1
            self._seed_workers_generator()
        self._epoch_was_set = False
        if is_distributed():
            yield from self.batches_of_rank(batches, get_rank(), get_world_size())
        else:
            yield from batches


class EpochDataLoader(DataLoader):
    """A ``DataLoader`` whose iterator is made at its first batch, not when ``iter()`` is called.

    Lightning makes the training loader's iterator in ``FitLoop.setup_data`` and, when resuming, uses
    it for the first epoch: that is before it sets the epoch of the batch sampler. A loader with
    workers starts them (drawing their base seed from ``generator``) and asks the sampler for batches
    as soon as its iterator is made; here that waits until the first batch, when the epoch is set.
    Give it an :class:`EpochBatchSampler` and that sampler's ``generator``.
    """

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return self._started_at_first_batch()

    def _started_at_first_batch(self) -> Iterator[Any]:
        yield from super().__iter__()


def last_checkpoint(run_dir: Path) -> Path:
    """``<run_dir>/checkpoints/last.ckpt``; ``FileNotFoundError`` naming it when there is none."""
    path = run_dir / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint=last: no {path} to resume from (set `logs_folder` to the folder of the run to resume)"
        )
    return path


__all__ = ["TEMP_SUFFIX", "AtomicModelCheckpoint", "EpochBatchSampler", "EpochDataLoader", "last_checkpoint"]
