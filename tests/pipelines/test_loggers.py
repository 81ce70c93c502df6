"""Loggers of the pipelines: real MLflow (local file store) and W&B (offline) runs, and missing extras."""

from __future__ import annotations

import importlib.util
import time

import pytest

from oml_fast.pipelines import train
from oml_fast.pipelines.runs import prepare


def _quick(digits_root, tmp_path, *more: str) -> list[str]:
    return [
        f"dataset_root={digits_root}",
        f"logs_root={tmp_path}",
        "logs_folder=run",
        "accelerator=cpu",
        "progress_bar=false",
        "max_epochs=1",
        "valid_period=1",
        "n_worst_queries=2",
        *more,
    ]


@pytest.mark.parametrize("name", ["neptune", "clearml", "mlflow", "wandb"])
def test_a_missing_logger_package_fails_at_start_naming_the_extra(name, digits_root, tmp_path):
    if importlib.util.find_spec(name) is not None:
        pytest.skip(f"{name} is installed")
    with pytest.raises(ImportError, match=rf"pip install 'oml-fast\[{name}\]'"):
        prepare("train_digits", _quick(digits_root, tmp_path, f"logger={name}"), "train")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_mlflow_gets_metrics_params_and_pictures(digits_root, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"file:{tmp_path / 'mlruns'}"
    train("train_digits", _quick(digits_root, tmp_path, "logger=mlflow", f"logger.args.tracking_uri={uri}"))
    client = MlflowClient(tracking_uri=uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "oml_fast"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert 0 < run.data.metrics["OVERALL/cmc/1"] <= 1
    assert run.data.params["criterion/name"] == "triplet_with_miner"
    pictures = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
    assert pictures and all(p.endswith(".png") for p in pictures)


@pytest.mark.slow
def test_wandb_offline_gets_metrics_and_pictures(digits_root, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    train("train_digits", _quick(digits_root, tmp_path, "logger=wandb"))
    (run_dir,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    (log,) = run_dir.glob("run-*.wandb")
    for _ in range(40):  # W&B's service process writes the offline log asynchronously
        if b"OVERALL/cmc/1" in log.read_bytes():
            break
        time.sleep(0.25)
    assert b"OVERALL/cmc/1" in log.read_bytes()
    assert list((run_dir / "files" / "media" / "images").glob("worst_queries_*.png"))


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    return fig


def test_tensorboard_pipeline_logger_logs_a_figure_and_the_config(tmp_path):
    from oml_fast.registry.loggers import get_logger_by_cfg

    logger = get_logger_by_cfg({"name": "tensorboard", "args": {"save_dir": str(tmp_path), "name": "tb"}})
    logger.log_pipeline_info({"max_epochs": 1, "optimizer": {"name": "adam"}})
    logger.log_figure(_figure(), "worst_queries", 3)
    logger.finalize("success")
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))


def test_mlflow_pipeline_logger_logs_a_figure_and_the_config(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from oml_fast.lightning.pipelines.logging import MLFlowPipelineLogger

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = f"file:{tmp_path / 'mlruns'}"
    logger = MLFlowPipelineLogger(experiment_name="figures", tracking_uri=uri)
    logger.log_pipeline_info({"max_epochs": 1})
    logger.log_figure(_figure(), "worst_queries", 3)
    logger.finalize("success")
    client = MlflowClient(tracking_uri=uri)
    assert [a.path for a in client.list_artifacts(logger.run_id)] == ["worst_queries_3.png"]
    assert client.get_run(logger.run_id).data.params["max_epochs"] == "1"


def test_wandb_pipeline_logger_logs_a_figure_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from oml_fast.lightning.pipelines.logging import WandBPipelineLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = WandBPipelineLogger(save_dir=str(tmp_path), project="figures")
    logger.log_pipeline_info({"max_epochs": 1})
    logger.log_figure(_figure(), "worst_queries", 3)
    logger.experiment.finish()
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    assert list((run_dir / "files" / "media" / "images").glob("worst_queries_*.png"))
