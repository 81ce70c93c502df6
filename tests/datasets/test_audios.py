"""Audio datasets on real files written here (tones, chords, noise; wav / flac / ogg; mono / stereo;
8 to 44.1 kHz): reading, down-mixing, resampling, start times, padding, pictures, HTML, bad input."""

from __future__ import annotations

import base64
import io
import math
import re
import sys
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

soundfile = pytest.importorskip("soundfile")

from oml_fast.const import BLUE, GREEN  # noqa: E402
from oml_fast.datasets import (  # noqa: E402
    AudioBaseDataset,
    AudioLabeledDataset,
    AudioQueryGalleryDataset,
    AudioQueryGalleryLabeledDataset,
    AudioReadError,
    check_retrieval_dataframe_format,
    read_audio,
)
from oml_fast.retrieval import RetrievalResults  # noqa: E402
from oml_fast.utils import get_mock_audios_dataset  # noqa: E402


@pytest.fixture(scope="module")
def mock_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mock_audio")
    get_mock_audios_dataset(root)
    return root


@pytest.fixture(scope="module")
def mock(mock_root) -> tuple[pd.DataFrame, pd.DataFrame]:
    return get_mock_audios_dataset(mock_root, global_paths=True)


def write(path: Path, samples: np.ndarray, rate: int) -> Path:
    soundfile.write(str(path), samples, rate)
    return path


def sine(freq: float, rate: int, seconds: float) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


def test_mock_audios_follow_the_format(mock_root, mock):
    df_train, df_val = mock
    assert list(df_train.columns) == [
        "label",
        "path",
        "split",
        "is_query",
        "is_gallery",
        "category",
        "start_time",
    ]
    assert set(df_train["label"]).isdisjoint(df_val["label"]) and df_val["is_query"].all()
    df = pd.read_csv(mock_root / "df.csv")
    check_retrieval_dataframe_format(df, dataset_root=mock_root)  # every file exists
    rates = {soundfile.info(str(mock_root / p)).samplerate for p in df["path"]}
    channels = {soundfile.info(str(mock_root / p)).channels for p in df["path"]}
    assert rates == {8000, 16000, 22050, 44100} and channels == {1, 2}
    again, _ = get_mock_audios_dataset(mock_root, global_paths=True)  # found, not made again
    pd.testing.assert_frame_equal(again, df_train)


