"""Audio datasets in OML's dataframe format: a ``path`` column of audio files (OML's ``oml.datasets.audios``).

Files are read with ``soundfile`` (extra ``audio``; ``.wav``, ``.flac``, ``.ogg``, ``.mp3``), down-mixed
to mono (``convert_to_mono``), resampled to ``sample_rate`` in torch, then cut to ``max_num_seconds``
starting at the row's ``start_time`` (seconds; optional column) and zero-padded at the start when
shorter, as OML does. Items: ``input_tensors`` = FloatTensor[C, sample_rate * max_num_seconds]
(C = 1 when mono, else the file's channels), ``idx``, and per dataset ``labels`` / ``is_query`` /
``is_gallery`` / ``extra_data`` values.

Errors name the file: a missing or undecodable file raises :class:`AudioReadError`; a start time
past the end of the file raises ``ValueError``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from oml_fast.const import (
    AUDIO_EXTENSIONS,
    BLACK,
    DEFAULT_CONVERT_TO_MONO,
    DEFAULT_SAMPLE_RATE,
    INDEX_KEY,
    INPUT_TENSORS_KEY,
    LABELS_KEY,
    MAX_AUDIO_LEN,
    PATHS_COLUMN,
    START_TIME_COLUMN,
    TRAIN_SPLIT,
    VALIDATION_SPLIT,
    TColor,
)
from oml_fast.datasets.dataframe import _is_start_time, _rows, read_retrieval_splits, resolve_path
from oml_fast.datasets.df_datasets import (
    DFLabeledDataset,
    DFQueryGalleryDataset,
    DFQueryGalleryLabeledDataset,
    _require_columns,
    check_extra_data,
    check_index,
    put_extra_data,
)
from oml_fast.errors import require_extra
from oml_fast.interfaces.datasets import IBaseDataset, IHTMLVisualizableDataset, IVisualizableDataset
from oml_fast.transforms.audio import default_spec_repr_func, resample
from oml_fast.visualization import visualize_audio, visualize_audio_with_player


class AudioReadError(OSError):
    """An audio file could not be opened or decoded; the message names the file."""


def _soundfile():
    """The ``soundfile`` module; :class:`~oml_fast.errors.MissingExtraError` naming the extra ``audio`` if absent."""
    return require_extra("soundfile", "reading audio files")


def read_audio(
    path: str | Path, start_time: float = 0.0, duration: float | None = None
) -> tuple[torch.Tensor, int]:
    """``(FloatTensor[C, T], sample_rate)`` of an audio file from ``start_time`` (seconds) on, ``duration``
    seconds of it (all if ``None``), in the file's own rate, values in [-1, 1].

    Raises :class:`AudioReadError` naming the file when it is missing or cannot be decoded, and
    ``ValueError`` when ``start_time`` is past its end.

    >>> read_audio("/no/such/file.wav")
    Traceback (most recent call last):
    ...
    oml_fast.datasets.audios.AudioReadError: cannot read audio '/no/such/file.wav': ...
    """
    soundfile = _soundfile()
    try:
        with soundfile.SoundFile(str(path)) as file:
            sample_rate, length = int(file.samplerate), int(file.frames)
            if sample_rate <= 0:
                raise AudioReadError(f"audio file '{path}' declares a sample rate of {sample_rate} Hz")
            offset = round(start_time * sample_rate)
            if offset > length:
                raise ValueError(
                    f"audio file '{path}': the start time {start_time:.3f} s is past its end "
                    f"({length} frames = {length / sample_rate:.3f} s)"
                )
            file.seek(offset)
            frames = -1 if duration is None else int(np.ceil(duration * sample_rate))
            data = file.read(frames, dtype="float32", always_2d=True)
    except (AudioReadError, ValueError):
        raise
    except Exception as error:
        raise AudioReadError(f"cannot read audio '{path}': {type(error).__name__}: {error}") from error
    return torch.from_numpy(np.ascontiguousarray(data.T)), sample_rate


def _check_positive(value: Any, name: str, whole: bool) -> None:
    ok = (
        not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) and value > 0
    )
    if not ok or (whole and value != int(value)):
        kind = "a positive whole number" if whole else "a positive number"
        raise ValueError(f"`{name}` must be {kind}, got {value!r}")


class AudioBaseDataset(IBaseDataset, IVisualizableDataset, IHTMLVisualizableDataset):
    """Audio files read on access, down-mixed, resampled and cut to a fixed length.

    Args:
        paths: audio file paths (``.wav``, ``.flac``, ``.ogg``, ``.mp3``), one per item.
        dataset_root: folder that relative paths are relative to.
        extra_data: per-item records (each of length N) added to the items under their key.
        sample_rate: the rate items are resampled to, in Hz.
        max_num_seconds: item length in seconds (cut / zero-padded at the start); ``None`` keeps
            whole files (then batches need a collate function of their own).
        convert_to_mono: average the channels into one.
        start_times: per item, where it starts in its file (seconds); default 0.
        spec_repr_func: FloatTensor[C, T] -> FloatTensor[bands, frames], the picture of an item.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        dataset_root: str | Path | None = None,
        extra_data: dict[str, Any] | None = None,
        input_tensors_key: str = INPUT_TENSORS_KEY,
        index_key: str = INDEX_KEY,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        max_num_seconds: float | None = MAX_AUDIO_LEN,
        convert_to_mono: bool = DEFAULT_CONVERT_TO_MONO,
        start_times: Sequence[float] | None = None,
        spec_repr_func: Callable[[torch.Tensor], torch.Tensor] = default_spec_repr_func,
    ):
        _check_positive(sample_rate, "sample_rate", whole=True)
        if max_num_seconds is not None:
            _check_positive(max_num_seconds, "max_num_seconds", whole=False)
        if not isinstance(convert_to_mono, (bool, np.bool_)):
            raise ValueError(f"`convert_to_mono` must be a bool, got {convert_to_mono!r}")
        self._paths = [resolve_path(p, dataset_root) for p in paths]
        wrong = [i for i, p in enumerate(self._paths) if p.suffix.lower() not in AUDIO_EXTENSIONS]
        if wrong:
            raise ValueError(
                f"audio files must end with one of {AUDIO_EXTENSIONS}; not so at {_rows(wrong)} "
                f"(first: '{self._paths[wrong[0]]}')"
            )
        if start_times is not None:
            if len(start_times) != len(self._paths):
                raise ValueError(
                    f"`start_times` has {len(start_times)} entries but there are {len(paths)} paths"
                )
            bad = [i for i, t in enumerate(start_times) if not _is_start_time(t)]
            if bad:
                raise ValueError(f"`start_times` must be seconds >= 0; not so at {_rows(bad)}")
        self.extra_data = check_extra_data(extra_data, len(self._paths), "paths")
        self.input_tensors_key, self.index_key = input_tensors_key, index_key
        self._sample_rate = int(sample_rate)
        if max_num_seconds is None:
            warnings.warn(
                "max_num_seconds is None: items keep the length of their files, so batching them needs a "
                "collate function that pads",
                stacklevel=2,
            )
        self._num_frames = None if max_num_seconds is None else int(max_num_seconds * self._sample_rate)
        self._convert_to_mono = bool(convert_to_mono)
        self._start_times = [
            0.0 if pd.isna(t) else float(t) for t in (start_times or [0.0] * len(self._paths))
        ]
        self._spectral_function = spec_repr_func if spec_repr_func is not None else default_spec_repr_func

    def __len__(self) -> int:
        return len(self._paths)

    @property
    def paths(self) -> list[str]:
        return [str(p) for p in self._paths]

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def get_audio(self, item: int) -> torch.Tensor:
        """FloatTensor[C, num_frames] of ``item``: read, down-mixed, resampled, cut / padded."""
        # Read only what the item needs, with a margin of 64 samples for the resampling filter.
        duration = None if self._num_frames is None else (self._num_frames + 64) / self._sample_rate
        audio, file_rate = read_audio(self._paths[item], self._start_times[item], duration)
        if self._convert_to_mono and audio.shape[0] > 1:
            audio = audio.mean(dim=0, keepdim=True)
        audio = resample(audio, file_rate, self._sample_rate)
        if self._num_frames is None:
            return audio
        audio = audio[:, : self._num_frames]
        if audio.shape[1] < self._num_frames:  # OML pads shorter items with silence at the start
            audio = torch.nn.functional.pad(audio, (self._num_frames - audio.shape[1], 0))
        return audio

    def __getitem__(self, item: int) -> dict[str, Any]:
        item = check_index(item, len(self))
        data: dict[str, Any] = {self.input_tensors_key: self.get_audio(item), self.index_key: item}
        return put_extra_data(data, self.extra_data, item)

    def visualize(self, item: int, color: TColor = BLACK) -> np.ndarray:
        """Waveform envelope above the spectrogram (``spec_repr_func``) of ``item``: uint8 [256, 256, 3]."""
        audio = self.get_audio(item)
        return visualize_audio(self._spectral_function(audio), color=color, waveform=audio)

    def visualize_as_html(self, item: int, title: str, color: TColor = BLACK) -> str:
        """``item`` as an HTML block: its picture and a player with the (processed) audio."""
        audio = self.get_audio(item)
        spec = self._spectral_function(audio)
        return visualize_audio_with_player(audio, spec, self._sample_rate, title=title, color=color)


