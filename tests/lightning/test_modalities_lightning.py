"""Texts and audio through the config registry and OML's Lightning module + metric callback: datasets
built from a CSV, extractors built from config blocks, one epoch of training and validation."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from oml_fast.registry import get_extractor_by_cfg


def _fit_one_epoch(extractor, train, valid, tmp_path, n_labels: int, n_instances: int) -> dict:
    import lightning.pytorch as pl

    from oml_fast.lightning import ExtractorModule, MetricValCallback
    from oml_fast.losses import TripletLossWithMiner
    from oml_fast.metrics import EmbeddingMetrics
    from oml_fast.miners import AllTripletsMiner
    from oml_fast.samplers import BalanceSampler

    sampler = BalanceSampler(train.get_labels().tolist(), n_labels=n_labels, n_instances=n_instances)
    module = ExtractorModule(
        extractor,
        TripletLossWithMiner(margin=0.2, miner=AllTripletsMiner()),
        torch.optim.Adam(extractor.parameters(), lr=1e-3),
    )
    metric = EmbeddingMetrics(
        valid, cmc_top_k=(1,), precision_top_k=(1,), map_top_k=(1,), pcf_variance=(), verbose=False
    )
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        callbacks=[MetricValCallback(metric)],
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, DataLoader(train, batch_sampler=sampler), DataLoader(valid, batch_size=16))
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


@pytest.mark.slow
def test_texts_from_a_csv_and_a_config_block(tmp_path):
    pytest.importorskip("transformers")
    from oml_fast.datasets import get_retrieval_texts_datasets
    from tests.datasets.text_helpers import write_mock_texts_folder

    tokenizer, bert = write_mock_texts_folder(tmp_path)
    train, valid = get_retrieval_texts_datasets(
        tmp_path, tokenizer=str(tmp_path / "tokenizer"), max_length=24
    )
    extractor = get_extractor_by_cfg({"name": "hf_wrapper", "args": {"model": bert}})
    assert extractor.feat_dim == 32 and len(train) == 19 and len(valid) == 16
    metrics = _fit_one_epoch(extractor, train, valid, tmp_path, n_labels=4, n_instances=4)
    assert 0.0 <= metrics["OVERALL/cmc/1"] <= 1.0


@pytest.mark.slow
def test_audio_from_a_csv_and_a_config_block(tmp_path):
    pytest.importorskip("soundfile")
    from oml_fast.datasets import get_retrieval_audios_datasets
    from oml_fast.models.audio.ecapa_tdnn import ECAPATDNN, ECAPATDNNExtractor
    from oml_fast.utils import get_mock_audios_dataset

    get_mock_audios_dataset(tmp_path)
    train, valid = get_retrieval_audios_datasets(tmp_path, max_num_seconds=0.5)
    assert train[0]["input_tensors"].shape == (1, 8000)
    extractor = get_extractor_by_cfg(
        {"name": "ecapa_tdnn", "args": {"arch": "ecapa_tdnn_taoruijie", "weights": None}}
    )
    assert isinstance(extractor, ECAPATDNNExtractor) and extractor.feat_dim == 192
    extractor.model = ECAPATDNN(channels=16)  # a narrow network: one CPU epoch in seconds
    metrics = _fit_one_epoch(extractor, train, valid, tmp_path, n_labels=3, n_instances=4)
    assert 0.0 <= metrics["OVERALL/cmc/1"] <= 1.0


def test_builders_report_bad_csvs(tmp_path):
    from oml_fast.datasets import (
        DataFrameFormatError,
        get_retrieval_audios_datasets,
        get_validation_texts_dataset,
    )

    pd.DataFrame(
        {"label": [0], "text": [""], "split": ["validation"], "is_query": [True], "is_gallery": [True]}
    ).to_csv(tmp_path / "df.csv", index=False)
    with pytest.raises(
        DataFrameFormatError, match=r"column 'text': empty or not a string at row 0 \(line 2\)"
    ):
        get_validation_texts_dataset(tmp_path, tokenizer=lambda *a, **k: None)
    pd.DataFrame(
        {
            "label": [0, 0],
            "path": ["a.wav", "b.wav"],
            "split": ["train", "validation"],
            "is_query": [None, True],
            "is_gallery": [None, True],
        }
    ).to_csv(tmp_path / "audio.csv", index=False)
    with pytest.raises(DataFrameFormatError, match="column 'path': file not found at rows 0 .line 2., 1"):
        get_retrieval_audios_datasets(tmp_path, dataframe_name="audio.csv")
