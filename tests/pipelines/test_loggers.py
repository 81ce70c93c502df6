"""Loggers of the pipelines: real MLflow (local file store), W&B, Neptune and ClearML (offline) runs, read
back from what each library wrote, and missing extras."""

from __future__ import annotations

import base64
import importlib.util
import json
import time
from pathlib import Path

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


def test_an_online_neptune_run_without_a_token_fails_at_start(digits_root, tmp_path, monkeypatch):
    monkeypatch.delenv("NEPTUNE_API_TOKEN", raising=False)
    monkeypatch.delenv("NEPTUNE_MODE", raising=False)
    with pytest.raises((ValueError, ImportError), match="NEPTUNE_API_TOKEN|oml-fast\\[neptune\\]"):
        prepare("train_digits", _quick(digits_root, tmp_path, "logger=neptune"), "train")
    assert not (tmp_path / "run").exists()
    if importlib.util.find_spec("neptune") is not None:  # offline: no token needed
        prepare(
            "train_digits",
            _quick(digits_root, tmp_path, "logger=neptune", "+logger.args.mode=offline"),
            "train",
        )


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


def _neptune_ops(data_dir: Path) -> list[dict]:
    """The operations of the one offline Neptune run under ``data_dir`` (``offline/run__*/data-*.log``: JSON lines)."""
    (run_dir,) = (data_dir / "offline").glob("run__*")
    return [
        json.loads(line)["obj"]
        for log in sorted(run_dir.glob("data-*.log"))
        for line in log.read_text().splitlines()
    ]


def _neptune_values(ops: list[dict], path: str, kind: str) -> list:
    """The values the operations ``kind`` (``AssignString``, ``LogFloats``, ...) wrote to the field ``path``."""
    found = []
    for op in ops:
        if op["type"] == kind and op["path"] == path.split("/"):
            found.extend(op["values"] if "values" in op else [op["value"]])
    return found


@pytest.mark.slow
def test_neptune_offline_gets_metrics_params_and_pictures(digits_root, tmp_path):
    pytest.importorskip("neptune")
    train(
        "train_digits",
        _quick(digits_root, tmp_path, "logger=neptune", "+logger.args.mode=offline", "tags=[digits]"),
    )
    ops = _neptune_ops(tmp_path / "run" / ".neptune")  # OML ran inside the run folder: ./.neptune is there
    assert _neptune_values(ops, "sys/tags", "AddStrings") == ["digits"]
    (cmc,) = _neptune_values(ops, "training/OVERALL/cmc/1", "LogFloats")
    assert 0 < cmc["value"] <= 1 and cmc["step"] > 0
    assert _neptune_values(ops, "training/hyperparams/criterion/name", "AssignString") == [
        "triplet_with_miner"
    ]
    assert _neptune_values(ops, "training/hyperparams/max_epochs", "AssignInt") == [1]
    (picture,) = _neptune_values(ops, "images/worst_queries", "LogImages")
    assert base64.b64decode(picture["value"]["data"]).startswith(b"\x89PNG")
    assert _neptune_values(ops, "training/status", "AssignString") == ["success"]
    (upload,) = [op for op in ops if op["type"] == "UploadFile" and op["path"][-1] == "best"]
    (neptune_run,) = (tmp_path / "run" / ".neptune" / "offline").glob("run__*")
    uploaded = (neptune_run / "upload_path" / upload["tmp_file_name"]).read_bytes()
    assert uploaded == (tmp_path / "run" / "checkpoints" / "best.ckpt").read_bytes()


def _clearml_offline(tmp_path: Path, monkeypatch) -> Path:
    """ClearML's offline sessions go under ``tmp_path``; its reports are written by a thread, not a forked
    process (ClearML's default on Linux, which takes ~5 s to stop)."""
    config = tmp_path / "clearml.conf"
    config.write_text("sdk { development { report_use_subprocess: false } }\n")
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(config))  # read once per process, at ClearML's first use
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(tmp_path / "clearml_cache"))
    return tmp_path / "clearml_cache" / "offline"


