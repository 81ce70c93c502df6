"""OML's "Lightning DDP" example with ``oml`` renamed to ``oml_fast``, as a script (Lightning's DDP starts
the other rank by running this file again). Usage: python lightning_ddp.py DATASET_ROOT OUTPUT_JSON

The extractor is our small CNN instead of OML's ViT (no download); the rest is OML's example.
"""

import json
import sys

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import DDPStrategy
from torch.optim import Adam
from torch.utils.data import DataLoader

from oml_fast.datasets import ImageLabeledDataset, ImageQueryGalleryLabeledDataset
from oml_fast.lightning import ExtractorModuleDDP, MetricValCallback
from oml_fast.losses import TripletLossWithMiner
from oml_fast.metrics import EmbeddingMetrics
from oml_fast.miners import AllTripletsMiner
from oml_fast.models import SmallCNNExtractor
from oml_fast.samplers import BalanceSampler
from oml_fast.utils import get_mock_images_dataset

if __name__ == "__main__":
    dataset_root, output = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    pl.seed_everything(0, verbose=False)
    df_train, df_val = get_mock_images_dataset(dataset_root, global_paths=True)

    # model
    extractor = SmallCNNExtractor(feat_dim=16, width=8)

    # train
    optimizer = Adam(extractor.parameters(), lr=1e-3)
    train_dataset = ImageLabeledDataset(df_train)
    criterion = TripletLossWithMiner(margin=0.1, miner=AllTripletsMiner())
    batch_sampler = BalanceSampler(train_dataset.get_labels(), n_labels=2, n_instances=3)
    train_loader = DataLoader(train_dataset, batch_sampler=batch_sampler)

    # val
    val_dataset = ImageQueryGalleryLabeledDataset(df_val)
    val_loader = DataLoader(val_dataset, batch_size=4)
    metric = EmbeddingMetrics(dataset=val_dataset, verbose=False)
    metric_callback = MetricValCallback(metric=metric)

    # run
    pl_model = ExtractorModuleDDP(
        extractor=extractor,
        criterion=criterion,
        optimizer=optimizer,
        loaders_train=train_loader,
        loaders_val=val_loader,  # DDP specific
    )
    ddp_args = {
        "accelerator": "cpu",
        "devices": 2,
        "strategy": DDPStrategy(),
        "use_distributed_sampler": False,
    }
    trainer = pl.Trainer(
        max_epochs=1,
        callbacks=[metric_callback],
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **ddp_args,
    )
    trainer.fit(pl_model)  # the loaders are not passed to .fit() in DDP

    flat = {key: float(value) for key, value in trainer.callback_metrics.items()}
    with open(f"{output}.rank{trainer.global_rank}", "w") as file:
        json.dump({"metrics": flat, "world_size": trainer.world_size}, file)
