"""The four pipelines on texts and audio: ``modality`` and ``dataset_args`` in the config, the extractor
(and the re-ranker's pairwise model) from config blocks, everything else as for images; bad configs fail
before any folder is made."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from oml_fast.pipelines import load_config, predict, train, validate
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


# ---- predict and train-postprocessor on texts and audio ---------------------------------------------


@pytest.fixture(scope="module")
def texts_folder(tmp_path_factory):
    """OML's mock texts (df.csv), a tokenizer trained on them and a tiny BERT: ``(root, tokenizer, bert)``."""
    pytest.importorskip("transformers")
    from tests.datasets.text_helpers import write_mock_texts_folder

    root = tmp_path_factory.mktemp("texts")
    tokenizer, bert = write_mock_texts_folder(root)
    return root, tokenizer, bert


@pytest.fixture
def small_ecapa(monkeypatch):
    """ECAPA-TDNN at width 16, registered as ``arch: small_16`` (the public architecture is 1024 wide)."""
    from oml_fast.models import ECAPATDNNExtractor
    from oml_fast.models.audio.ecapa_tdnn import ECAPATDNN

    monkeypatch.setitem(ECAPATDNNExtractor.constructors, "small_16", lambda: ECAPATDNN(channels=16))
    return {"name": "ecapa_tdnn", "args": {"arch": "small_16", "weights": None}}


def _text_args(tokenizer: str) -> dict:
    return {"modality": "texts", "dataset_args": {"tokenizer": tokenizer, "max_length": 24}}


_AUDIO_ARGS = {"modality": "audio", "dataset_args": {"sample_rate": 16000, "max_num_seconds": 0.5}}
_QUIET = {"accelerator": "cpu", "progress_bar": False}


@pytest.mark.slow
def test_predict_texts_writes_omls_format_with_the_models_embeddings(texts_folder, tmp_path):
    import json

    from oml_fast.datasets import TextBaseDataset, load_tokenizer
    from oml_fast.inference import inference
    from oml_fast.models.texts import hf_wrapper

    root, tokenizer, bert = texts_folder
    texts = pd.read_csv(root / "df.csv")["text"].tolist()[:5]
    (tmp_path / "docs" / "more").mkdir(parents=True)
    paths = [tmp_path / "docs" / ("more" if i % 2 else "") / f"{i}.txt" for i in range(5)]
    for path, text in zip(paths, texts):
        path.write_text(f"{text}\n")
    (tmp_path / "docs" / "notes.md").write_text("not a .txt file: left out")
    config = {
        **_text_args(tokenizer),
        **_QUIET,
        "data_dir": str(tmp_path / "docs"),
        "save_dir": str(tmp_path / "out"),
        "extractor": {"name": "hf_wrapper", "args": {"model": bert}},
        "allow_untrained": True,
    }
    predictions = json.loads(predict(config).read_text())
    assert sorted(predictions) == sorted(map(str, paths))
    # The same numbers as the extractor gives on the same texts, tokenised as in training.
    extractor = hf_wrapper(bert)
    expected = inference(extractor, TextBaseDataset(texts, load_tokenizer(tokenizer), max_length=24), 8)
    got = torch.tensor([predictions[str(p)] for p in paths])
    assert got.shape == (5, 32) and torch.allclose(got, expected, atol=1e-5)


@pytest.mark.slow
def test_predict_audio_writes_omls_format_with_the_models_embeddings(small_ecapa, tmp_path):
    import json
    import shutil

    from oml_fast.datasets import AudioBaseDataset
    from oml_fast.inference import inference
    from oml_fast.models import ECAPATDNNExtractor
    from oml_fast.utils import get_mock_audios_dataset

    pytest.importorskip("soundfile")
    df_train, _ = get_mock_audios_dataset(tmp_path / "mock")
    (tmp_path / "clips").mkdir()
    paths = []
    for source in df_train["path"].tolist()[::6]:  # one file of each class: wav and flac, several rates
        paths.append(tmp_path / "clips" / Path(source).name)
        shutil.copy(tmp_path / "mock" / source, paths[-1])
    torch.manual_seed(0)
    extractor = ECAPATDNNExtractor(weights=None, arch="small_16").eval()
    torch.save(extractor.model.state_dict(), tmp_path / "ecapa.pth")
    block = {"name": "ecapa_tdnn", "args": {**small_ecapa["args"], "weights": str(tmp_path / "ecapa.pth")}}
    config = {**_AUDIO_ARGS, **_QUIET, "data_dir": str(tmp_path / "clips"), "save_dir": str(tmp_path / "out")}
    predictions = json.loads(predict({**config, "extractor": block}).read_text())
    paths.sort()
    assert list(predictions) == list(map(str, paths))
    expected = inference(extractor, AudioBaseDataset(paths, sample_rate=16000, max_num_seconds=0.5), 8)
    got = torch.tensor(list(predictions.values()))
    assert got.shape == (len(paths), 192) and torch.allclose(got, expected, atol=1e-4)


