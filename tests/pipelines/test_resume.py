"""A resumed run draws what the uninterrupted run draws, with data loader workers too."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from oml_fast.pipelines import load_config
from oml_fast.pipelines.data import retrieval_datasets
from oml_fast.pipelines.runs import _train_loader


def _epoch_images(loader, epoch: int, iterator_first: bool, n_batches: int = 2) -> list[torch.Tensor]:
    """The (augmented) images of the first batches of ``epoch``. As Lightning does it: the epoch of the
    batch sampler is set, then the iterator made; but the first epoch of a run (a resumed one too)
    uses the iterator made in ``setup_data``, before the epoch is set (``iterator_first``)."""
    if iterator_first:
        iterator = iter(loader)
        loader.batch_sampler.set_epoch(epoch)
    else:
        loader.batch_sampler.set_epoch(epoch)
        iterator = iter(loader)
    return [next(iterator)["input_tensors"] for _ in range(n_batches)]


@pytest.mark.parametrize("sampler", ["balance", "null"])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_an_epoch_of_a_resumed_run_loads_the_uninterrupted_runs_batches(digits_root, num_workers, sampler):
    # Workers draw the augmentations with generators seeded from the loader's `generator` (the sampler's,
    # seeded from (seed, epoch)); by default they came from the global generator's state after the
    # previous epoch, which a resumed run does not have. A loader with workers asks the sampler for the
    # epoch's batches when its iterator is made (before Lightning sets the epoch when resuming): ours
    # waits for the first batch. `sampler: null` shuffles from (seed, epoch) too.
    overrides = [f"dataset_root={digits_root}", f"num_workers={num_workers}"]
    cfg = load_config(
        "train_digits", [*overrides, *(["sampler=null", "bs_train=16"] if sampler == "null" else [])]
    )

    def fresh_loader():
        pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
        return _train_loader(cfg, retrieval_datasets(cfg, with_train=True)[0])[0]

    loader = fresh_loader()  # the uninterrupted run: epoch 0, the training's own draws, epoch 1
    first = _epoch_images(loader, 0, iterator_first=True)
    torch.rand(5)
    uninterrupted = _epoch_images(loader, 1, iterator_first=False)
    assert not torch.equal(first[0], uninterrupted[0])  # epochs differ
    resumed = _epoch_images(
        fresh_loader(), 1, iterator_first=True
    )  # resumed at epoch 1: nothing drawn before
    for a, b in zip(uninterrupted, resumed, strict=True):
        assert torch.equal(a, b)
