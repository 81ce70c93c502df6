"""OML's module paths of the pipelines and their loggers give our objects (not copies or wrappers)."""

from __future__ import annotations

import importlib

import pytest
import torch

pytest.importorskip("lightning")

from oml_fast.pipelines import entrypoints  # noqa: E402


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("train", "extractor_training_pipeline"),
        ("validate", "extractor_validation_pipeline"),
        ("predict", "extractor_prediction_pipeline"),
        ("train_postprocessor", "postprocessor_training_pipeline"),
    ],
)
def test_oml_pipeline_paths_resolve_to_our_entry_functions(module, name):
    oml_path = importlib.import_module(f"oml_fast.lightning.pipelines.{module}")
    assert getattr(oml_path, name) is getattr(entrypoints, name)


def test_the_pipelines_build_the_oml_named_loggers(tmp_path):
    from oml_fast.lightning.pipelines.logging import IPipelineLogger, TensorBoardPipelineLogger
    from oml_fast.pipelines.loggers import build_loggers
    from oml_fast.registry.loggers import LOGGERS_REGISTRY

    csv, tensorboard = build_loggers(None, tmp_path, tags=[])
    assert type(tensorboard) is TensorBoardPipelineLogger and isinstance(tensorboard, IPipelineLogger)
    assert not isinstance(csv, IPipelineLogger)
    assert all(issubclass(cls, IPipelineLogger) for cls in LOGGERS_REGISTRY.values())


def test_oml_lightning_logging_is_the_pipelines_logging_module():
    import oml_fast.lightning
    from oml_fast.lightning.pipelines import logging

    assert oml_fast.lightning.logging is logging


def test_save_transforms_as_files_saves_nothing_and_reports_unbuildable_blocks(capsys):
    from oml_fast.registry.transforms import save_transforms_as_files

    cfg = {
        "transforms_train": {"name": "augs_torch", "args": {"im_size": 32}},
        "transforms_val": {"name": "no_such_transforms", "args": {}},
        "max_epochs": 1,
    }
    assert save_transforms_as_files(cfg) == []
    assert capsys.readouterr().out.strip() == (
        "We are not able to interpret transforms_val as albumentations transforms and log them as a file."
    )


def test_parser_engine_scheduler_sampler_and_checkpoint(tmp_path, monkeypatch):
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.strategies import DDPStrategy

    from oml_fast.datasets import ImageLabeledDataset, get_retrieval_images_datasets
    from oml_fast.datasets.digits import make_digits_dataset
    from oml_fast.lightning.pipelines import parser
    from oml_fast.samplers import BalanceSampler

    engine = parser.parse_engine_params_from_config({"accelerator": "cpu", "devices": None})
    assert engine == {
        "devices": 1,
        "strategy": "auto",
        "accelerator": "cpu",
        "use_distributed_sampler": False,
    }
    assert parser.check_is_config_for_ddp(engine)
    ddp = parser.parse_engine_params_from_config({"accelerator": "cpu", "devices": [0, 1]})
    assert ddp["devices"] == 2 and isinstance(ddp["strategy"], DDPStrategy)

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    assert parser.parse_scheduler_from_config({"scheduling": None}, optimizer) == {"scheduler": None}
    scheduling = {
        "scheduler": {"name": "multi_step", "args": {"milestones": [1, 2], "gamma": 0.5}},
        "scheduler_interval": "epoch",
        "scheduler_frequency": 1,
    }
    parsed = parser.parse_scheduler_from_config({"scheduling": scheduling}, optimizer)
    assert parsed["scheduler"].optimizer is optimizer and parsed["scheduler_monitor_metric"] is None

    make_digits_dataset(tmp_path)
    train, _ = get_retrieval_images_datasets(tmp_path, None, None, verbose=False, check_files=False)
    sampler = parser.parse_sampler_from_config(
        {"sampler": {"name": "balance", "args": {"n_labels": 3, "n_instances": 2}}}, train
    )
    assert isinstance(sampler, BalanceSampler) and len(next(iter(sampler))) == 6
    assert parser.parse_sampler_from_config({"sampler": None}, train) is None
    block = {"name": "category_balance", "args": {"n_labels": 2, "n_instances": 2, "n_categories": 1}}
    no_categories = ImageLabeledDataset(train.df.drop(columns=["category"]), dataset_root=tmp_path)
    with pytest.raises(ValueError, match="category"):
        parser.parse_sampler_from_config({"sampler": block}, no_categories)

    monkeypatch.chdir(tmp_path)
    callback = parser.parse_ckpt_callback_from_config({"metric_for_checkpointing": "OVERALL/cmc/1"})
    assert isinstance(callback, ModelCheckpoint) and callback.dirpath == str(tmp_path / "checkpoints")
    assert callback.monitor == "OVERALL/cmc/1" and callback.mode == "max"
