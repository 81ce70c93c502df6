"""The train / validate pipelines on texts and audio: ``modality`` and ``dataset_args`` in the config, the
extractor from a config block, everything else as for images."""

from __future__ import annotations

import pandas as pd
import pytest

from oml_fast.pipelines import load_config, train, validate
from oml_fast.pipelines.schema import ConfigError


def _overrides(root, tmp_path, *more: str) -> list[str]:
    base = [
        f"dataset_root={root}",
        f"logs_root={tmp_path}",
        "accelerator=cpu",
        "progress_bar=false",
        "logger=csv",
    ]
    return [*base, "valid_period=1", "max_epochs=1", "log_images=false", "metric_args.cmc_top_k=[1]", *more]


@pytest.mark.slow
def test_train_then_validate_texts(tmp_path):
    pytest.importorskip("transformers")
    from tests.datasets.text_helpers import write_mock_texts_folder

    tokenizer, bert = write_mock_texts_folder(tmp_path)
    overrides = _overrides(
        tmp_path,
        tmp_path,
        "modality=texts",
        f"+dataset_args.tokenizer={tokenizer}",
        "+dataset_args.max_length=24",
        "extractor=hf_wrapper",
        f"extractor.args.model={bert}",
        "sampler.args.n_labels=4",
        "sampler.args.n_instances=4",
        "check_dataframe_files=false",
    )
    run = train(load_config("train_digits", [*overrides, "logs_folder=train"]))
    assert run.best_checkpoint is not None and 0 <= run.metrics["OVERALL"]["cmc"][1] <= 1
    checked = validate(
        load_config("train_digits", [*overrides, "logs_folder=val", f"checkpoint={run.best_checkpoint}"])
    )
    assert 0 <= checked.metrics["OVERALL"]["cmc"][1] <= 1


def test_audio_at_the_wrong_rate_for_the_extractor_is_named(tmp_path):
    pytest.importorskip("soundfile")
    from oml_fast.utils import get_mock_audios_dataset

    get_mock_audios_dataset(tmp_path)
    overrides = _overrides(
        tmp_path,
        tmp_path,
        "modality=audio",
        "+dataset_args.sample_rate=8000",
        "+dataset_args.max_num_seconds=0.5",
        "extractor=ecapa_tdnn",
        "sampler.args.n_labels=3",
        "sampler.args.n_instances=4",
    )
    with pytest.raises(ConfigError, match=r"resampled to 8000 Hz .* ECAPATDNNExtractor expects 16000 Hz"):
        train(load_config("train_digits", overrides))


def test_bad_modality_and_missing_tokenizer(tmp_path):
    from oml_fast.utils import get_mock_texts_dataset

    pd.concat(get_mock_texts_dataset()).to_csv(tmp_path / "df.csv", index=False)
    with pytest.raises(
        ConfigError, match=r"`modality` must be one of \['images', 'texts', 'audio'\], got 'video'"
    ):
        validate(
            load_config(
                "validate_digits", _overrides(tmp_path, tmp_path, "modality=video", "allow_untrained=true")
            )
        )
    with pytest.raises(ConfigError, match="needs `dataset_args.tokenizer`"):
        validate(
            load_config(
                "validate_digits", _overrides(tmp_path, tmp_path, "modality=texts", "allow_untrained=true")
            )
        )
