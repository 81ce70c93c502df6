"""Small text and audio datasets made on the spot, in OML's format, for trying pipelines (OML's
``get_mock_texts_dataset`` / ``get_mock_audios_dataset``, exported by :mod:`oml_fast.utils`).

Nothing is downloaded: the texts are written here, the audio files are synthesised (tones, chords,
sweeps, noises) and written with ``soundfile`` (extra ``audio``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from oml_fast.const import (
    CATEGORIES_COLUMN,
    IS_GALLERY_COLUMN,
    IS_QUERY_COLUMN,
    LABELS_COLUMN,
    MOCK_AUDIO_DATASET_PATH,
    MOCK_DATASET_DEFAULT_CSV,
    PATHS_COLUMN,
    SPLIT_COLUMN,
    START_TIME_COLUMN,
    TEXTS_COLUMN,
    TRAIN_SPLIT,
    VALIDATION_SPLIT,
)
from oml_fast.errors import require_extra

if TYPE_CHECKING:  # pandas is imported when a dataset is made: `import oml_fast.utils` needs only the core
    import pandas as pd

# (label, category, split, texts): product descriptions, one label per kind of product.
_MOCK_TEXTS: list[tuple[int, str, str, list[str]]] = [
    (
        0,
        "furniture",
        TRAIN_SPLIT,
        [
            "Oak double bed with a slatted base and a tall padded headboard.",
            "Single bed frame in white pine, easy to assemble, fits a standard mattress.",
            "King size bed with storage drawers under the frame and a linen headboard.",
            "Bunk bed for two children with a safety rail and a built-in ladder.",
        ],
    ),
    (
        1,
        "furniture",
        TRAIN_SPLIT,
        [
            "Round dining table in walnut veneer that seats four people.",
            "Extendable kitchen table with a scratch-resistant laminate top.",
            "Low coffee table made of reclaimed teak with a lower shelf.",
            "Standing desk with an electric height adjustment and memory presets.",
            "Marble side table with slim brass legs for a living room corner.",
            "Folding garden table in powder-coated steel, weatherproof.",
        ],
    ),
    (
        2,
        "electronic",
        TRAIN_SPLIT,
        [
            "Fifty-inch 4K television with HDR and built-in streaming apps.",
            "Small 24-inch LED TV for a kitchen or a bedroom, wall mountable.",
            "OLED television with deep blacks and a 120 Hz refresh rate.",
            "Budget 40-inch Full HD TV with three HDMI inputs.",
        ],
    ),
    (
        3,
        "food",
        TRAIN_SPLIT,
        [
            "Waxy new potatoes, ideal for salads and boiling whole.",
            "Floury baking potatoes with a fluffy inside, good for mash and chips.",
            "Sweet potatoes with orange flesh, great roasted in wedges.",
            "Small fingerling potatoes with a nutty taste, roast them with rosemary.",
            "Purple potatoes that keep their colour after cooking.",
        ],
    ),
    (
        4,
        "furniture",
        VALIDATION_SPLIT,
        [
            "Ergonomic office chair with lumbar support and adjustable armrests.",
            "Solid beech dining chair with a woven rattan seat.",
            "Reclining armchair upholstered in soft grey velvet.",
            "Stackable plastic chair for terraces and cafes.",
        ],
    ),
    (
        5,
        "electronic",
        VALIDATION_SPLIT,
        [
            "Smartphone with a 6.5-inch AMOLED screen and a triple camera.",
            "Compact phone with a long-lasting battery and fast charging.",
            "Rugged mobile phone, waterproof and shock resistant.",
            "Flagship smartphone with 512 GB storage and a periscope zoom lens.",
            "Entry-level Android phone with dual SIM support.",
            "Foldable phone with a second screen on the cover.",
        ],
    ),
    (
        6,
        "electronic",
        VALIDATION_SPLIT,
        [
            "Over-ear headphones with active noise cancelling and 30-hour battery.",
            "True wireless earbuds with a charging case and touch controls.",
            "Studio monitor headphones with a flat frequency response.",
            "Wired in-ear headphones with a microphone and volume buttons.",
            "Gaming headset with surround sound and a detachable boom mic.",
            "Sports earbuds with ear hooks that stay put while running.",
        ],
    ),
]


def _split_frames(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = df[df[SPLIT_COLUMN] == TRAIN_SPLIT].reset_index(drop=True)
    valid = df[df[SPLIT_COLUMN] == VALIDATION_SPLIT].reset_index(drop=True)
    valid = valid.astype({IS_QUERY_COLUMN: bool, IS_GALLERY_COLUMN: bool})
    return train, valid


def get_mock_texts_dataset() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A tiny texts dataset (product descriptions; labels = kinds of product): ``(df_train, df_val)``.

    Columns ``text, label, category, split, is_query, is_gallery``: 4 labels (19 texts) for
    training, 3 others (16 texts) for validation, every validation text both query and gallery.

    >>> df_train, df_val = get_mock_texts_dataset()
    >>> len(df_train), len(df_val), df_val["label"].nunique()
    (19, 16, 3)
    """
    rows = [
        {
            TEXTS_COLUMN: text,
            LABELS_COLUMN: label,
            CATEGORIES_COLUMN: category,
            SPLIT_COLUMN: split,
            IS_QUERY_COLUMN: True if split == VALIDATION_SPLIT else None,
            IS_GALLERY_COLUMN: True if split == VALIDATION_SPLIT else None,
        }
        for label, category, split, texts in _MOCK_TEXTS
        for text in texts
    ]
    pd = require_extra("pandas", "get_mock_texts_dataset")
    return _split_frames(pd.DataFrame(rows))


