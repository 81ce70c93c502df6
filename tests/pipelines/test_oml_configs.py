"""OML 4.0's pipeline configs (``oml_configs/``: OML's keys, values changed for the digits) run as they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from oml_fast.pipelines import (
    extractor_prediction_pipeline,
    extractor_training_pipeline,
    extractor_validation_pipeline,
    postprocessor_training_pipeline,
)
from oml_fast.pipelines.runs import prepare

CONFIGS = Path(__file__).parent / "oml_configs"
JOBS = {
    "train": "train",
    "validate": "validate",
    "predict": "predict",
    "train_postprocessor": "train-postprocessor",
}


def _config(name: str, tmp_path: Path, digits_root: Path, weights: str = "w.ckpt") -> Path:
    text = (CONFIGS / f"{name}.yaml").read_text()
    for placeholder, value in {
        "DATASET_ROOT": digits_root,
        "LOGS_ROOT": tmp_path / "logs",
        "DATA_DIR": digits_root / "images" / "9",
        "SAVE_DIR": tmp_path / "predictions",
        "CACHE_DIR": tmp_path / "cache",
        "WEIGHTS": weights,
    }.items():
        text = text.replace(placeholder, str(value))
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", sorted(JOBS))
def test_oml_configs_load_and_pass_the_checks(name, tmp_path, digits_root):
    cfg = prepare(_config(name, tmp_path, digits_root), [], JOBS[name])
    assert "hydra" not in cfg
    assert not (tmp_path / "logs").exists()  # checks create nothing


@pytest.mark.slow
def test_oml_pipelines_run_end_to_end(tmp_path, digits_root):
    extractor_training_pipeline(str(_config("train", tmp_path, digits_root)))
    (run_dir,) = (tmp_path / "logs").iterdir()  # hydra_dir: ${logs_root}/${logs_folder}/
    assert run_dir.name.endswith("_metric_learning")
    best = run_dir / "checkpoints" / "best.ckpt"
    assert best.is_file() and (run_dir / "csv" / "metrics.csv").is_file()

    trainer, logs = extractor_validation_pipeline(str(_config("validate", tmp_path, digits_root, str(best))))
    assert 0 < logs[0]["OVERALL/cmc/1"] <= 1 and trainer is not None

    extractor_prediction_pipeline(str(_config("predict", tmp_path, digits_root, str(best))))
    predictions = json.loads((tmp_path / "predictions" / "predictions.json").read_text())
    assert len(predictions) == len(list((digits_root / "images" / "9").glob("*.png")))
    assert all(len(embedding) == 16 for embedding in predictions.values())

    postprocessor_training_pipeline(str(_config("train_postprocessor", tmp_path, digits_root, str(best))))
    runs = sorted(p for p in (tmp_path / "logs").iterdir() if p.name.endswith("_postprocessing"))
    assert (runs[-1] / "checkpoints" / "best.ckpt").is_file()
    assert len(list((tmp_path / "cache").glob("emb_*.pt"))) == 2  # train and validation embeddings cached
    state = torch.load(runs[-1] / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    assert any(key.startswith("model.") for key in state["state_dict"])


def test_empty_top_k_in_a_config_means_no_such_metric(tmp_path, digits_root):
    """OML's validate.yaml writes ``precision_top_k: []``, ``fmr_vals: []``, ``pcf_variance: []``: as in OML,
    the metrics are not computed (an empty list is not replaced by the default ``k``)."""
    from sklearn.datasets import load_digits

    from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
    from oml_fast.metrics import EmbeddingMetrics
    from oml_fast.pipelines.runs import _metric_args

    cfg = prepare(_config("validate", tmp_path, digits_root), [], "validate")
    args = _metric_args(cfg)
    assert args["precision_top_k"] == [] and args["fmr_vals"] == [] and args["pcf_variance"] == []

    digits = load_digits()
    features = torch.tensor(digits.data[:60], dtype=torch.float32)
    labels = torch.tensor(digits.target[:60])
    is_query = torch.arange(60) % 2 == 0
    dataset = InMemoryQueryGalleryDataset(labels, is_query, ~is_query, input_tensors=features)
    calc = EmbeddingMetrics(dataset, **args)
    calc.setup()
    calc.update(features, torch.arange(60))
    overall = calc.compute_metrics()["OVERALL"]
    assert "precision" not in overall and "fnmr@fmr" not in overall and "pcf" not in overall
    assert set(overall["cmc"]) == {1, 5} and set(overall["map"]) == {5}