def _postprocessor_config(root, tmp_path, extractor: dict, n_labels: int, **more) -> dict:
    return {
        **_QUIET,
        "dataset_root": str(root),
        "logs_root": str(tmp_path / "logs"),
        "logs_folder": "run",
        "extractor": extractor,
        "pairwise_model": {
            "name": "concat_siamese",
            "args": {"mlp_hidden_dims": [16], "extractor": extractor},
        },
        "postprocessor": {
            "name": "pairwise_reranker",
            "args": {"top_n": 3, "pairwise_model": "${pairwise_model}", "num_workers": 0, "batch_size": 64},
        },
        "sampler": {"name": "balance", "args": {"n_labels": n_labels, "n_instances": 4}},
        "logger": {"name": "csv", "args": {}},
        "max_epochs": 1,
        "metric_args": {"cmc_top_k": [1]},
        "log_images": False,
        "allow_untrained": True,
        **more,
    }


@pytest.mark.slow
def test_train_postprocessor_on_texts_then_validate_with_the_reranker(texts_folder, tmp_path):
    from oml_fast.pipelines import train_postprocessor

    root, tokenizer, bert = texts_folder
    extractor = {"name": "hf_wrapper", "args": {"model": bert}}
    config = _postprocessor_config(
        root,
        tmp_path,
        extractor,
        n_labels=4,
        embeddings_cache_dir=str(tmp_path / "cache"),
        **_text_args(tokenizer),
    )
    run = train_postprocessor(config)
    assert run.best_checkpoint is not None and run.best_checkpoint.is_file()
    assert 0 <= run.flat_metrics["OVERALL/cmc/1"] <= 1
    assert len(list((tmp_path / "cache").glob("emb_*.pt"))) == 2  # train and val embeddings, cached
    # validate with the trained re-ranker (its weights from the run's checkpoint): the run's numbers
    pairwise = {"name": "concat_siamese", "args": {"mlp_hidden_dims": [16], "extractor": extractor}}
    pairwise["args"]["weights"] = str(run.best_checkpoint)
    reranker = {
        **config["postprocessor"],
        "args": {**config["postprocessor"]["args"], "pairwise_model": pairwise},
    }
    checked = validate({**config, "postprocessor": reranker, "logs_folder": "validate"})
    assert checked.flat_metrics["OVERALL/cmc/1"] == pytest.approx(run.flat_metrics["OVERALL/cmc/1"])


@pytest.mark.slow
def test_train_postprocessor_on_audio_trains_a_concat_siamese_over_ecapa(small_ecapa, tmp_path):
    from oml_fast.pipelines import train_postprocessor
    from oml_fast.utils import get_mock_audios_dataset

    pytest.importorskip("soundfile")
    get_mock_audios_dataset(tmp_path / "mock")
    run = train_postprocessor(
        _postprocessor_config(tmp_path / "mock", tmp_path, small_ecapa, n_labels=3, **_AUDIO_ARGS)
    )
    assert run.best_checkpoint is not None and run.best_checkpoint.is_file()
    assert 0 <= run.flat_metrics["OVERALL/cmc/1"] <= 1


def _bad(tmp_path, **more) -> dict:
    return {
        **_QUIET,
        "logs_root": str(tmp_path / "logs"),
        "save_dir": str(tmp_path / "out"),
        "allow_untrained": True,
        **more,
    }


@pytest.mark.parametrize(
    "more, message",
    [
        ({"modality": "video"}, r"`modality` must be one of \['images', 'texts', 'audio'\], got 'video'"),
        ({"modality": "texts"}, r"`modality: texts` needs `dataset_args.tokenizer`"),
        (
            {"modality": "audio", "dataset_args": {"sample_rte": 8000}},
            r"`dataset_args` has key\(s\) \['sample_rte'\] that `modality: audio` does not take \(did you mean 'sample_rate'\?\)",
        ),
        (
            {"modality": "audio", "dataset_args": {"sample_rate": 16000}},
            r"`extractor` is 'small_cnn', an extractor of images, but `modality` is 'audio'",
        ),
        (
            {
                "modality": "texts",
                "dataset_args": {"tokenizer": "t"},
                "extractor": {
                    "name": "ecapa_tdnn",
                    "args": {"arch": "ecapa_tdnn_taoruijie", "weights": None},
                },
            },
            r"`extractor` is 'ecapa_tdnn', an extractor of audio, but `modality` is 'texts'",
        ),
    ],
)
@pytest.mark.parametrize("pipeline", ["predict", "train-postprocessor"])
def test_bad_modality_config_fails_before_any_folder(pipeline, more, message, tmp_path):
    from oml_fast.pipelines import train_postprocessor

    config = _bad(tmp_path, data_dir=str(tmp_path), **more)
    run = predict if pipeline == "predict" else train_postprocessor
    if pipeline == "train-postprocessor":
        pd.DataFrame().to_csv(tmp_path / "df.csv")
        config = {
            **config,
            "dataset_root": str(tmp_path),
            "postprocessor": {
                "name": "pairwise_reranker",
                "args": {
                    "top_n": 3,
                    "pairwise_model": {
                        "name": "trivial_distance_siamese",
                        "args": {"extractor": {"name": "small_cnn", "args": {}}},
                    },
                    "num_workers": 0,
                    "batch_size": 4,
                },
            },
        }
    with pytest.raises(ConfigError, match=message):
        run(config)
    assert not (tmp_path / "logs").exists() and not (tmp_path / "out").exists()