# ----- audio -----

# (name, category): the classes of sounds; the first six train, the last four validate.
_SOUND_CLASSES = [
    ("low_tone", "tone"),
    ("high_tone", "tone"),
    ("major_chord", "chord"),
    ("rising_sweep", "sweep"),
    ("white_noise", "noise"),
    ("pulses", "rhythm"),
    ("falling_sweep", "sweep"),
    ("minor_chord", "chord"),
    ("rumble", "noise"),
    ("vibrato_tone", "tone"),
]
_N_TRAIN_CLASSES = 6
_ITEMS_PER_CLASS = 6
# Files vary in rate, channels and format, as real collections do.
_RATES = (16000, 8000, 22050, 44100)


def _synthesise(name: str, seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """One sound of class ``name``: float32 [T] in [-1, 1], with per-item random pitch, level, noise."""
    t = np.arange(int(seconds * rate)) / rate
    jitter = rng.uniform(0.95, 1.05)
    if name == "low_tone":
        sound = np.sin(2 * np.pi * 220 * jitter * t)
    elif name == "high_tone":
        sound = np.sin(2 * np.pi * 1760 * jitter * t)
    elif name in ("major_chord", "minor_chord"):
        third = 5 / 4 if name == "major_chord" else 6 / 5
        sound = np.mean([np.sin(2 * np.pi * 330 * jitter * ratio * t) for ratio in (1, third, 3 / 2)], axis=0)
    elif name in ("rising_sweep", "falling_sweep"):
        f0, f1 = (200.0, 3000.0) if name == "rising_sweep" else (3000.0, 200.0)
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds)) * jitter
        sound = np.sin(phase)
    elif name == "white_noise":
        sound = rng.uniform(-1, 1, t.size)
    elif name == "rumble":  # noise low-passed by a moving average (~100 Hz)
        width = max(1, rate // 100)
        sound = np.convolve(rng.standard_normal(t.size), np.ones(width) / width, mode="same")
        sound /= np.abs(sound).max() + 1e-9
    elif name == "pulses":  # 4 clicks of a 1 kHz tone per second
        sound = np.sin(2 * np.pi * 1000 * t) * ((t * 4 * jitter) % 1 < 0.1)
    elif name == "vibrato_tone":
        sound = np.sin(2 * np.pi * 600 * jitter * t + 8 * np.sin(2 * np.pi * 6 * t))
    else:
        raise ValueError(f"unknown sound class '{name}'")
    sound = rng.uniform(0.4, 0.8) * sound + 0.02 * rng.standard_normal(t.size)
    return np.clip(sound, -1, 1).astype(np.float32)


def make_audio_dataset(
    dataset_root: str | Path, df_name: str = MOCK_DATASET_DEFAULT_CSV, seed: int = 0
) -> Path:
    """Writes the mock audio dataset (``audios/*.wav|flac`` and ``df_name``) into ``dataset_root``.

    10 classes of 6 sounds each (tones, chords, sweeps, noises, pulses), 2.5 s long, in 16 / 8 /
    22.05 / 44.1 kHz, mono and stereo, WAV and FLAC; some items start 0.5 s into their file
    (``start_time``). Returns the CSV's path. Deterministic for a given ``seed``.
    """
    from oml_fast.datasets.audios import _soundfile

    soundfile = _soundfile()
    root = Path(dataset_root)
    (root / "audios").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for label, (name, category) in enumerate(_SOUND_CLASSES):
        split = TRAIN_SPLIT if label < _N_TRAIN_CLASSES else VALIDATION_SPLIT
        for i in range(_ITEMS_PER_CLASS):
            rate = _RATES[(label + i) % len(_RATES)]
            start = 0.5 if i % 3 == 2 else 0.0
            sound = _synthesise(name, 2.5 + start, rate, rng)
            if i % 2 == 1:  # stereo: the second channel a little quieter
                sound = np.stack([sound, 0.8 * sound], axis=1)
            path = Path("audios") / f"{name}_{i}.{'flac' if i % 4 == 3 else 'wav'}"
            soundfile.write(str(root / path), sound, rate)
            is_valid = split == VALIDATION_SPLIT
            rows.append(
                {
                    LABELS_COLUMN: label,
                    PATHS_COLUMN: str(path),
                    SPLIT_COLUMN: split,
                    IS_QUERY_COLUMN: True if is_valid else None,
                    IS_GALLERY_COLUMN: True if is_valid else None,
                    CATEGORIES_COLUMN: category,
                    START_TIME_COLUMN: start,
                }
            )
    csv = root / df_name
    require_extra("pandas", "make_audio_dataset").DataFrame(rows).to_csv(csv, index=False)
    return csv


def get_mock_audios_dataset(
    dataset_root: str | Path = MOCK_AUDIO_DATASET_PATH,
    df_name: str = MOCK_DATASET_DEFAULT_CSV,
    check_md5: bool = True,
    global_paths: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The mock audio dataset as ``(df_train, df_val)``, synthesised into ``dataset_root`` if not there yet.

    Columns ``label, path, split, is_query, is_gallery, category, start_time``; see
    :func:`make_audio_dataset`. ``check_md5``: check that every listed file is present (and make the
    dataset again if not); there is no download to verify. ``global_paths``: make the paths absolute
    (joined to ``dataset_root``).
    """
    pd = require_extra("pandas", "get_mock_audios_dataset")
    root = Path(dataset_root)
    csv = root / df_name
    if not csv.is_file():
        make_audio_dataset(root, df_name)
    df = pd.read_csv(csv)
    if check_md5 and not all((root / p).is_file() for p in df[PATHS_COLUMN]):
        make_audio_dataset(root, df_name)
        df = pd.read_csv(csv)
    if global_paths:
        df[PATHS_COLUMN] = [str(root / p) for p in df[PATHS_COLUMN]]
    return _split_frames(df)


__all__ = ["get_mock_texts_dataset", "get_mock_audios_dataset", "make_audio_dataset"]