def parse_start_times(df: pd.DataFrame) -> list[float] | None:
    """The ``start_time`` column (seconds, empty -> 0) or ``None`` without it; bad values name their rows."""
    if START_TIME_COLUMN not in df.columns:
        return None
    values = df[START_TIME_COLUMN].tolist()
    bad = [i for i, v in enumerate(values) if not _is_start_time(v)]
    if bad:
        raise ValueError(f"column '{START_TIME_COLUMN}' is not a number of seconds >= 0 at {_rows(bad)}")
    return [0.0 if pd.isna(v) else float(v) for v in values]


def _base(df: pd.DataFrame, owner: str, **kwargs: Any) -> AudioBaseDataset:
    _require_columns(df, (PATHS_COLUMN,), owner)
    df = df.reset_index(drop=True)
    return AudioBaseDataset(paths=df[PATHS_COLUMN].tolist(), start_times=parse_start_times(df), **kwargs)


class AudioLabeledDataset(DFLabeledDataset, IVisualizableDataset, IHTMLVisualizableDataset):
    """Labeled audio files (a train set): rows of an OML dataframe with ``label`` and ``path``."""

    _dataset: AudioBaseDataset

    def __init__(
        self,
        df: pd.DataFrame,
        dataset_root: str | Path | None = None,
        extra_data: dict[str, Any] | None = None,
        input_tensors_key: str = INPUT_TENSORS_KEY,
        index_key: str = INDEX_KEY,
        labels_key: str = LABELS_KEY,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        max_num_seconds: float | None = MAX_AUDIO_LEN,
        convert_to_mono: bool = DEFAULT_CONVERT_TO_MONO,
        spec_repr_func: Callable[[torch.Tensor], torch.Tensor] = default_spec_repr_func,
    ):
        base = _base(
            df,
            type(self).__name__,
            dataset_root=dataset_root,
            input_tensors_key=input_tensors_key,
            index_key=index_key,
            sample_rate=sample_rate,
            max_num_seconds=max_num_seconds,
            convert_to_mono=convert_to_mono,
            spec_repr_func=spec_repr_func,
        )
        super().__init__(dataset=base, df=df, extra_data=extra_data, labels_key=labels_key)