# ClearML patches frameworks (torch.save, matplotlib, ...) and stdout process-wide: not inside pytest.
_CLEARML_QUIET = {
    "auto_connect_frameworks": False,
    "auto_connect_streams": False,
    "auto_resource_monitoring": False,
}


@pytest.mark.slow
def test_clearml_offline_gets_metrics_params_and_pictures(digits_root, tmp_path, monkeypatch):
    pytest.importorskip("clearml")
    offline = _clearml_offline(tmp_path, monkeypatch)
    quiet = [f"+logger.args.{key}={str(value).lower()}" for key, value in _CLEARML_QUIET.items()]
    train("train_digits", _quick(digits_root, tmp_path, "logger=clearml", "tags=[digits]", *quiet))
    (session,) = [p for p in offline.glob("offline-*") if p.is_dir()]
    assert (offline / f"{session.name}.zip").is_file()  # the task was closed at the end of the run
    task = json.loads((session / "task.json").read_text())
    assert task["hyperparams"]["General"]["criterion/name"]["value"] == "triplet_with_miner"
    assert task["tags"] == ["digits"]
    events = [e for line in (session / "metrics.jsonl").read_text().splitlines() for e in json.loads(line)]
    (cmc,) = [e for e in events if e["type"] == "training_stats_scalar" and e["metric"] == "OVERALL/cmc/1"]
    assert 0 < cmc["value"] <= 1 and cmc["iter"] > 0
    (picture,) = [e for e in events if e["type"] == "training_debug_image" and e["metric"] == "worst_queries"]
    assert Path(picture["url"]).read_bytes().startswith(b"\x89PNG")


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


@pytest.mark.slow  # importing the library alone takes 2-5 s
def test_neptune_pipeline_logger_logs_a_figure_and_the_config_offline(tmp_path, monkeypatch):
    pytest.importorskip("neptune")
    from oml_fast.lightning.pipelines.logging import NeptunePipelineLogger

    monkeypatch.setenv("NEPTUNE_DATA_DIRECTORY", str(tmp_path / ".neptune"))
    logger = NeptunePipelineLogger(project="figures/offline", mode="offline", capture_hardware_metrics=False)
    logger.log_pipeline_info({"max_epochs": 1, "optimizer": {"name": "adam"}})
    assert logger.version == "OFFLINE"  # the run is made on first use
    logger.log_figure(_figure(), "worst_queries", 3)
    logger.log_metrics({"loss": 0.5}, step=7)
    logger.finalize("success")
    logger.close()
    ops = _neptune_ops(tmp_path / ".neptune")
    assert _neptune_values(ops, "training/hyperparams/optimizer/name", "AssignString") == ["adam"]
    assert [v["step"] for v in _neptune_values(ops, "worst_queries", "LogImages")] == [3]
    assert [(v["value"], v["step"]) for v in _neptune_values(ops, "training/loss", "LogFloats")] == [(0.5, 7)]


@pytest.mark.slow  # importing the library alone takes 2-5 s
def test_clearml_pipeline_logger_logs_a_figure_and_the_config_offline(tmp_path, monkeypatch):
    pytest.importorskip("clearml")
    from oml_fast.lightning.pipelines.logging import ClearMLPipelineLogger

    offline = _clearml_offline(tmp_path, monkeypatch)
    logger = ClearMLPipelineLogger(project_name="figures", task_name="offline", **_CLEARML_QUIET)
    assert logger.name == "ClearMLLogger" and logger.version.startswith("offline-")
    logger.log_pipeline_info({"max_epochs": 1, "optimizer": {"name": "adam"}})
    logger.log_figure(_figure(), "worst_queries", 3)
    logger.finalize("success")
    logger.close()
    session = offline / logger.version
    params = json.loads((session / "task.json").read_text())["hyperparams"]["General"]
    assert params["optimizer/name"]["value"] == "adam"
    events = [e for line in (session / "metrics.jsonl").read_text().splitlines() for e in json.loads(line)]
    assert [(e["metric"], e["iter"]) for e in events if e["type"] == "training_debug_image"] == [
        ("worst_queries", 3)
    ]