@pytest.mark.parametrize("sample_rate", [8000, 16000, 22050])
def test_items_have_the_requested_rate_and_length(mock, sample_rate: int):
    df_train, _ = mock
    dataset = AudioLabeledDataset(df_train, sample_rate=sample_rate, max_num_seconds=0.5)
    items = [dataset[i] for i in range(4)]
    for i, item in enumerate(items):
        assert (
            item["input_tensors"].shape == (1, sample_rate // 2)
            and item["input_tensors"].dtype == torch.float32
        )
        assert (
            item["idx"] == i
            and item["labels"] == df_train["label"][i]
            and item["category"] == df_train["category"][i]
        )
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    assert batch["input_tensors"].shape == (4, 1, sample_rate // 2)


def test_stereo_is_kept_or_down_mixed(tmp_path):
    left, right = sine(300, 16000, 1.0), sine(500, 16000, 1.0)
    path = write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 16000)
    stereo = AudioBaseDataset([path], convert_to_mono=False, max_num_seconds=1.0)[0]["input_tensors"]
    mono = AudioBaseDataset([path], max_num_seconds=1.0)[0]["input_tensors"]
    assert stereo.shape == (2, 16000) and mono.shape == (1, 16000)
    assert torch.allclose(mono[0], stereo.mean(dim=0), atol=1e-6)
    assert torch.allclose(stereo[0], torch.from_numpy(left), atol=1e-4)  # 16-bit PCM


def test_start_time_and_padding_follow_oml(tmp_path):
    rate = 16000
    ramp = (np.arange(2 * rate) / (2 * rate)).astype(
        np.float32
    ) * 0.9  # value = position, read back exactly enough
    path = write(tmp_path / "ramp.flac", ramp, rate)
    df = pd.DataFrame({"label": [0, 0], "path": [str(path)] * 2, "start_time": [0.5, np.nan]})
    dataset = AudioLabeledDataset(df, max_num_seconds=1.0)
    shifted, plain = dataset[0]["input_tensors"][0], dataset[1]["input_tensors"][0]
    assert torch.allclose(shifted, torch.from_numpy(ramp[rate // 2 : rate // 2 + rate]), atol=1e-4)
    assert torch.allclose(plain, torch.from_numpy(ramp[:rate]), atol=1e-4)
    # An item longer than what is left of the file is zero-padded at the start, as OML pads.
    long = AudioLabeledDataset(df, max_num_seconds=3.0)[0]["input_tensors"][0]
    rest = len(ramp) - rate // 2
    assert long.shape == (3 * rate,) and float(long[: 3 * rate - rest].abs().max()) == 0.0
    assert torch.allclose(long[3 * rate - rest :], torch.from_numpy(ramp[rate // 2 :]), atol=1e-4)


def test_resampling_while_reading_keeps_the_pitch(tmp_path):
    path = write(tmp_path / "a440.wav", sine(440, 44100, 1.0), 44100)
    audio = AudioBaseDataset([path], sample_rate=16000, max_num_seconds=1.0)[0]["input_tensors"][0]
    spectrum = torch.fft.rfft(audio).abs()
    assert int(spectrum.argmax()) == 440  # 1 s of audio: bin k is k Hz
    assert abs(float(audio.abs().max()) - 0.5) < 0.01


def test_ogg_files_are_read(tmp_path):
    path = write(tmp_path / "tone.ogg", sine(440, 22050, 1.0), 22050)
    audio = AudioBaseDataset([path], max_num_seconds=1.0)[0]["input_tensors"]
    assert audio.shape == (1, 16000) and 0.3 < float(audio.abs().max()) < 0.7


def test_query_gallery_datasets(mock):
    _, df_val = mock
    labeled = AudioQueryGalleryLabeledDataset(df_val, max_num_seconds=0.25)
    unlabeled = AudioQueryGalleryDataset(df_val.drop(columns="label"), max_num_seconds=0.25)
    assert torch.equal(labeled.get_query_ids(), torch.arange(len(df_val)))
    assert labeled[3]["is_query"] and labeled[3]["labels"] == df_val["label"][3]
    assert "labels" not in unlabeled[3] and len(unlabeled.get_gallery_ids()) == len(df_val)


def test_pictures_and_html(mock):
    _, df_val = mock
    dataset = AudioQueryGalleryLabeledDataset(df_val, max_num_seconds=0.5)
    picture = dataset.visualize(0, color=GREEN)
    assert picture.shape == (256, 256, 3) and tuple(picture[0, 0]) == GREEN
    html = dataset.visualize_as_html(0, title="Query #0", color=BLUE)
    encoded = re.search(r"data:audio/wav;base64,([A-Za-z0-9+/=]+)", html).group(1)  # type: ignore[union-attr]
    with wave.open(io.BytesIO(base64.b64decode(encoded))) as player:
        assert (player.getframerate(), player.getnframes(), player.getnchannels()) == (16000, 8000, 1)
    assert "data:image/png;base64," in html and "rgb(0, 0, 255)" in html

    embeddings = torch.nn.functional.one_hot(torch.as_tensor(dataset.get_labels())).float()
    embeddings += 0.01 * torch.randn(embeddings.shape, generator=torch.Generator().manual_seed(0))
    rr = RetrievalResults.from_embeddings(embeddings, dataset, n_items=3)
    grid = rr.visualize_as_html(query_ids=[0, 1], dataset=dataset, n_galleries_to_show=2, n_gt_to_show=1)
    assert (
        grid.count("<audio") == 2 * (1 + 2 + 1) and grid.count("rgb(255, 0, 0)") == 0
    )  # all retrieved are right


def test_bad_input_names_the_file_or_row(tmp_path, mock):
    df_train, _ = mock
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt garbage, not audio")
    with pytest.raises(AudioReadError, match=f"cannot read audio '{re.escape(str(broken))}'"):
        AudioBaseDataset([broken])[0]
    with pytest.raises(AudioReadError, match="cannot read audio '.*missing.wav'"):
        AudioBaseDataset([tmp_path / "missing.wav"])[0]
    with pytest.raises(
        ValueError, match=r"must end with one of .* not so at row 1 \(line 3\) \(first: '.*notes.txt'\)"
    ):
        AudioBaseDataset([broken, tmp_path / "notes.txt"])
    for bad_rate in (0, -8000, 16000.5, "16k"):
        with pytest.raises(ValueError, match="`sample_rate` must be a positive whole number"):
            AudioLabeledDataset(df_train, sample_rate=bad_rate)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`max_num_seconds` must be a positive number"):
        AudioLabeledDataset(df_train, max_num_seconds=0)

    late = df_train.head(2).assign(start_time=[0.0, 99.0])
    with pytest.raises(ValueError, match=r"audio file '.*': the start time 99.000 s is past its end"):
        AudioLabeledDataset(late)[1]
    negative = df_train.head(3).assign(start_time=[0.0, -1.0, "soon"])
    with pytest.raises(
        ValueError, match=r"'start_time' is not a number of seconds >= 0 at rows 1 \(line 3\), 2"
    ):
        AudioLabeledDataset(negative)
    with pytest.raises(ValueError, match=r"misses the column\(s\) \['path'\]"):
        AudioLabeledDataset(df_train.drop(columns="path"))


def test_a_missing_soundfile_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "soundfile", None)  # `import soundfile` now raises ImportError
    with pytest.raises(
        ImportError, match=r"reading audio files needs `soundfile`, .*pip install 'oml_fast\[audio\]'"
    ):
        read_audio(tmp_path / "x.wav")


@pytest.mark.slow  # a fresh interpreter importing the package: seconds on a busy machine
def test_importing_the_package_imports_no_optional_modality_library():
    code = (
        "import sys, oml_fast, oml_fast.datasets, oml_fast.models, oml_fast.retrieval, oml_fast.metrics;"
        "from oml_fast.datasets import ImageQueryGalleryLabeledDataset;"
        "print(sorted(m for m in ('transformers', 'tokenizers', 'soundfile') if m in sys.modules))"
    )
    import subprocess

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"


def test_read_audio_returns_the_files_rate(tmp_path):
    path = write(tmp_path / "x.wav", sine(100, 8000, 0.5), 8000)
    audio, rate = read_audio(path, start_time=0.25)
    assert rate == 8000 and audio.shape == (1, 2000)
    assert math.isclose(float(audio.abs().max()), 0.5, abs_tol=1e-3)