class AudioQueryGalleryDataset(DFQueryGalleryDataset, IVisualizableDataset, IHTMLVisualizableDataset):
    """Audio files with ``is_query`` / ``is_gallery`` flags and no labels (retrieval without ground truth)."""

    _dataset: AudioBaseDataset

    def __init__(
        self,
        df: pd.DataFrame,
        dataset_root: str | Path | None = None,
        extra_data: dict[str, Any] | None = None,
        input_tensors_key: str = INPUT_TENSORS_KEY,
        index_key: str = INDEX_KEY,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        max_num_seconds: float | None = MAX_AUDIO_LEN,
        convert_to_mono: bool = DEFAULT_CONVERT_TO_MONO,
        spec_repr_func: Callable[[torch.Tensor], torch.Tensor] = default_spec_repr_func,
    ):
        base = _base(
            df,
            type(self).__name__,
            dataset_root=dataset_root,
            input_tensors_key=input_tensors_key,
            index_key=index_key,
            sample_rate=sample_rate,
            max_num_seconds=max_num_seconds,
            convert_to_mono=convert_to_mono,
            spec_repr_func=spec_repr_func,
        )
        super().__init__(dataset=base, df=df, extra_data=extra_data)


class AudioQueryGalleryLabeledDataset(
    DFQueryGalleryLabeledDataset, IVisualizableDataset, IHTMLVisualizableDataset
):  # type: ignore[misc]
    """Labeled audio files with ``is_query`` / ``is_gallery`` flags (a validation set); an item may be both."""

    _dataset: AudioBaseDataset

    def __init__(
        self,
        df: pd.DataFrame,
        dataset_root: str | Path | None = None,
        extra_data: dict[str, Any] | None = None,
        input_tensors_key: str = INPUT_TENSORS_KEY,
        index_key: str = INDEX_KEY,
        labels_key: str = LABELS_KEY,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        max_num_seconds: float | None = MAX_AUDIO_LEN,
        convert_to_mono: bool = DEFAULT_CONVERT_TO_MONO,
        spec_repr_func: Callable[[torch.Tensor], torch.Tensor] = default_spec_repr_func,
    ):
        base = _base(
            df,
            type(self).__name__,
            dataset_root=dataset_root,
            input_tensors_key=input_tensors_key,
            index_key=index_key,
            sample_rate=sample_rate,
            max_num_seconds=max_num_seconds,
            convert_to_mono=convert_to_mono,
            spec_repr_func=spec_repr_func,
        )
        super().__init__(dataset=base, df=df, extra_data=extra_data, labels_key=labels_key)


