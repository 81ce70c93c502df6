"""oml_fast.lightning: real Lightning runs (1 epoch, small) on the digits data, as OML users write them."""

from __future__ import annotations

import lightning.pytorch as pl
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from oml_fast.datasets import ImageLabeledDataset, ImageQueryGalleryLabeledDataset
from oml_fast.lightning import ExtractorModule, MetricValCallback, PairwiseModule
from oml_fast.losses import TripletLossWithMiner
from oml_fast.metrics import EmbeddingMetrics
from oml_fast.miners import AllTripletsMiner, PairsMiner
from oml_fast.models import LinearTrivialDistanceSiamese, SmallCNNExtractor
from oml_fast.samplers import BalanceSampler
from oml_fast.transforms import get_normalisation_resize_torch


def _datasets(root, n_per_label=12):
    df = pd.read_csv(root / "df.csv")
    df = df.groupby("label").head(n_per_label).reset_index(drop=True)
    transform = get_normalisation_resize_torch(im_size=8)
    train = ImageLabeledDataset(
        df[df.split == "train"].reset_index(drop=True), dataset_root=root, transform=transform
    )
    valid = ImageQueryGalleryLabeledDataset(
        df[df.split == "validation"].reset_index(drop=True), dataset_root=root, transform=transform
    )
    return train, valid


def _trainer(**kwargs):
    return pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def test_extractor_module_with_metric_callback(digits_root):
    train, valid = _datasets(digits_root)
    extractor = SmallCNNExtractor(feat_dim=16, width=4)
    criterion = TripletLossWithMiner(margin=0.1, miner=AllTripletsMiner(), need_logs=True)
    optimizer = torch.optim.Adam(extractor.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    module = ExtractorModule(extractor, criterion, optimizer, scheduler=scheduler)
    sampler = BalanceSampler(train.get_labels(), n_labels=3, n_instances=4)
    train_loader = DataLoader(train, batch_sampler=sampler)
    val_loader = DataLoader(valid, batch_size=16)
    metric = EmbeddingMetrics(
        dataset=valid, cmc_top_k=(1,), precision_top_k=(5,), map_top_k=(5,), verbose=False
    )
    trainer = _trainer(callbacks=[MetricValCallback(metric=metric)], num_sanity_val_steps=0)
    trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader)

    logged = trainer.callback_metrics
    assert {"OVERALL/cmc/1", "OVERALL/precision/5", "OVERALL/map/5", "lr"} <= set(logged)
    assert any(key.endswith("loss_epoch") for key in logged)
    assert 0.0 <= float(logged["OVERALL/cmc/1"]) <= 1.0
    # the callback's numbers are those of the metric it was given
    assert float(logged["OVERALL/cmc/1"]) == pytest.approx(float(metric.metrics["OVERALL"]["cmc"][1]))

    outputs = trainer.predict(module, dataloaders=DataLoader(valid, batch_size=16))
    assert outputs[0]["embeddings"].shape == (16, 16) and "labels" in outputs[0]


def test_metric_callback_rejects_dropped_samples(digits_root):
    _, valid = _datasets(digits_root)
    module = ExtractorModule(SmallCNNExtractor(feat_dim=8, width=4))
    metric = EmbeddingMetrics(
        dataset=valid, cmc_top_k=(1,), precision_top_k=(1,), map_top_k=(1,), verbose=False
    )
    trainer = _trainer(callbacks=[MetricValCallback(metric=metric)])
    with pytest.raises(ValueError, match="drop_last"):
        trainer.validate(module, DataLoader(valid, batch_size=7, drop_last=True), verbose=False)


def test_pairwise_module_trains_on_mined_pairs(digits_root):
    train, _ = _datasets(digits_root)
    extractor = SmallCNNExtractor(feat_dim=8, width=4).eval()
    with torch.no_grad():
        embeddings = torch.cat([extractor(train[i]["input_tensors"][None]) for i in range(len(train))])

    class EmbeddingsDataset(torch.utils.data.Dataset):
        def __len__(self):
            return len(train)

        def __getitem__(self, i):
            return {
                "input_tensors": embeddings[i],
                "embeddings": embeddings[i],
                "labels": int(train.get_labels()[i]),
            }

    model = LinearTrivialDistanceSiamese(feat_dim=8, identity_init=True)
    module = PairwiseModule(
        pairwise_model=model,
        pairs_miner=PairsMiner(hard_mining=True),
        criterion=torch.nn.BCEWithLogitsLoss(),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
    )
    before = model.proj.weight.detach().clone()
    loader = DataLoader(
        EmbeddingsDataset(), batch_sampler=BalanceSampler(train.get_labels(), n_labels=3, n_instances=4)
    )
    trainer = _trainer()
    trainer.fit(module, train_dataloaders=loader)
    assert "loss" in trainer.callback_metrics
    assert not torch.equal(before, model.proj.weight)


@pytest.mark.parametrize("module_class", ["extractor", "pairwise"])
def test_lightning_1_hooks_freeze_and_hide_the_version(module_class, tmp_path):
    """OML's Lightning 1.x hooks, callable by hand: ``on_epoch_start`` freezes as ``on_train_epoch_start`` does,
    ``get_progress_bar_dict`` is the progress bar's metrics without ``v_num``."""
    from lightning.pytorch.loggers import CSVLogger

    from oml_fast.models import ConcatSiamese, ExtractorWithMLP

    if module_class == "extractor":
        model = ExtractorWithMLP(SmallCNNExtractor(feat_dim=8, width=4), mlp_features=[4])
        module = ExtractorModule(model, freeze_n_epochs=1)
    else:
        model = ConcatSiamese(SmallCNNExtractor(feat_dim=8, width=4), mlp_hidden_dims=[4])
        module = PairwiseModule(
            model,
            PairsMiner(),
            torch.nn.BCEWithLogitsLoss(),
            torch.optim.SGD(model.parameters()),
            freeze_n_epochs=1,
        )
    assert module.get_progress_bar_dict() == {}  # no trainer yet

    module.on_epoch_start()  # epoch 0 < freeze_n_epochs
    assert not model.train_backbone
    trainer = pl.Trainer(accelerator="cpu", logger=CSVLogger(tmp_path), enable_progress_bar=True)
    module.trainer = trainer
    trainer.fit_loop.epoch_progress.current.completed = 1
    module.on_epoch_start()  # epoch 1: unfrozen
    assert model.train_backbone

    assert "v_num" in trainer.progress_bar_callback.get_metrics(trainer, module)
    assert "v_num" not in module.get_progress_bar_dict()
