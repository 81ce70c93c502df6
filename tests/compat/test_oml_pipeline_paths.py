"""OML's module paths of the pipelines and their loggers give our objects (not copies or wrappers)."""

from __future__ import annotations

import importlib

import pytest

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