def get_retrieval_audios_datasets(
    dataset_root: str | Path,
    dataframe_name: str = "df.csv",
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    max_num_seconds: float | None = MAX_AUDIO_LEN,
    convert_to_mono: bool = DEFAULT_CONVERT_TO_MONO,
    check_files: bool = True,
) -> tuple[AudioLabeledDataset, AudioQueryGalleryLabeledDataset]:
    """The train and validation splits of ``dataset_root / dataframe_name`` (validated first, files
    included with ``check_files``) as audio datasets with the given rate, length and channels."""
    parts = read_retrieval_splits(dataset_root, dataframe_name, check_files)
    kwargs: dict[str, Any] = dict(
        dataset_root=dataset_root,
        sample_rate=sample_rate,
        max_num_seconds=max_num_seconds,
        convert_to_mono=convert_to_mono,
    )
    return AudioLabeledDataset(parts[TRAIN_SPLIT], **kwargs), AudioQueryGalleryLabeledDataset(
        parts[VALIDATION_SPLIT], **kwargs
    )


def get_validation_audios_dataset(
    dataset_root: str | Path,
    dataframe_name: str = "df.csv",
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    max_num_seconds: float | None = MAX_AUDIO_LEN,
    convert_to_mono: bool = DEFAULT_CONVERT_TO_MONO,
    check_files: bool = True,
) -> AudioQueryGalleryLabeledDataset:
    """The validation split of ``dataset_root / dataframe_name`` (validated first) as an audio dataset."""
    parts = read_retrieval_splits(dataset_root, dataframe_name, check_files, splits=(VALIDATION_SPLIT,))
    return AudioQueryGalleryLabeledDataset(
        parts[VALIDATION_SPLIT],
        dataset_root=dataset_root,
        sample_rate=sample_rate,
        max_num_seconds=max_num_seconds,
        convert_to_mono=convert_to_mono,
    )


__all__ = [
    "get_retrieval_audios_datasets",
    "get_validation_audios_dataset",
    "AudioBaseDataset",
    "AudioLabeledDataset",
    "AudioQueryGalleryDataset",
    "AudioQueryGalleryLabeledDataset",
    "AudioReadError",
    "parse_start_times",
    "read_audio",
]
