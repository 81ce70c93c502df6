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