def test_the_pairwise_models_extractor_must_embed_the_modality_too(tmp_path):
    from oml_fast.pipelines import train_postprocessor

    pd.DataFrame().to_csv(tmp_path / "df.csv")
    reranker = {
        "name": "pairwise_reranker",
        "args": {
            "top_n": 3,
            "pairwise_model": {
                "name": "concat_siamese",
                "args": {"mlp_hidden_dims": [4], "extractor": {"name": "small_cnn", "args": {}}},
            },
            "num_workers": 0,
            "batch_size": 4,
        },
    }
    config = _bad(
        tmp_path,
        dataset_root=str(tmp_path),
        postprocessor=reranker,
        modality="texts",
        dataset_args={"tokenizer": "t"},
        extractor={"name": "hf_wrapper", "args": {"model": "m"}},
    )
    with pytest.raises(
        ConfigError,
        match=r"`postprocessor.args.pairwise_model.args.extractor` is 'small_cnn', an extractor of images, but `modality` is 'texts'",
    ):
        train_postprocessor(config)
    assert not (tmp_path / "logs").exists()


def test_predict_names_an_empty_text_file(tmp_path):
    (tmp_path / "a.txt").write_text("a text")
    (tmp_path / "b.txt").write_text("  \n")
    config = _bad(
        tmp_path,
        data_dir=str(tmp_path),
        modality="texts",
        dataset_args={"tokenizer": "t"},
        extractor={"name": "hf_wrapper", "args": {"model": "m"}},
    )
    with pytest.raises(ValueError, match=r"the text file '.*b\.txt' is empty"):
        predict(config)
    assert not (tmp_path / "out").exists()


_IMAGE_RUN_WATCHING_IMPORTS = """
import sys, traceback

class Watch:  # records who asks for an optional modality library: the first frame outside importlib
    asked = []
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("transformers", "tokenizers", "soundfile"):
            frames = [f for f in traceback.extract_stack() if "importlib" not in f.filename]
            self.asked.append((name, frames[-2].filename))
        return None

sys.meta_path.insert(0, Watch())
from oml_fast.datasets import make_digits_dataset
from oml_fast.pipelines import predict, train_postprocessor

root = sys.argv[1]
make_digits_dataset(f"{root}/digits")
quiet = ["accelerator=cpu", "progress_bar=false"]
predict("predict_digits", [f"data_dir={root}/digits/images", f"save_dir={root}/out", "allow_untrained=true", *quiet])
train_postprocessor(
    "train_postprocessor_digits",
    [f"dataset_root={root}/digits", f"logs_root={root}/logs", "max_epochs=1", "limit_train_batches=2", "logger=csv", *quiet],
)
print(sorted({name.split(".")[0] for name, where in Watch.asked if "/oml_fast/" in where}))
"""


@pytest.mark.slow  # a fresh interpreter runs two image pipelines: tens of seconds
def test_the_image_predict_and_postprocessor_pipelines_ask_for_no_text_or_audio_library(tmp_path):
    """Lightning's torchmetrics imports ``transformers`` when it is installed; oml_fast's code never does
    on the image path (what asks for a library is the first frame outside importlib)."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", _IMAGE_RUN_WATCHING_IMPORTS, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("modality", ["images", "texts"])
def test_a_reranker_over_embeddings_is_refused_before_any_folder(modality, tmp_path):
    """``linear_siamese`` scores embeddings; the pipelines' re-ranker gives its model the items."""
    more = ["modality=texts", "+dataset_args.tokenizer=t", "extractor=hf_wrapper", "extractor.args.model=m"]
    overrides = [
        f"logs_root={tmp_path}",
        "allow_untrained=true",
        "postprocessor=pairwise_reranker",
        "pairwise_model@postprocessor.args.pairwise_model=linear_siamese",
    ]
    with pytest.raises(
        ConfigError,
        match=rf"`postprocessor.args.pairwise_model` is 'linear_siamese', which scores pairs of embeddings .* "
        rf"the items themselves \({modality}\)",
    ):
        validate(load_config("validate_digits", [*overrides, *(more if modality == "texts" else [])]))
    assert list(tmp_path.iterdir()) == []
